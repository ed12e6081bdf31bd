//! The DDL `cdc ddl` prints and the tests run: `CREATE TABLE` for a configured target
//! ([`create_table`]: column types from the Debezium schema of sample changes, or the config's
//! type hints, or the values, widened for masks, plus the `_cdc_*` metadata columns) and for a
//! schema's delete ledger ([`create_delete_ledger`]). Pure builders: which changes to type a
//! table from (running the transform over sample events) is the `cdc` command's business
//! (`tools/cdc-cli/src/ddl.rs`), so nothing here reaches above `outcome`. The Lambdas never
//! create tables: only `cdc ddl` and the tests use this module.

use std::sync::Arc;

use super::sql::{push_ident, qualified};
use super::types::{DdlFlavor, column_type};
use crate::config::{ChangeSchema, TableConfig, TableName};
use crate::debezium::{ColumnType, FieldSchema};
use crate::outcome::Change;
use crate::value::Value;

/// The metadata columns' DDL (see [`super::sql::METADATA_COLUMNS`]).
pub const METADATA_COLUMNS_DDL: [(&str, &str); 8] = [
    ("_cdc_position", "VARCHAR(64) NOT NULL"),
    ("_cdc_op", "CHAR(1) NOT NULL"),
    ("_cdc_deleted", "BOOLEAN NOT NULL"),
    ("_cdc_source_ts", "TIMESTAMP"),
    ("_cdc_loaded_at", "TIMESTAMP NOT NULL"),
    ("_cdc_kafka_topic", "VARCHAR(249)"),
    ("_cdc_kafka_partition", "INTEGER"),
    ("_cdc_kafka_offset", "BIGINT"),
];

/// `CREATE TABLE IF NOT EXISTS` for the delete ledger of `schema` (see
/// [`super::sql::DELETE_LEDGER_COLUMNS`]): one per schema, shared by its targets.
pub fn create_delete_ledger(schema: &str, dialect: DdlFlavor) -> String {
    let ledger = super::sql::delete_ledger(&TableName { schema: schema.into(), table: String::new() });
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  \"_cdc_table\" VARCHAR(255) NOT NULL,\n  \"_cdc_key\" VARCHAR(65535) NOT NULL,\n  \
         \"_cdc_position\" VARCHAR(64) NOT NULL,\n  \"_cdc_source_ts\" TIMESTAMP,\n  \"_cdc_kafka_topic\" VARCHAR(249),\n  \
         \"_cdc_kafka_partition\" INTEGER,\n  \"_cdc_kafka_offset\" BIGINT,\n  \"_cdc_deleted_at\" TIMESTAMP NOT NULL\n)",
        qualified(&ledger)
    );
    if dialect == DdlFlavor::Redshift {
        sql.push_str(" DISTSTYLE AUTO SORTKEY AUTO");
    }
    sql.push(';');
    sql
}

struct Column<'a> {
    name: Arc<str>,
    field: Option<FieldSchema>,
    sample: Option<&'a Value<'a>>,
    /// Over every decimal sample: the most integer digits and the most fractional digits.
    decimals: Option<(u32, u32)>,
}

impl Column<'_> {
    fn new(name: Arc<str>, field: Option<FieldSchema>) -> Self {
        Column { name, field, sample: None, decimals: None }
    }
}

/// DDL for one table, and what it could not get right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDdl {
    /// One `CREATE TABLE "schema"."table" (…);` statement, one column per line, ending in
    /// `;` (Redshift: with `DISTSTYLE AUTO SORTKEY AUTO`); no primary key.
    pub sql: String,
    /// Columns no type holds every sample value of, and why (printed by `cdc ddl`).
    pub warnings: Vec<String>,
    /// The data columns with their SQL types, in the statement's order, without the `_cdc_*`
    /// metadata columns (empty for a delete ledger): what [`create_views`] selects.
    pub columns: Vec<(Arc<str>, String)>,
}

/// `text` as one SQL line comment (`-- …`): control characters (a newline in a column name
/// would end the comment and run what follows) and Unicode line separators are written as
/// escapes.
pub fn line_comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("-- ");
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A source field as the target sees it: renamed, with the cast's type; `None` when dropped.
/// What `cdc ddl` and `drift = "add"` type a column from.
pub fn mapped_field(change_schema: &ChangeSchema, field: &FieldSchema) -> Option<FieldSchema> {
    let column = change_schema.target_name(&field.column)?;
    match change_schema.cast_of(&column) {
        // The source's column length (`__debezium.source.column.length`) measured the source
        // type, not the cast's: a BIT(1) cast to text is `false`, five bytes.
        Some(ty) => Some(FieldSchema { column, ty: ty.clone(), source_length: None, ..field.clone() }),
        None => Some(FieldSchema { column, ..field.clone() }),
    }
}

/// The field of a column the message has no schema for, when the mapping casts it: the
/// cast's type (schemaless messages, `schemas.enable=false`).
pub fn cast_field(change_schema: &ChangeSchema, column: &Arc<str>) -> Option<FieldSchema> {
    let ty = change_schema.cast_of(column)?.clone();
    Some(FieldSchema { name: column.clone(), column: column.clone(), ty, optional: true, source_length: None })
}

/// Redshift's widest DECIMAL.
const MAX_PRECISION: u32 = 38;

/// A decimal column's type: the declared precision and scale when the source has them (a
/// precision beyond 38 cannot be declared), else the scale the sample needs with the rest of
/// the 38 digits for the integer part. Never a scale below what the sample holds: the loader
/// rejects a value that does not fit (`decimal_scale`, `decimal_precision`) rather than round
/// it, so a type too narrow for the sample is reported here.
fn decimal_type(column: &Column<'_>, ty: Option<&ColumnType>, warnings: &mut Vec<String>) -> Option<String> {
    let declared = match ty {
        Some(ColumnType::Decimal { scale, precision }) => Some((precision.unwrap_or(MAX_PRECISION), *scale)),
        Some(ColumnType::DecimalText { scale: Some(scale) }) if column.decimals.is_none() => {
            Some((MAX_PRECISION, *scale))
        }
        Some(ColumnType::DecimalText { .. } | ColumnType::VariableScaleDecimal) => None,
        Some(_) => return None,
        None if column.decimals.is_some() => None,
        None => return None,
    };
    let name = &column.name;
    let (precision, scale) = match (declared, column.decimals) {
        (Some((p, s)), _) if p > MAX_PRECISION => {
            warnings.push(format!(
                "column `{name}`: the source declares DECIMAL({p}, {s}); Redshift's DECIMAL holds at most 38 digits, so \
                 DECIMAL(38, {}) is used and values with more than {} integer digits will be rejected (decimal_precision)",
                s.min(37),
                MAX_PRECISION - s.min(37)
            ));
            (MAX_PRECISION, s.min(37))
        }
        (Some(declared), _) => declared,
        (None, Some((integer, scale))) => {
            if integer + scale > MAX_PRECISION {
                warnings.push(format!(
                    "column `{name}`: no DECIMAL holds every sample value: they need {integer} integer and {scale} \
                     fractional digits, more than Redshift's 38; DECIMAL(38, {scale}) keeps every fractional digit, and \
                     values with more than {} integer digits will be rejected (decimal_precision)",
                    MAX_PRECISION - scale
                ));
            }
            (MAX_PRECISION, scale)
        }
        (None, None) => {
            warnings.push(format!(
                "column `{name}`: a decimal without a declared scale and no sample value; DECIMAL(38, 10) is used and \
                 values with more than 10 fractional digits will be rejected (decimal_scale)"
            ));
            (MAX_PRECISION, 10)
        }
    };
    Some(super::types::decimal(precision, scale))
}

/// `CREATE TABLE` for `target`, from its table config and the changes routed to it.
pub fn create_table(table: &TableConfig, target: &TableName, changes: &[&Change<'_>], dialect: DdlFlavor) -> TableDdl {
    let mut warnings = Vec::new();
    let mut columns: Vec<Column<'_>> = Vec::new();
    let find = |columns: &[Column<'_>], name: &str| columns.iter().position(|c| &*c.name == name);
    for change in changes {
        if let Some(schema) = &change.row_schema {
            // The fields as the change's own table's `[tables.change_schema]` leaves them
            // (several `[[tables]]` may load one target): renamed, cast, not dropped.
            for field in schema.fields.iter().filter_map(|f| mapped_field(&change.table.change_schema, f)) {
                if find(&columns, &field.column).is_none() {
                    columns.push(Column::new(field.column.clone(), Some(field)));
                }
            }
        }
        for column in &change.columns {
            let i = match find(&columns, &column.name) {
                Some(i) => i,
                None => {
                    columns.push(Column::new(column.name.clone(), None));
                    columns.len() - 1
                }
            };
            if columns[i].sample.is_none() && !column.value.is_null() && !column.value.is_unavailable() {
                columns[i].sample = Some(&column.value);
            }
            if let Value::Decimal(d) = column.value {
                let d = d.normalized();
                let (integer, scale) = columns[i].decimals.unwrap_or((0, 0));
                columns[i].decimals = Some((integer.max(d.integer_digits()), scale.max(d.scale)));
            }
        }
    }
    // Columns the config names but no sample carried.
    let mut configured: Vec<&Arc<str>> = table.columns.keys().collect();
    configured.sort();
    for name in configured {
        if find(&columns, name).is_none() {
            columns.push(Column::new(name.clone(), None));
        }
    }
    let mut key: Vec<Arc<str>> = match (&table.key, changes.first()) {
        (Some(key), _) => key.to_vec(),
        (None, Some(change)) => change.key_columns.to_vec(),
        (None, None) => Vec::new(),
    };
    // A key column neither a sample nor a `type` hint describes has no type to write.
    key.retain(|k| {
        let known = find(&columns, k).is_some();
        if !known {
            warnings.push(format!(
                "key column `{k}` of {target} has no type: give a sample event that routes here, or a `type` hint \
                 under [tables.columns.{k}]; it is left out of this DDL"
            ));
        }
        known
    });
    let mut sql = format!("CREATE TABLE {} (\n", qualified(target));
    let mut typed = Vec::with_capacity(columns.len());
    for column in &columns {
        let config = table.column(&column.name);
        // A column without a schema: a cast's type, else a hint's.
        let cast = column.field.is_none().then(|| cast_field(&table.change_schema, &column.name)).flatten();
        let hinted = match (cast.or_else(|| column.field.clone()), config.and_then(|c| c.type_hint.clone())) {
            (None, Some(ty)) => Some(FieldSchema {
                name: column.name.clone(),
                column: column.name.clone(),
                ty,
                optional: true,
                source_length: None,
            }),
            (field, _) => field,
        };
        let mask = config.and_then(|c| c.mask.as_ref());
        let decimal =
            if mask.is_none() { decimal_type(column, hinted.as_ref().map(|f| &f.ty), &mut warnings) } else { None };
        let mut ty = decimal.unwrap_or_else(|| column_type(hinted.as_ref(), column.sample, mask, dialect));
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
        typed.push((column.name.clone(), ty.clone()));
        if key.contains(&column.name) {
            sql.push_str(" NOT NULL");
        }
        sql.push_str(",\n");
    }
    for (name, ty) in METADATA_COLUMNS_DDL {
        sql.push_str(&format!("  \"{name}\" {ty},\n"));
    }
    // No PRIMARY KEY: Redshift does not enforce one ("uniqueness, primary key, and foreign key
    // constraints are informational only", "Defining table constraints", Redshift Database
    // Developer Guide) yet its planner trusts it, so a declared key would turn any duplicate
    // into wrong query results; PostgreSQL would enforce it and hide duplicates from the tests.
    // The loader keeps one row per key itself (`lock`, README "Concurrency and `lock`").
    sql.truncate(sql.len() - 2);
    sql.push('\n');
    sql.push(')');
    if dialect == DdlFlavor::Redshift {
        sql.push_str(" DISTSTYLE AUTO SORTKEY AUTO");
    }
    sql.push(';');
    TableDdl { sql, warnings, columns: typed }
}

/// Redshift's longest identifier, in bytes ("Names and identifiers", Redshift Database
/// Developer Guide: standard identifiers are 1–127 bytes).
const MAX_IDENTIFIER_BYTES: usize = 127;

/// Views over one target, and the views that could not be named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Views {
    /// `CREATE OR REPLACE VIEW` statements, each ending in `;`: the current state first.
    pub sql: Vec<String>,
    /// Views left out, and why (a name past 127 bytes).
    pub warnings: Vec<String>,
}

/// Age bands of [`create_views`]' age view: (label, upper bound in years, exclusive).
const AGE_BANDS: [(&str, Option<u32>); 5] =
    [("0-17", Some(18)), ("18-34", Some(35)), ("35-49", Some(50)), ("50-64", Some(65)), ("65+", None)];

/// Views over `target`, whose data columns are `columns` ([`TableDdl::columns`]):
/// - `<table>_current`: the rows as the source holds them now: soft-deleted rows
///   (`_cdc_deleted`) left out, the data columns with `_cdc_source_ts` and `_cdc_loaded_at`;
/// - `<table>_by_<column>` for each column with a `one_of` rule and no mask: rows per value
///   (e.g. patients by state);
/// - `<table>_<column>_age_bands` for each column masked to its `year`: rows per age band,
///   the age being this calendar year minus the masked year (the mask keeps no birthday, so
///   an age is at most one year high);
/// - `<table>_quality`: one row of data-quality counts: rows, soft-deleted rows, rows missing
///   each configured column (`nulls_<column>`), the newest source and load times.
///
/// Redshift views are late-binding (`WITH NO SCHEMA BINDING`, "CREATE VIEW", Redshift
/// Database Developer Guide): they do not pin the target, so `cdc ddl`'s table can be dropped
/// and created again (or altered by `drift = "add"`) under them; references are
/// schema-qualified, as late binding requires.
pub fn create_views(
    table: &TableConfig,
    target: &TableName,
    columns: &[(Arc<str>, String)],
    dialect: DdlFlavor,
) -> Views {
    let mut views = Views::default();
    let current = TableName { schema: target.schema.clone(), table: format!("{}_current", target.table) };
    let create = |name: &TableName, select: String, views: &mut Views| {
        if name.table.len() > MAX_IDENTIFIER_BYTES {
            views.warnings.push(format!(
                "view {} is not created: its name is longer than Redshift's {MAX_IDENTIFIER_BYTES}-byte identifiers",
                name.table.escape_default()
            ));
            return false;
        }
        let binding = if dialect == DdlFlavor::Redshift { " WITH NO SCHEMA BINDING" } else { "" };
        views.sql.push(format!("CREATE OR REPLACE VIEW {} AS\n{select}{binding};", qualified(name)));
        true
    };
    let mut select = String::from("SELECT ");
    for (column, _) in columns {
        push_ident(&mut select, column);
        select.push_str(", ");
    }
    select.push_str(&format!(
        "\"_cdc_source_ts\", \"_cdc_loaded_at\"\nFROM {}\nWHERE NOT \"_cdc_deleted\"",
        qualified(target)
    ));
    if !create(&current, select, &mut views) {
        return views;
    }
    let type_of = |name: &str| columns.iter().find(|(c, _)| &**c == name).map(|(_, ty)| ty.as_str());
    let mut configured: Vec<(&Arc<str>, &crate::config::ColumnConfig)> =
        table.columns.iter().filter(|(name, _)| type_of(name).is_some()).collect();
    configured.sort_by(|a, b| a.0.cmp(b.0));
    for (name, config) in &configured {
        let mut column = String::new();
        push_ident(&mut column, name);
        let (view, select) = match config.mask {
            None if config.rules.one_of.is_some() => (
                format!("{}_by_{name}", target.table),
                format!("SELECT {column}, COUNT(*) AS \"rows\"\nFROM {}\nGROUP BY {column}", qualified(&current)),
            ),
            // A year-masked column that stores dates; one holding date text has no year to
            // extract (and text of other shapes cannot be cast without failing the view).
            Some(crate::mask::Mask::Year)
                if type_of(name).is_some_and(|ty| ty == "DATE" || ty.starts_with("TIMESTAMP")) =>
            {
                // A birth year after this one (a negative age) is no age either.
                let mut bands = String::from("CASE WHEN \"age\" IS NULL OR \"age\" < 0 THEN 'unknown'");
                for (label, below) in AGE_BANDS {
                    match below {
                        Some(below) => bands.push_str(&format!(" WHEN \"age\" < {below} THEN '{label}'")),
                        None => bands.push_str(&format!(" ELSE '{label}' END")),
                    }
                }
                (
                    format!("{}_{name}_age_bands", target.table),
                    format!(
                        "SELECT {bands} AS \"age_band\", COUNT(*) AS \"rows\"\nFROM (SELECT EXTRACT(YEAR FROM CURRENT_DATE) - \
                         EXTRACT(YEAR FROM {column}) AS \"age\" FROM {}) AS \"ages\"\nGROUP BY 1",
                        qualified(&current)
                    ),
                )
            }
            _ => continue,
        };
        create(&TableName { schema: target.schema.clone(), table: view }, select, &mut views);
    }
    // COUNT of a CASE, not SUM: 0 on a table with no rows yet, where SUM is NULL.
    let mut select =
        String::from("SELECT COUNT(*) AS \"rows\", COUNT(CASE WHEN \"_cdc_deleted\" THEN 1 END) AS \"deleted_rows\"");
    for (name, _) in &configured {
        select.push_str(", COUNT(CASE WHEN NOT \"_cdc_deleted\" AND ");
        push_ident(&mut select, name);
        select.push_str(" IS NULL THEN 1 END) AS ");
        push_ident(&mut select, &format!("nulls_{name}"));
    }
    select.push_str(&format!(
        ", MAX(\"_cdc_source_ts\") AS \"newest_source_ts\", MAX(\"_cdc_loaded_at\") AS \"last_loaded_at\"\nFROM {}",
        qualified(target)
    ));
    create(
        &TableName { schema: target.schema.clone(), table: format!("{}_quality", target.table) },
        select,
        &mut views,
    );
    views
}

/// A target for [`grants`]: its name, and whether the pipeline alters it (`drift = "add"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grantee<'a> {
    /// The target table.
    pub target: &'a TableName,
    /// `drift = "add"`: the pipeline runs `ALTER TABLE … ADD COLUMN` on it.
    pub alters: bool,
}

/// The GRANTs the functions' database user `user` needs on `targets` and on their schemas'
/// delete ledgers: `USAGE` on each schema; `SELECT, INSERT, UPDATE, DELETE` on each target and
/// ledger (the apply SQL reads, inserts, updates and deletes; `COPY` needs INSERT; "GRANT",
/// Redshift Database Developer Guide); and, for a target under `drift = "add"`, ownership,
/// because only a table's owner may `ALTER TABLE … ADD COLUMN` (Redshift has no table-level
/// ALTER privilege outside Lake Formation). The apply SQL's temporary tables need `TEMP` on
/// the database, which every user holds through PUBLIC unless it was revoked: a comment says so.
/// `user` is written as a quoted identifier: `IAMR:<role name>` for a Lambda role's user.
pub fn grants(user: &str, targets: &[Grantee<'_>]) -> Vec<String> {
    // The user as given, case kept: the Data API's user for a role is `IAMR:<role name>` with
    // the role's own case, and a name folded to lowercase would name another user.
    let who = format!("\"{}\"", user.replace('"', "\"\""));
    let mut schemas: Vec<&str> = targets.iter().map(|t| t.target.schema.as_str()).collect();
    schemas.sort_unstable();
    schemas.dedup();
    let mut out = Vec::new();
    for schema in &schemas {
        let mut name = String::new();
        push_ident(&mut name, schema);
        out.push(format!("GRANT USAGE ON SCHEMA {name} TO {who};"));
    }
    let mut tables: Vec<TableName> = targets.iter().map(|t| t.target.clone()).collect();
    tables.extend(
        schemas.iter().map(|schema| {
            super::sql::delete_ledger(&TableName { schema: (*schema).to_string(), table: String::new() })
        }),
    );
    for table in &tables {
        out.push(format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {who};", qualified(table)));
    }
    for target in targets.iter().filter(|t| t.alters) {
        out.push(line_comment(&format!(
            "drift = \"add\" on {}: only the owner may ALTER TABLE … ADD COLUMN",
            target.target
        )));
        out.push(format!("ALTER TABLE {} OWNER TO {who};", qualified(target.target)));
    }
    out.push(line_comment(&format!(
        "the apply SQL creates temporary tables: PUBLIC holds TEMP on every database unless revoked; if it was: GRANT TEMP ON DATABASE <database> TO {who};"
    )));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn comments_cannot_be_ended_by_what_they_quote() {
        let comment = line_comment("column `a\nDROP TABLE t; --`: no DECIMAL\r\u{2028}x");
        assert_eq!(comment.lines().count(), 1, "{comment}");
        assert_eq!(comment, "-- column `a\\nDROP TABLE t; --`: no DECIMAL\\r\\u{2028}x");
    }

    #[test]
    fn config_only_ddl_uses_hints_and_masks() {
        let config = Config::parse(
            "[[tables]]\ntopic = \"t\"\ntarget = \"public.p\"\nkey = [\"id\"]\n[tables.columns.id]\ntype = \"int32\"\n\
             [tables.columns.ssn]\ntype = \"string\"\nmask = \"hmac\"\n[tables.columns.dob]\ntype = \"timestamp_ms\"\nmask = \"year\"\n",
            "t.toml",
        )
        .unwrap();
        let table = &config.tables[0];
        let sql = create_table(table, &table.target, &[], DdlFlavor::Redshift).sql;
        assert_eq!(
            sql,
            "CREATE TABLE \"public\".\"p\" (\n  \"dob\" TIMESTAMP,\n  \"id\" INTEGER NOT NULL,\n  \"ssn\" VARCHAR(64),\n  \
             \"_cdc_position\" VARCHAR(64) NOT NULL,\n  \"_cdc_op\" CHAR(1) NOT NULL,\n  \"_cdc_deleted\" BOOLEAN NOT NULL,\n  \
             \"_cdc_source_ts\" TIMESTAMP,\n  \"_cdc_loaded_at\" TIMESTAMP NOT NULL,\n  \"_cdc_kafka_topic\" VARCHAR(249),\n  \
             \"_cdc_kafka_partition\" INTEGER,\n  \"_cdc_kafka_offset\" BIGINT\n) DISTSTYLE AUTO SORTKEY AUTO;"
        );
        assert!(!create_table(table, &table.target, &[], DdlFlavor::Postgres).sql.contains("PRIMARY KEY"));
    }
}
