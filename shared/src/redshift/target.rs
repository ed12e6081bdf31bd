//! The target table as Redshift describes it, and the checks made against it before any SQL
//! is sent: metadata columns present, columns the target lacks (drift), VARCHAR limits.

use std::collections::HashMap;

use super::sql::METADATA_COLUMNS;
use crate::config::TableName;
use crate::outcome::Change;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetColumn {
    /// Lowercase name.
    pub name: String,
    /// The database's type name, e.g. `varchar`, `int4`, `timestamp`.
    pub type_name: String,
    /// For character types: the maximum length in bytes (Redshift counts bytes).
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct TargetTable {
    pub name: TableName,
    pub columns: Vec<TargetColumn>,
    by_name: HashMap<String, usize>,
}

impl TargetTable {
    pub fn new(name: TableName, columns: Vec<TargetColumn>) -> TargetTable {
        let by_name = columns.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect();
        TargetTable { name, columns, by_name }
    }

    /// Redshift's DescribeTable answers an empty column list for a table that does not exist.
    pub fn exists(&self) -> bool {
        !self.columns.is_empty()
    }

    pub fn column(&self, name: &str) -> Option<&TargetColumn> {
        self.by_name.get(name).map(|&i| &self.columns[i])
    }

    /// Metadata columns the table lacks; the apply SQL needs all of them.
    pub fn missing_metadata_columns(&self) -> Vec<&'static str> {
        METADATA_COLUMNS.into_iter().filter(|c| self.column(c).is_none()).collect()
    }

    /// The subset of `columns` the table does not have.
    pub fn unknown<'c>(&self, columns: impl IntoIterator<Item = &'c str>) -> Vec<&'c str> {
        columns.into_iter().filter(|c| self.column(c).is_none()).collect()
    }

    /// Columns of `change` whose text is longer (in UTF-8 bytes) than the target allows.
    pub fn too_long<'c>(&self, change: &'c Change<'_>) -> Vec<&'c str> {
        change
            .columns
            .iter()
            .filter(|c| {
                let Some(max) = self.column(&c.name).and_then(|t| t.max_bytes) else { return false };
                match &c.value {
                    Value::Null => false,
                    Value::Text(s) => s.len() > max,
                    other => other.text().len() > max,
                }
            })
            .map(|c| c.name.as_ref())
            .collect()
    }
}

/// Character types whose length limit we enforce.
pub fn is_character_type(type_name: &str) -> bool {
    matches!(
        type_name.to_ascii_lowercase().as_str(),
        "varchar" | "character varying" | "bpchar" | "char" | "character" | "nvarchar" | "nchar"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TableConfig;
    use crate::debezium::Op;
    use crate::outcome::Column;
    use std::borrow::Cow;
    use std::sync::Arc;

    fn table() -> TargetTable {
        let col = |name: &str, ty: &str, max: Option<usize>| TargetColumn {
            name: name.into(),
            type_name: ty.into(),
            max_bytes: max,
        };
        TargetTable::new(
            TableName { schema: "public".into(), table: "t".into() },
            vec![
                col("id", "int4", None),
                col("state", "bpchar", Some(2)),
                col("name", "varchar", Some(4)),
                col("_cdc_position", "varchar", Some(64)),
                col("_cdc_op", "bpchar", Some(1)),
            ],
        )
    }

    #[test]
    fn metadata_and_unknown_columns() {
        let t = table();
        assert!(t.exists());
        assert_eq!(t.missing_metadata_columns(), vec!["_cdc_deleted", "_cdc_source_ts", "_cdc_loaded_at"]);
        assert_eq!(t.unknown(["id", "email", "name"]), vec!["email"]);
        assert!(!TargetTable::new(t.name.clone(), Vec::new()).exists());
    }

    #[test]
    fn varchar_limits_count_bytes() {
        let change = Change {
            table: Arc::new(TableConfig::default_for_topic("x.t").unwrap()),
            op: Op::Create,
            deleted: false,
            position: String::new(),
            source_ts_ms: None,
            key: vec![],
            key_columns: Arc::from(Vec::new()),
            columns: vec![
                Column { name: "state".into(), value: Value::Text(Cow::Borrowed("CA")) },
                // 3 characters, 6 bytes: over a 4-byte VARCHAR although PostgreSQL would accept it.
                Column { name: "name".into(), value: Value::Text(Cow::Borrowed("éèê")) },
            ],
            masked: vec![],
            row_schema: None,
        };
        assert_eq!(table().too_long(&change), vec!["name"]);
        assert!(is_character_type("VARCHAR") && !is_character_type("int4"));
    }
}
