//! The target table's columns and the SQL that turns each staged text field into a value of the
//! column's type, as Redshift's COPY converts it (Developer Guide *Data conversion parameters*,
//! `copy-parameters-data-conversion`, and *DATEFORMAT and TIMEFORMAT strings*,
//! `r_DATEFORMAT_and_TIMEFORMAT_strings`). Where PostgreSQL's cast accepts more than Redshift's
//! COPY (whitespace, `1e5` for a DECIMAL, `on` for a BOOLEAN, `2024-01-02T03:04:05` or an offset
//! for a TIMESTAMP), a pattern refuses it first; a refused field raises through
//! `public.rdl_copy_reject()` (see `shims.rs`).

use tokio_postgres::Client;

use super::parse::{Copy, Options};
use crate::errors::SqlError;

/// How a column's fields convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CHAR (`fixed`) or VARCHAR/TEXT: the text as is.
    Text {
        fixed: bool,
    },
    Int,
    Float,
    /// DECIMAL(p, s) keeps `scale` digits, truncating (not rounding) the rest.
    Numeric {
        scale: Option<i32>,
    },
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    /// VARBYTE (and bytea): hexadecimal.
    Bytes,
    Super,
    /// Anything else: PostgreSQL's cast.
    Other,
}

/// A target column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub attnum: i16,
    pub kind: Kind,
    /// The declared type's name (`int4`, `varchar`, `varbyte`, `super`), for `stl_load_errors.type`.
    pub type_name: String,
    /// `stl_load_errors.col_length`: a CHAR/VARCHAR length or a DECIMAL's `p,s`.
    pub col_length: String,
    /// The type to cast to: the base type for built-in kinds, `format_type` without a typmod
    /// otherwise (the INSERT's assignment applies the typmod).
    pub cast: String,
}

/// The COPY's target.
pub struct Table {
    pub oid: u32,
    /// Quoted and qualified as written, for SQL.
    pub qualified: String,
    /// As written, for messages.
    pub written: String,
    /// The loaded columns, in field order.
    pub columns: Vec<Column>,
}

impl Table {
    /// The table and its loaded columns (the column list, or every column), from the catalog.
    pub async fn resolve(client: &Client, copy: &Copy) -> Result<Table, SqlError> {
        let qualified = copy.table.iter().map(|p| quote_ident(p)).collect::<Vec<_>>().join(".");
        let written = copy.table.join(".");
        let found = client
            .query_opt(
                "SELECT c.oid, c.relkind::text FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)::oid",
                &[&qualified],
            )
            .await?;
        let Some(found) = found else {
            return Err(SqlError::emulator(format!("relation \"{written}\" does not exist")));
        };
        let (oid, relkind): (u32, String) = (found.try_get(0)?, found.try_get(1)?);
        if !matches!(relkind.as_str(), "r" | "p") {
            return Err(SqlError::emulator(format!("\"{written}\" is not a table")));
        }
        let rows = client
            .query(
                "SELECT a.attnum, a.attname::text, t.typname::text, coalesce(b.typname, t.typname)::text, \
                        coalesce(nullif(t.typtypmod, -1), a.atttypmod), pg_catalog.format_type(a.atttypid, NULL) \
                 FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                 LEFT JOIN pg_catalog.pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&oid],
            )
            .await?;
        let mut all = Vec::with_capacity(rows.len());
        for row in rows {
            let (attnum, name, declared, base, typmod, formatted): (i16, String, String, String, i32, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, row.try_get(5)?);
            all.push(column(attnum, name, declared, &base, typmod, formatted));
        }
        let table_name = copy.table.last().map_or("", String::as_str);
        let columns = match &copy.columns {
            None => all,
            Some(names) => {
                let mut picked: Vec<Column> = Vec::with_capacity(names.len());
                for name in names {
                    if picked.iter().any(|c| &c.name == name) {
                        return Err(SqlError::emulator(format!("column \"{name}\" specified more than once")));
                    }
                    let Some(column) = all.iter().find(|c| &c.name == name) else {
                        return Err(SqlError::emulator(format!(
                            "column \"{name}\" of relation \"{table_name}\" does not exist"
                        )));
                    };
                    picked.push(column.clone());
                }
                picked
            }
        };
        Ok(Table { oid, qualified, written, columns })
    }

    /// The table's name as Redshift's load text shows it (the last part as written).
    pub fn name(&self) -> &str {
        self.written.rsplit('.').next().unwrap_or(&self.written)
    }

    /// `INSERT INTO <table> (<columns>) SELECT <conversions> FROM <stage> s`.
    pub fn insert(&self, stage: &str, options: &Options) -> String {
        let columns = self.columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ");
        let values = (0..self.columns.len()).map(|i| self.conversion(i, options)).collect::<Vec<_>>().join(", ");
        format!("INSERT INTO {} ({columns}) SELECT {values} FROM {stage} s", self.qualified)
    }

    /// The SQL value of column `index` (0-based) from the stage row `s`.
    pub fn conversion(&self, index: usize, options: &Options) -> String {
        conversion(&self.columns[index], &format!("s.c{}", index + 1), options)
    }
}

fn column(attnum: i16, name: String, declared: String, base: &str, typmod: i32, formatted: String) -> Column {
    let kind = match base {
        _ if declared == "super" => Kind::Super,
        "varchar" | "text" | "name" => Kind::Text { fixed: false },
        "bpchar" => Kind::Text { fixed: true },
        "int2" | "int4" | "int8" => Kind::Int,
        "float4" | "float8" => Kind::Float,
        "numeric" => Kind::Numeric { scale: (typmod >= 4).then(|| (typmod - 4) & 0xffff) },
        "bool" => Kind::Bool,
        "date" => Kind::Date,
        "timestamp" => Kind::Timestamp,
        "timestamptz" => Kind::TimestampTz,
        "bytea" => Kind::Bytes,
        _ => Kind::Other,
    };
    let col_length = match kind {
        Kind::Text { .. } if typmod >= 4 => (typmod - 4).to_string(),
        Kind::Numeric { scale: Some(scale) } => format!("{},{scale}", ((typmod - 4) >> 16) & 0xffff),
        _ => String::new(),
    };
    let cast = match kind {
        Kind::Other | Kind::Bytes => formatted,
        _ => base.to_owned(),
    };
    Column { name, attnum, kind, type_name: declared, col_length, cast }
}

/// Whitespace that makes a field blank.
const BLANK: &str = r"E' \t\n\r\f'";
const INT: &str = "^[+-]?[0-9]+$";
const DECIMAL: &str = "^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$";
/// Decimal or exponent notation (Rust's shortest round-trip text is either), NaN, ±Infinity.
const FLOAT: &str = "^([+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?|NaN|[+-]?Infinity)$";
const DATE: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
/// The default TIMEFORMAT `YYYY-MM-DD HH:MI:SS`, whose seconds "support fractional seconds up
/// to a microsecond level of detail" (`r_DATEFORMAT_and_TIMEFORMAT_strings`).
const TIMESTAMP: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?";
/// TIMESTAMPTZ's default `YYYY-MM-DD HH:MI:SSOF`, "where OF is the offset from UTC (for
/// example, -8:00)" (same page).
const OFFSET: &str = "[+-]([01]?[0-9]|2[0-3])(:?[0-5][0-9])?$";
const HEX: &str = "^([0-9a-fA-F]{2})+$";
/// BOOLEAN's literals (Developer Guide *Boolean type*, `r_Boolean_type`), any case.
const TRUE: &str = "('t', 'true', 'y', 'yes', '1')";
const FALSE: &str = "('f', 'false', 'n', 'no', '0')";

/// The SQL that converts field `v` (text, NULL for the null string) for `column`.
pub fn conversion(column: &Column, v: &str, options: &Options) -> String {
    let t = &column.cast;
    let reject = format!("public.rdl_copy_reject()::{t}");
    // "Empty fields for other data types, such as INT, are always loaded with NULL", and so are
    // blank ones (Data conversion parameters, EMPTYASNULL and BLANKSASNULL).
    let blank = format!("CASE WHEN {v} IS NULL OR pg_catalog.btrim({v}, {BLANK}) = '' THEN NULL");
    let matching =
        |pattern: &str, value: String| format!("{blank} WHEN {v} ~ '{pattern}' THEN {value} ELSE {reject} END");
    match column.kind {
        Kind::Text { .. } if options.blanks_as_null => format!("{blank} ELSE {v} END"),
        Kind::Text { .. } if options.empty_as_null => format!("NULLIF({v}, '')"),
        Kind::Text { .. } => v.to_owned(),
        Kind::Int => matching(INT, format!("{v}::{t}")),
        Kind::Float => matching(FLOAT, format!("{v}::{t}")),
        // COPY truncates extra scale ("COPY truncates the value to 20.25 by default"; ROUNDEC is
        // refused); the assignment to DECIMAL(p, s) then checks the precision.
        Kind::Numeric { scale: Some(scale) } => matching(DECIMAL, format!("pg_catalog.trunc({v}::numeric, {scale})")),
        Kind::Numeric { scale: None } => matching(DECIMAL, format!("{v}::numeric")),
        Kind::Bool => format!(
            "{blank} WHEN pg_catalog.lower({v}) IN {TRUE} THEN true WHEN pg_catalog.lower({v}) IN {FALSE} THEN false \
             ELSE {reject} END"
        ),
        Kind::Date if options.date_auto => format!("{blank} ELSE {v}::date END"),
        Kind::Date => matching(DATE, format!("{v}::date")),
        Kind::Timestamp if options.time_auto => format!("{blank} ELSE {v}::timestamp END"),
        Kind::Timestamp => matching(&format!("{TIMESTAMP}$"), format!("{v}::timestamp")),
        Kind::TimestampTz if options.time_auto => format!("{blank} ELSE {v}::timestamptz END"),
        Kind::TimestampTz => matching(&format!("{TIMESTAMP}{OFFSET}"), format!("{v}::timestamptz")),
        // "For CSV, the data is loaded from a file in hexadecimal representation of the VARBYTE
        // data" (Developer Guide *Loading a column of the VARBYTE data type*, copy-usage-varbyte).
        Kind::Bytes => matching(HEX, format!("pg_catalog.decode({v}, 'hex')::{t}")),
        // "Amazon Redshift represents SUPER columns in text and CSV formats as single-line JSON"
        // (*COPY from JSON format*, copy-usage_notes-copy-from-json): JSON_PARSE of the field; an
        // empty field is not JSON and fails.
        Kind::Super => format!("public.json_parse({v})"),
        Kind::Other => format!("{blank} ELSE {v}::{t} END"),
    }
}

/// A quoted identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An escape-string literal (the sessions run with `standard_conforming_strings = off`).
pub fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_and_literals() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("\\N"), "E'\\\\N'");
        assert_eq!(literal("it's"), "E'it''s'");
    }

    #[test]
    fn kinds_follow_the_base_type() {
        let kind =
            |declared: &str, base: &str, typmod: i32| column(1, "c".into(), declared.into(), base, typmod, "x".into());
        assert_eq!(kind("varbyte", "bytea", -1).kind, Kind::Bytes);
        assert_eq!(kind("varbyte", "bytea", -1).cast, "x", "a domain casts to itself, so its check runs");
        assert_eq!(kind("super", "super", -1).kind, Kind::Super);
        let decimal = kind("numeric", "numeric", ((10 << 16) | 2) + 4);
        assert_eq!((decimal.kind, decimal.col_length.as_str()), (Kind::Numeric { scale: Some(2) }, "10,2"));
        let varchar = kind("varchar", "varchar", 24);
        assert_eq!((varchar.kind, varchar.col_length.as_str()), (Kind::Text { fixed: false }, "20"));
        assert_eq!(kind("uuid", "uuid", -1).kind, Kind::Other);
    }
}
