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
    /// For `numeric`/`decimal`: (precision, scale).
    pub numeric: Option<(u32, u32)>,
}

impl TargetColumn {
    /// A column as `DescribeTable` reports it. The Data API's `ColumnMetadata` puts a
    /// character column's size in `precision` ("The precision value of a decimal number column,
    /// or the column length for a non-numeric column", API reference), and AWS's examples show
    /// `varchar(200)` as `length 0, precision 200`; PostgreSQL-based tools fill `length`. Either
    /// is read.
    pub fn described(name: &str, type_name: &str, length: i32, precision: i32, scale: i32) -> TargetColumn {
        let lower = type_name.to_ascii_lowercase();
        let positive = |n: i32| u32::try_from(n).ok().filter(|n| *n > 0);
        let max_bytes =
            is_character_type(&lower).then(|| positive(length).or(positive(precision))).flatten().map(|n| n as usize);
        let numeric = matches!(lower.as_str(), "numeric" | "decimal")
            .then(|| positive(precision).map(|p| (p, u32::try_from(scale).unwrap_or(0))))
            .flatten();
        TargetColumn { name: name.to_lowercase(), type_name: type_name.to_string(), max_bytes, numeric }
    }
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
                    Value::Null | Value::Unavailable => false,
                    Value::Text(s) => s.len() > max,
                    other => other.text().len() > max,
                }
            })
            .map(|c| c.name.as_ref())
            .collect()
    }

    /// Decimals of `change` the target's `DECIMAL(p, s)` cannot hold exactly, with the rule:
    /// `decimal_scale` for more fractional digits than `s` (after dropping trailing zeros:
    /// `1.50` fits a scale of 1), `decimal_precision` for more integer digits than `p - s`.
    /// Never rounded: Redshift would round an INSERT and truncate a COPY ("Numeric types",
    /// "Data conversion parameters" in the Redshift Database Developer Guide).
    pub fn decimal_misfits<'c>(&self, change: &'c Change<'_>) -> Vec<(&'c str, &'static str)> {
        change
            .columns
            .iter()
            .filter_map(|c| {
                let Value::Decimal(d) = &c.value else { return None };
                let (precision, scale) = self.column(&c.name)?.numeric?;
                let d = d.normalized();
                if d.scale > scale {
                    Some((c.name.as_ref(), "decimal_scale"))
                } else if d.integer_digits() > precision.saturating_sub(scale) {
                    Some((c.name.as_ref(), "decimal_precision"))
                } else {
                    None
                }
            })
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
            numeric: None,
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
        assert_eq!(
            t.missing_metadata_columns(),
            vec![
                "_cdc_deleted",
                "_cdc_source_ts",
                "_cdc_loaded_at",
                "_cdc_kafka_topic",
                "_cdc_kafka_partition",
                "_cdc_kafka_offset"
            ]
        );
        assert_eq!(t.unknown(["id", "email", "name"]), vec!["email"]);
        assert!(!TargetTable::new(t.name.clone(), Vec::new()).exists());
    }

    #[test]
    fn varchar_limits_count_bytes() {
        let change = Change {
            table: Arc::new(TableConfig::default_for_topic("x.t").unwrap()),
            op: Op::Create,
            deleted: false,
            tombstone: false,
            position: crate::debezium::Position::none(),
            source_ts_ms: None,
            kafka: crate::outcome::KafkaOrigin { topic: "x.t".into(), partition: 0, offset: 0 },
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
