//! `CREATE TABLE` for configured targets (`cdc ddl`): column types from the Debezium schema
//! of sample changes (or the config's type hints, or the values), widened for masks, plus
//! the `_cdc_*` metadata columns.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::sql::{push_ident, qualified};
use super::types::{Dialect, column_type};
use crate::batch::DecodedBatch;
use crate::config::{TableConfig, TableName};
use crate::debezium::FieldSchema;
use crate::event::MskEvent;
use crate::outcome::{Change, Outcome};
use crate::transform::{Caches, Pipeline};
use crate::value::Value;

/// The metadata columns' DDL.
pub const METADATA_COLUMNS_DDL: [(&str, &str); 5] = [
    ("_cdc_position", "VARCHAR(64) NOT NULL"),
    ("_cdc_op", "CHAR(1) NOT NULL"),
    ("_cdc_deleted", "BOOLEAN NOT NULL"),
    ("_cdc_source_ts", "TIMESTAMP"),
    ("_cdc_loaded_at", "TIMESTAMP NOT NULL"),
];

struct Column<'a> {
    name: Arc<str>,
    field: Option<FieldSchema>,
    sample: Option<&'a Value<'a>>,
}

/// `CREATE TABLE` for `target`, from its table config and the changes routed to it.
pub fn create_table(table: &TableConfig, target: &TableName, changes: &[&Change<'_>], dialect: Dialect) -> String {
    let mut columns: Vec<Column<'_>> = Vec::new();
    let find = |columns: &[Column<'_>], name: &str| columns.iter().position(|c| &*c.name == name);
    for change in changes {
        if let Some(schema) = &change.row_schema {
            for field in &schema.fields {
                if find(&columns, &field.column).is_none() {
                    columns.push(Column { name: field.column.clone(), field: Some(field.clone()), sample: None });
                }
            }
        }
        for column in &change.columns {
            match find(&columns, &column.name) {
                Some(i) if columns[i].sample.is_none() && !column.value.is_null() => {
                    columns[i].sample = Some(&column.value)
                }
                Some(_) => {}
                None => columns.push(Column {
                    name: column.name.clone(),
                    field: None,
                    sample: (!column.value.is_null()).then_some(&column.value),
                }),
            }
        }
    }
    // Columns the config names but no sample carried.
    let mut configured: Vec<&Arc<str>> = table.columns.keys().collect();
    configured.sort();
    for name in configured {
        if find(&columns, name).is_none() {
            columns.push(Column { name: name.clone(), field: None, sample: None });
        }
    }
    let key: Vec<Arc<str>> = match (&table.key, changes.first()) {
        (Some(key), _) => key.to_vec(),
        (None, Some(change)) => change.key_columns.to_vec(),
        (None, None) => Vec::new(),
    };
    let mut sql = format!("CREATE TABLE {} (\n", qualified(target));
    for column in &columns {
        let config = table.column(&column.name);
        // A hint types a column that has no schema.
        let hinted = match (&column.field, config.and_then(|c| c.type_hint.clone())) {
            (None, Some(ty)) => Some(FieldSchema {
                name: column.name.clone(),
                column: column.name.clone(),
                ty,
                optional: true,
                source_length: None,
            }),
            (field, _) => field.clone(),
        };
        let mut ty = column_type(hinted.as_ref(), column.sample, config.and_then(|c| c.mask.as_ref()), dialect);
        // An unmasked text column's rules can bound it tighter than the type could.
        if let Some(config) = config.filter(|c| c.mask.is_none() && ty.starts_with("VARCHAR(")) {
            let widest_choice = config.rules.one_of.as_ref().and_then(|set| set.iter().map(String::len).max());
            if let Some(bytes) = config.rules.max_bytes.or(widest_choice) {
                ty = format!("VARCHAR({})", bytes.clamp(1, super::types::MAX_VARCHAR_BYTES as usize));
            }
        }
        sql.push_str("  ");
        push_ident(&mut sql, &column.name);
        sql.push(' ');
        sql.push_str(&ty);
        if key.contains(&column.name) {
            sql.push_str(" NOT NULL");
        }
        sql.push_str(",\n");
    }
    for (name, ty) in METADATA_COLUMNS_DDL {
        sql.push_str(&format!("  \"{name}\" {ty},\n"));
    }
    if key.is_empty() {
        sql.truncate(sql.len() - 2);
        sql.push('\n');
    } else {
        // Informational in Redshift (not enforced); enforced by PostgreSQL, which the apply SQL
        // respects: it deletes a key's rows before inserting its new row.
        sql.push_str("  PRIMARY KEY (");
        for (i, k) in key.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            push_ident(&mut sql, k);
        }
        sql.push_str(")\n");
    }
    sql.push(')');
    if dialect == Dialect::Redshift {
        sql.push_str(" DISTSTYLE AUTO SORTKEY AUTO");
    }
    sql.push(';');
    sql
}

/// `CREATE TABLE` for every configured target and every target the events' records route
/// to, typed from those records.
pub fn for_events(pipeline: &Pipeline, events: &[MskEvent<'_>], dialect: Dialect) -> Vec<String> {
    let batches: Vec<DecodedBatch<'_>> = events.iter().map(DecodedBatch::from_event).collect();
    let outcomes: Vec<Vec<Outcome<'_>>> =
        batches.iter().map(|b| pipeline.transform(b, &mut Caches::default(), 0)).collect();
    let mut by_table: BTreeMap<String, (Arc<TableConfig>, Vec<&Change<'_>>)> = BTreeMap::new();
    for table in &pipeline.config.tables {
        by_table.entry(table.target.to_string()).or_insert_with(|| (table.clone(), Vec::new()));
    }
    for outcome in outcomes.iter().flatten() {
        if let Outcome::Change(change) = outcome {
            by_table
                .entry(change.table.target.to_string())
                .or_insert_with(|| (change.table.clone(), Vec::new()))
                .1
                .push(change);
        }
    }
    by_table.values().map(|(table, changes)| create_table(table, &table.target, changes, dialect)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn config_only_ddl_uses_hints_and_masks() {
        let config = Config::parse(
            "[[tables]]\ntopic = \"t\"\ntarget = \"public.p\"\nkey = [\"id\"]\n[tables.columns.id]\ntype = \"int32\"\n\
             [tables.columns.ssn]\ntype = \"string\"\nmask = \"hmac\"\n[tables.columns.dob]\ntype = \"timestamp_ms\"\nmask = \"year\"\n",
            "t.toml",
        )
        .unwrap();
        let table = &config.tables[0];
        let sql = create_table(table, &table.target, &[], Dialect::Redshift);
        assert_eq!(
            sql,
            "CREATE TABLE \"public\".\"p\" (\n  \"dob\" TIMESTAMP,\n  \"id\" INTEGER NOT NULL,\n  \"ssn\" VARCHAR(64),\n  \
             \"_cdc_position\" VARCHAR(64) NOT NULL,\n  \"_cdc_op\" CHAR(1) NOT NULL,\n  \"_cdc_deleted\" BOOLEAN NOT NULL,\n  \
             \"_cdc_source_ts\" TIMESTAMP,\n  \"_cdc_loaded_at\" TIMESTAMP NOT NULL,\n  PRIMARY KEY (\"id\")\n) DISTSTYLE AUTO SORTKEY AUTO;"
        );
        assert!(create_table(table, &table.target, &[], Dialect::Postgres).ends_with("PRIMARY KEY (\"id\")\n);"));
    }
}
