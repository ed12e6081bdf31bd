//! The staged-COPY apply (`load = "copy"`): the rows of a transaction go to S3 as one
//! gzip-compressed CSV object, and the transaction `COPY`s it into the stage instead of
//! inserting `VALUES` literals. Pure builders, like [`super::sql`]: rows in, a file and SQL out.
//!
//! The transaction is the apply SQL of [`super::sql`] with its stage inserts replaced by one
//! statement: `[LOCK]`, `CREATE TEMP TABLE "_cdc_stage"`, `COPY "_cdc_stage" (…) FROM
//! 's3://…' IAM_ROLE '…' FORMAT AS CSV QUOTE AS '"' …`, then the same tail (position guard, carry, delete,
//! update, insert, ledger, report). No row value is in any statement: the values are in the
//! object, which the loader deletes after the transaction (the bucket's lifecycle rule is the
//! backstop).
//!
//! # The file
//! CSV as Redshift reads it ("Data format parameters", `CSV`, Redshift Database Developer
//! Guide): comma, `"` quotes (a quote inside doubled), `\n` between rows, no header, UTF-8.
//! Per field:
//! - NULL is the null string (`NULL AS`), unquoted. Redshift compares it after removing the
//!   quotes, so a quoted text equal to it would load as NULL too: the null string is
//!   `_cdc_null_` unless a text of the file equals it, and then the first of `_cdc_null_1`,
//!   `_cdc_null_2`, … no text equals ([`StagedFile::null_as`]). It has no backslash: how
//!   Redshift reads a backslash inside the option's literal is not documented.
//! - Text is always quoted, so that an empty text (`""`), leading and trailing blanks,
//!   delimiters, quotes, newlines and carriage returns survive. Decoded text holds no NUL
//!   (Redshift reads NUL as the end of a record).
//! - Integers, decimals (with their exact scale: COPY truncates extra digits rather than
//!   rounding, "ROUNDEC"), booleans (`true`/`false`), dates (`YYYY-MM-DD`, the default
//!   DATEFORMAT) and finite floats (the shortest exponent form that reads back exactly) are
//!   unquoted.
//! - Timestamps are written in the default TIMEFORMAT, with microseconds ("The seconds (SS)
//!   field also supports fractional seconds up to a microsecond level of detail", "DATEFORMAT
//!   and TIMEFORMAT strings"): `YYYY-MM-DD HH:MI:SS.ffffff` for TIMESTAMP, plus `+00` for
//!   TIMESTAMPTZ, whose default format ends with the offset.
//! - VARBYTE as hexadecimal ("For CSV, the data is loaded from a file in hexadecimal
//!   representation of the VARBYTE data", "Loading a column of the VARBYTE data type").
//! - SUPER as JSON text, quoted ("Amazon Redshift represents SUPER columns in text and CSV
//!   formats as … JSON", "Using COPY to load data into SUPER columns"): a JSON document as it
//!   came, other text as a JSON string, numbers and booleans as JSON scalars.
//!
//! Values CSV has no field for are staged NULL and flagged in the stage column `_cdc_special`
//! (one character per data column): an empty VARBYTE (`E`; COPY loads "empty fields for other
//! data types, such as INT, … with NULL", "Data conversion parameters") and NaN, Infinity and
//! -Infinity in a float column (`N`, `I`, `J`). After the COPY one UPDATE per such column sets
//! them from constants (`to_varbyte('', 'hex')`, `CAST('NaN' AS FLOAT8)`…): the same values
//! the INSERT path's literals store, and still no row value in the SQL.
//!
//! A value the file cannot carry exactly into its column's type at all (a kind the column
//! takes only as a SQL literal: an empty or blank text into a column that is not CHAR/VARCHAR,
//! a timestamp into a DATE column, bytes into SUPER, …) is rejected
//! ([`StagedFile::unfit`], rule `copy_unsupported_value`, naming the column): loading it would
//! put the value in SQL text. `load = "insert"` takes such values as literals.

use std::collections::HashSet;
use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::sql::{self, ApplySpec, DATA_API_STATEMENT_BYTES, Keep, MAX_STATEMENTS, Needs, STAGE_TABLE, Transaction};
use crate::outcome::Change;
use crate::temporal;
use crate::value::{Decimal, Value};

/// How a stage column's values are written, from the target column's type name (as
/// DescribeTable reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// CHAR and VARCHAR: any text, quoted; an empty text stays empty.
    Character,
    /// SUPER: JSON text.
    Document,
    /// VARBYTE: hexadecimal.
    Bytes,
    /// TIMESTAMP: `YYYY-MM-DD HH:MI:SS.ffffff`.
    Timestamp,
    /// TIMESTAMPTZ: the same with `+00`.
    TimestampTz,
    /// SMALLINT, INTEGER, BIGINT: digits only. COPY reads no decimal point into an integer
    /// column ("Invalid digit", Load error reference), where an INSERT literal `2.00` is cast.
    Integer,
    /// TIMETZ: `HH:MI:SS.ffffff+00` (a literal without a zone reads in the session's, UTC by
    /// default; COPY's TIMETZ format ends with the offset).
    TimeTz,
    /// DECIMAL: plain decimal text (COPY reads no exponent into a DECIMAL column, where an
    /// INSERT literal `1.25e0` is cast).
    Numeric,
    /// Every other type (numbers, booleans, dates, times): the value's text.
    Other,
}

impl FieldKind {
    /// The kind of a column of type `type_name` (case-insensitive).
    pub fn of(type_name: &str) -> FieldKind {
        let lower = type_name.to_ascii_lowercase();
        if super::target::is_character_type(&lower) || lower == "text" {
            return FieldKind::Character;
        }
        match lower.as_str() {
            "super" => FieldKind::Document,
            "varbyte" | "varbinary" | "binary varying" | "bytea" => FieldKind::Bytes,
            "timestamp" | "timestamp without time zone" => FieldKind::Timestamp,
            "timestamptz" | "timestamp with time zone" => FieldKind::TimestampTz,
            "int2" | "int4" | "int8" | "smallint" | "integer" | "bigint" | "int" => FieldKind::Integer,
            "numeric" | "decimal" => FieldKind::Numeric,
            "timetz" | "time with time zone" => FieldKind::TimeTz,
            _ => FieldKind::Other,
        }
    }
}

/// Where the transaction's `COPY` reads from, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    /// `s3://bucket/key` of the staged object. COPY loads every object whose key starts with
    /// this ("Amazon S3 object prefix", COPY from Amazon S3): the key must be one no other
    /// object's key extends (a random name with a fixed suffix).
    pub url: String,
    /// The IAM role Redshift assumes to read it (`IAM_ROLE`): an ARN, or `default` for the
    /// cluster's or namespace's default role.
    pub iam_role: String,
}

/// A transaction's rows as a CSV file, before compression.
#[derive(Debug, Default)]
pub struct StagedFile {
    /// The CSV text.
    pub csv: String,
    /// The null string (`NULL AS`): `_cdc_null_`, or one no text of the file equals.
    pub null_as: String,
    /// Indices (into the rows given) of the rows the file carries, in file order: the
    /// file's line `n` (1-based) is `rows[n - 1]`.
    pub rows: Vec<usize>,
    /// Rows the file cannot carry exactly, each with the index (into `spec.columns`) of the
    /// first column it cannot: rejected, `copy_unsupported_value`.
    pub unfit: Vec<(usize, usize)>,
    /// Data columns (indices into `spec.columns`) some row flags in `_cdc_special`.
    pub special_columns: Vec<usize>,
}

/// The null string (`NULL AS`). Not COPY's default `\N`: whether Redshift reads a backslash
/// in the option's literal as an escape is not documented, and a null string read as `\\N`
/// would load every NULL of a text column as text. Letters and `_` only need no escape.
const NULL_AS: &str = "_cdc_null_";

/// Write `rows` as a staged file for `spec`'s stage, `kinds` giving each of `spec.columns`'
/// [`FieldKind`] (missing entries: [`FieldKind::Other`]).
pub fn stage_file(spec: &ApplySpec<'_>, kinds: &[FieldKind], rows: &[&Change<'_>]) -> StagedFile {
    let fill_sources = rows.iter().any(|r| r.filled_from.is_some());
    let mut file = write_file(spec, kinds, rows, fill_sources, NULL_AS);
    if !file.1.is_empty() {
        // A text of the file equals the null string: pick one none equals, and write again.
        let collisions = file.1;
        let null_as = (1..).map(|n| format!("{NULL_AS}{n}")).find(|c| !collisions.contains(c)).unwrap_or_default();
        file = write_file(spec, kinds, rows, fill_sources, &null_as);
        debug_assert!(file.1.iter().all(|c| *c != null_as));
        file.0.null_as = null_as;
    }
    file.0
}

/// The file, and the quoted texts that start with [`NULL_AS`] (the candidates a null string
/// must differ from).
fn write_file(
    spec: &ApplySpec<'_>,
    kinds: &[FieldKind],
    rows: &[&Change<'_>],
    fill_sources: bool,
    null_as: &str,
) -> (StagedFile, HashSet<String>) {
    let mut file = StagedFile { null_as: null_as.to_owned(), ..StagedFile::default() };
    let mut near = HashSet::new();
    let mut line = Line { out: String::new(), null_as, near: &mut near, first: true };
    for (index, change) in rows.iter().enumerate() {
        line.out.clear();
        line.first = true;
        match push_row(&mut line, spec, kinds, change, index, fill_sources) {
            Ok(specials) => {
                line.out.push('\n');
                file.csv.push_str(&line.out);
                file.rows.push(index);
                for (i, flag) in specials.bytes().enumerate() {
                    if flag != b'0' && !file.special_columns.contains(&i) {
                        file.special_columns.push(i);
                    }
                }
            }
            Err(column) => file.unfit.push((index, column)),
        }
    }
    (file, near)
}

/// What became of a value in the file.
enum Field {
    /// Its field holds it.
    Written,
    /// Its field is NULL; the constant for this flag replaces it after the COPY.
    Special(char),
    /// The file cannot carry it.
    Unfit,
}

/// One CSV line being written.
struct Line<'a> {
    out: String,
    null_as: &'a str,
    near: &'a mut HashSet<String>,
    first: bool,
}

impl Line<'_> {
    fn separate(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    fn null(&mut self) {
        self.separate();
        self.out.push_str(self.null_as);
    }

    fn bare(&mut self, text: &str) {
        self.separate();
        self.out.push_str(text);
    }

    fn quoted(&mut self, text: &str) {
        self.separate();
        if text.starts_with(NULL_AS) {
            self.near.insert(text.to_owned());
        }
        self.out.push('"');
        for (i, part) in text.split('"').enumerate() {
            if i > 0 {
                self.out.push_str("\"\"");
            }
            self.out.push_str(part);
        }
        self.out.push('"');
    }

    fn timestamp(&mut self, micros: i64, zone: bool) {
        self.separate();
        temporal::write_timestamp(&mut self.out, micros, ' ');
        if zone {
            self.out.push_str("+00");
        }
    }

    fn timestamp_ms(&mut self, ms: Option<i64>) {
        match ms.and_then(|ms| ms.checked_mul(1_000)).filter(|m| temporal::valid_timestamp(*m)) {
            Some(micros) => self.timestamp(micros, false),
            None => self.null(),
        }
    }

    fn int(&mut self, n: i64) {
        self.bare(itoa::Buffer::new().format(n));
    }

    /// A value into a column of `kind`: written, staged NULL with a special flag, or unfit.
    fn value(&mut self, kind: FieldKind, value: &Value<'_>, document: bool) -> Field {
        let mut text = String::new();
        match (kind, value) {
            (_, Value::Null | Value::Unavailable) => self.null(),
            (FieldKind::Document, value) => {
                return if self.document(value, document) { Field::Written } else { Field::Unfit };
            }
            (FieldKind::Character, Value::Text(s)) => self.quoted(s),
            (FieldKind::Character, Value::Int(_) | Value::Decimal(_) | Value::Date(_) | Value::Time(_)) => {
                value.write_text(&mut text);
                self.quoted(&text);
            }
            (FieldKind::Bytes, Value::Bytes(b)) if !b.is_empty() => {
                self.separate();
                for byte in b.iter() {
                    crate::digits::push_hex_byte(&mut self.out, *byte);
                }
            }
            (FieldKind::Timestamp, Value::Timestamp(t)) => self.timestamp(*t, false),
            (FieldKind::TimestampTz, Value::Timestamp(t)) => self.timestamp(*t, true),
            (FieldKind::Integer, Value::Int(i)) => self.int(*i),
            // A whole decimal (`2.00`) as its integer; any other is unfit (the target's checks
            // reject a fraction into an integer column before the file is written).
            (FieldKind::Integer, Value::Decimal(d)) => match whole(d) {
                Some(n) => self.bare(&n.to_string()),
                None => return Field::Unfit,
            },
            (FieldKind::Bytes, Value::Bytes(_)) => return self.special('E'),
            (FieldKind::Other, Value::Float(x)) if x.is_nan() => return self.special('N'),
            (FieldKind::Other, Value::Float(x)) if x.is_infinite() => {
                return self.special(if *x > 0.0 { 'I' } else { 'J' });
            }
            // Numeric text (`decimal.handling.mode=string`) as its canonical digits: COPY reads
            // neither an exponent nor blanks around the number, which an INSERT literal's
            // cast takes. Text that is no number is unfit, as it would fail a literal too.
            (FieldKind::Numeric, Value::Text(s)) => match Decimal::parse(s.trim()) {
                Some(d) => self.bare(&d.to_string()),
                None => return Field::Unfit,
            },
            (FieldKind::Integer, Value::Text(s)) => match Decimal::parse(s.trim()).as_ref().and_then(whole) {
                Some(n) => self.bare(&n.to_string()),
                None => return Field::Unfit,
            },
            (FieldKind::Numeric, Value::Int(i)) => self.int(*i),
            (FieldKind::Numeric, Value::Decimal(_)) => {
                value.write_text(&mut text);
                self.bare(&text);
            }
            // Positional digits, the shortest that read back exactly (Rust's `Display`).
            (FieldKind::Numeric, Value::Float(x)) if x.is_finite() => {
                use std::fmt::Write as _;
                let _ = write!(text, "{x}");
                self.bare(&text);
            }
            // Not blank: COPY loads a blank field of a non-character column as NULL ("Blank
            // fields for other data types, such as INT, are always loaded with NULL",
            // BLANKSASNULL), where an INSERT literal fails.
            (FieldKind::Other, Value::Text(s)) if s.chars().any(|c| !c.is_whitespace()) => self.quoted(s),
            (FieldKind::TimeTz, Value::Time(_)) => {
                value.write_text(&mut text);
                text.push_str("+00");
                self.bare(&text);
            }
            (FieldKind::Other, Value::Bool(b)) => self.bare(if *b { "true" } else { "false" }),
            (FieldKind::Other, Value::Int(i)) => self.int(*i),
            (FieldKind::Other, Value::Float(x)) if x.is_finite() => {
                use std::fmt::Write as _;
                let _ = write!(text, "{x:e}");
                self.bare(&text);
            }
            (FieldKind::Other, Value::Decimal(_) | Value::Date(_) | Value::Time(_)) => {
                value.write_text(&mut text);
                self.bare(&text);
            }
            _ => return Field::Unfit,
        }
        Field::Written
    }

    /// A value CSV has no field for: NULL in the file, `flag` in `_cdc_special`.
    fn special(&mut self, flag: char) -> Field {
        self.null();
        Field::Special(flag)
    }

    /// A SUPER value as JSON text: a document as it came, text as a JSON string, numbers and
    /// booleans as JSON scalars (what the INSERT path's literal or `JSON_PARSE` stores).
    fn document(&mut self, value: &Value<'_>, document: bool) -> bool {
        use std::fmt::Write as _;
        let mut text = String::new();
        match value {
            Value::Text(s) if document => text.push_str(s),
            Value::Text(s) => text = serde_json::Value::String(s.to_string()).to_string(),
            Value::Bool(b) => text.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => text.push_str(itoa::Buffer::new().format(*i)),
            Value::Decimal(_) => value.write_text(&mut text),
            Value::Float(x) if x.is_finite() => {
                let _ = write!(text, "{x:e}");
            }
            _ => return false,
        }
        self.quoted(&text);
        true
    }
}

/// The integer a decimal with a zero fraction is (`2.00` → 2); `None` for any other.
fn whole(d: &Decimal) -> Option<i128> {
    let divisor = 10i128.checked_pow(d.scale)?;
    (d.unscaled % divisor == 0).then_some(d.unscaled / divisor)
}

/// One row's fields, in [`sql::staged_columns`]' order ([`sql::push_row`]'s), then
/// `_cdc_special`: the row's special flags (`0` for none), or the first column it cannot carry.
fn push_row(
    line: &mut Line<'_>,
    spec: &ApplySpec<'_>,
    kinds: &[FieldKind],
    change: &Change<'_>,
    row: usize,
    fill_sources: bool,
) -> Result<String, usize> {
    let mut flags = String::new();
    let mut specials = String::new();
    for i in 0..spec.columns.len() {
        let value = sql::value_at(spec, change, i);
        let kind = kinds.get(i).copied().unwrap_or(FieldKind::Other);
        let document = kind == FieldKind::Document && sql::is_document(change, &spec.columns[i], value);
        let kept = sql::keep(change, value);
        if kept != Keep::Write {
            sql::set_keep_flag(&mut flags, spec.columns.len(), i, kept);
        }
        let field = match kept {
            Keep::Write | Keep::Live => line.value(kind, value.unwrap_or(&Value::Null), document),
            _ => {
                line.null();
                Field::Written
            }
        };
        match field {
            Field::Written => {}
            Field::Special(flag) => {
                if specials.is_empty() {
                    specials.extend(std::iter::repeat_n('0', spec.columns.len()));
                }
                specials.replace_range(i..=i, flag.encode_utf8(&mut [0; 4]));
            }
            Field::Unfit => return Err(i),
        }
    }
    line.quoted(change.position.as_str());
    line.quoted(change.op.code());
    line.bare(if change.deleted { "true" } else { "false" });
    line.timestamp_ms(change.source_ts_ms);
    line.timestamp(spec.loaded_at_micros, false);
    line.quoted(&change.kafka.topic);
    line.int(change.kafka.partition);
    line.int(change.kafka.offset);
    line.int(i64::try_from(row).unwrap_or(i64::MAX));
    if flags.is_empty() {
        line.null();
    } else {
        line.quoted(&flags);
    }
    line.quoted(&sql::key_text(change));
    if sql::delete_with_values(change) {
        line.quoted("B");
    } else {
        line.null();
    }
    if fill_sources {
        match &change.filled_from {
            Some(source) => {
                line.quoted(source.position.as_str());
                line.timestamp_ms(source.source_ts_ms);
                line.quoted(&source.kafka.topic);
                line.int(source.kafka.partition);
                line.int(source.kafka.offset);
            }
            None => (0..5).for_each(|_| line.null()),
        }
    }
    if specials.is_empty() {
        line.null();
    } else {
        line.quoted(&specials);
    }
    Ok(specials)
}

/// The stage column of the special flags, after [`sql::staged_columns`].
pub const SPECIAL_COLUMN: &str = "_cdc_special";

/// The UPDATE that sets column `i`'s flagged values from constants, after the COPY.
fn special_update(spec: &ApplySpec<'_>, kind: FieldKind, i: usize) -> String {
    let mut column = String::new();
    sql::push_ident(&mut column, &spec.columns[i]);
    let flag = format!("SUBSTRING(\"{SPECIAL_COLUMN}\", {}, 1)", i + 1);
    let branches = match kind {
        FieldKind::Bytes => "WHEN 'E' THEN to_varbyte('', 'hex')",
        _ => {
            "WHEN 'N' THEN CAST('NaN' AS FLOAT8) WHEN 'I' THEN CAST('Infinity' AS FLOAT8) \
              WHEN 'J' THEN CAST('-Infinity' AS FLOAT8)"
        }
    };
    format!("UPDATE \"{STAGE_TABLE}\" SET {column} = CASE {flag} {branches} END WHERE {flag} <> '0'")
}

/// The `COPY` of a staged file into the stage: the stage's columns, the source, explicit
/// format options (CSV with `"` quotes, comma, the null string, GZIP, UTF-8, the default DATEFORMAT) and
/// no statistics or compression analysis for a table that lives one transaction.
pub fn copy_statement(columns: &[&str], source: &CopySource, null_as: &str) -> String {
    let mut out = format!("COPY \"{STAGE_TABLE}\" ({}) FROM ", sql::column_list(columns, None));
    sql::push_text_literal(&mut out, &source.url);
    out.push_str(" IAM_ROLE ");
    if source.iam_role.eq_ignore_ascii_case("default") {
        out.push_str("default");
    } else {
        sql::push_text_literal(&mut out, &source.iam_role);
    }
    // `CSV [ QUOTE [AS] 'quote_character' ]`: QUOTE belongs to CSV and follows it (COPY
    // syntax, "Data format parameters"; sqlfluff's Redshift grammar refuses it elsewhere).
    out.push_str(" FORMAT AS CSV QUOTE AS '\"' DELIMITER ',' NULL AS ");
    sql::push_text_literal(&mut out, null_as);
    out.push_str(" GZIP ENCODING UTF8 DATEFORMAT 'YYYY-MM-DD' COMPUPDATE OFF STATUPDATE OFF");
    out
}

/// A table whose apply SQL has a statement too large for the Data API, or too many statements:
/// its rows are rejected (rule `statement_too_large`), as on the INSERT path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// The transaction that loads `file` (staged for `rows`) from `source`; `None` when the file
/// has no rows. Its one staging statement is the `COPY` (`inserts` names it as carrying every
/// row of the file).
pub fn transaction(
    spec: &ApplySpec<'_>,
    kinds: &[FieldKind],
    rows: &[&Change<'_>],
    file: &StagedFile,
    source: &CopySource,
) -> Result<Option<Transaction>, TooLarge> {
    if file.rows.is_empty() {
        return Ok(None);
    }
    let fill_sources = rows.iter().any(|r| r.filled_from.is_some());
    let head = sql::head(spec, fill_sources, Some(SPECIAL_COLUMN));
    let mut needs = Needs::default();
    for &i in &file.rows {
        needs.add(spec, rows[i]);
    }
    let mut transaction = Transaction {
        rows: file.rows.clone(),
        inserts: std::iter::once(0..file.rows.len()).collect(),
        head: head.len(),
        statements: head,
        stale_statements: Vec::new(),
        report_statement: 0,
    };
    let mut columns = sql::staged_columns(spec, fill_sources);
    columns.push(SPECIAL_COLUMN);
    transaction.statements.push(copy_statement(&columns, source, &file.null_as));
    for &i in &file.special_columns {
        let kind = kinds.get(i).copied().unwrap_or(FieldKind::Other);
        transaction.statements.push(special_update(spec, kind, i));
    }
    sql::finish(spec, &mut transaction, &needs, fill_sources);
    if transaction.statements.len() > MAX_STATEMENTS
        || transaction.statements.iter().any(|s| s.len() > DATA_API_STATEMENT_BYTES)
    {
        return Err(TooLarge);
    }
    Ok(Some(transaction))
}

/// The file as the object's body: gzip at the fastest level (the function's CPU is the cost;
/// CSV of repeated column shapes compresses several-fold even so).
pub fn compress(csv: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(csv.len() / 4 + 64), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(csv.as_bytes());
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use super::*;
    use crate::config::{DeleteMode, TableConfig, TableName};
    use crate::debezium::{Op, Position};
    use crate::outcome::{Column, KafkaOrigin};
    use crate::value::Decimal;

    fn change(id: i64, columns: Vec<(&str, Value<'static>)>) -> Change<'static> {
        let mut all = vec![Column { name: "id".into(), value: Value::Int(id) }];
        all.extend(columns.into_iter().map(|(name, value)| Column { name: name.into(), value }));
        Change {
            table: Arc::new(TableConfig::default_for_topic("x.t").unwrap()),
            op: Op::Create,
            deleted: false,
            tombstone: false,
            position: Position::from_stored(format!("{id:020}")),
            source_ts_ms: Some(1_531_488_225_780),
            kafka: KafkaOrigin { topic: "x.t".into(), partition: 3, offset: id },
            key: vec![Value::Int(id)],
            key_columns: Arc::from(vec![Arc::from("id")]),
            columns: all,
            masked: Vec::new(),
            detected: Vec::new(),
            row_schema: None,
            filled_from: None,
        }
    }

    fn spec<'a>(target: &'a TableName, columns: &'a [Arc<str>], key: &'a [Arc<str>], now: i64) -> ApplySpec<'a> {
        ApplySpec {
            target,
            columns,
            key,
            delete_mode: DeleteMode::Soft,
            lock: true,
            loaded_at_micros: now,
            ledger: true,
            super_columns: &[],
        }
    }

    fn file_of(columns: &[(&str, FieldKind)], rows: &[Change<'_>]) -> StagedFile {
        let target = TableName { schema: "public".into(), table: "t".into() };
        let names: Vec<Arc<str>> = std::iter::once("id").chain(columns.iter().map(|c| c.0)).map(Arc::from).collect();
        let kinds: Vec<FieldKind> = std::iter::once(FieldKind::Other).chain(columns.iter().map(|c| c.1)).collect();
        let key = [Arc::from("id")];
        let spec = spec(&target, &names, &key, 1_795_521_600_000_000);
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        stage_file(&spec, &kinds, &refs)
    }

    fn text(s: &str) -> Value<'static> {
        Value::Text(Cow::Owned(s.to_owned()))
    }

    /// The data fields of line `n` (before the metadata columns), naively split (no value here
    /// holds a comma outside quotes).
    fn fields(file: &StagedFile, n: usize, count: usize) -> Vec<String> {
        let line = file.csv.lines().nth(n).unwrap();
        line.split(',').take(count).map(str::to_owned).collect()
    }

    #[test]
    fn values_are_written_as_redshift_csv_reads_them() {
        let row = change(
            7,
            vec![
                ("name", text("O\"Brien")),
                ("empty", text("")),
                ("missing", Value::Null),
                ("amount", Value::Decimal(Decimal { unscaled: -4510, scale: 2 })),
                ("ratio", Value::Float(0.1)),
                ("flag", Value::Bool(true)),
                ("born", Value::Date(17725)),
                ("seen", Value::Timestamp(1_531_488_225_780_123)),
                ("seen_tz", Value::Timestamp(1_531_488_225_780_123)),
                ("blob", Value::Bytes(Cow::Owned(vec![0, 0xff]))),
            ],
        );
        let kinds = [
            ("name", FieldKind::Character),
            ("empty", FieldKind::Character),
            ("missing", FieldKind::Character),
            ("amount", FieldKind::Other),
            ("ratio", FieldKind::Other),
            ("flag", FieldKind::Other),
            ("born", FieldKind::Other),
            ("seen", FieldKind::Timestamp),
            ("seen_tz", FieldKind::TimestampTz),
            ("blob", FieldKind::Bytes),
        ];
        let file = file_of(&kinds, &[row]);
        assert_eq!(file.null_as, "_cdc_null_");
        assert_eq!(file.rows, [0]);
        assert_eq!(
            fields(&file, 0, 11),
            [
                "7",
                "\"O\"\"Brien\"",
                "\"\"",
                "_cdc_null_",
                "-45.10",
                "1e-1",
                "true",
                "2018-07-13",
                "2018-07-13 13:23:45.780123",
                "2018-07-13 13:23:45.780123+00",
                "00ff"
            ]
        );
        // Then the metadata columns and the stage's: position, op, deleted, source ts,
        // loaded at, topic, partition, offset, _cdc_row, _cdc_keep, _cdc_key, _cdc_found.
        let line = file.csv.lines().next().unwrap();
        assert!(
            line.ends_with(
                ",\"00000000000000000007\",\"c\",false,2018-07-13 13:23:45.780000,2026-11-24 12:00:00.000000,\"x.t\",3,7,0,_cdc_null_,\"7\",_cdc_null_,_cdc_null_"
            ),
            "{line}"
        );
    }

    #[test]
    fn newlines_quotes_and_delimiters_stay_inside_one_quoted_field() {
        let file = file_of(&[("note", FieldKind::Character)], &[change(1, vec![("note", text("a,b\n\"c\"\r\n\\"))])]);
        assert!(file.csv.starts_with("1,\"a,b\n\"\"c\"\"\r\n\\\",\""), "{}", file.csv);
        assert_eq!(file.csv.matches('\n').count(), 3, "two inside the field, one ending the row");
    }

    #[test]
    fn a_text_equal_to_the_null_string_gets_another_null_string() {
        let rows = [
            change(1, vec![("note", text("_cdc_null_"))]),
            change(2, vec![("note", text("_cdc_null_1"))]),
            change(3, vec![("note", Value::Null)]),
        ];
        let file = file_of(&[("note", FieldKind::Character)], &rows);
        assert_eq!(file.null_as, "_cdc_null_2", "neither _cdc_null_ nor _cdc_null_1, which are texts of the file");
        assert_eq!(fields(&file, 0, 2)[1], "\"_cdc_null_\"");
        assert_eq!(fields(&file, 2, 2)[1], "_cdc_null_2");
        let source = CopySource { url: "s3://b/k.csv.gz".into(), iam_role: "default".into() };
        let sql = copy_statement(&["id", "note"], &source, &file.null_as);
        assert!(sql.contains("NULL AS '_cdc_null_2'"), "{sql}");
    }

    #[test]
    fn special_values_are_flagged_and_unfit_ones_rejected() {
        let rows = [
            change(1, vec![("blob", Value::Bytes(Cow::Owned(Vec::new())))]),
            change(2, vec![("count", text(""))]),
            change(3, vec![("ratio", Value::Float(f64::NAN))]),
            change(4, vec![("blob", Value::Bytes(Cow::Owned(vec![1])))]),
        ];
        let kinds = [("blob", FieldKind::Bytes), ("count", FieldKind::Other), ("ratio", FieldKind::Other)];
        let file = file_of(&kinds, &rows);
        assert_eq!(file.unfit, [(1, 2)], "an empty text into a non-character column: column 2 (count)");
        assert_eq!(file.rows, [0, 2, 3]);
        assert_eq!(file.special_columns, [1, 3]);
        let lines: Vec<&str> = file.csv.lines().collect();
        assert!(lines[0].starts_with("1,_cdc_null_,") && lines[0].ends_with(",\"0E00\""), "{}", lines[0]);
        assert!(lines[1].ends_with(",\"000N\""), "{}", lines[1]);
        assert!(lines[2].starts_with("4,01,") && lines[2].ends_with(",_cdc_null_"), "{}", lines[2]);
        // The transaction sets the flagged values from constants after the COPY.
        let target = TableName { schema: "public".into(), table: "t".into() };
        let names: Vec<Arc<str>> = ["id", "blob", "count", "ratio"].map(Arc::from).to_vec();
        let key = [Arc::from("id")];
        let spec = spec(&target, &names, &key, 0);
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let all_kinds = [FieldKind::Other, FieldKind::Bytes, FieldKind::Other, FieldKind::Other];
        let file = stage_file(&spec, &all_kinds, &refs);
        let source = CopySource { url: "s3://b/k.csv.gz".into(), iam_role: "default".into() };
        let tx = transaction(&spec, &all_kinds, &refs, &file, &source).unwrap().unwrap();
        let after_copy = &tx.statements[tx.head + 1..tx.head + 3];
        assert_eq!(
            after_copy,
            [
                "UPDATE \"_cdc_stage\" SET \"blob\" = CASE SUBSTRING(\"_cdc_special\", 2, 1) WHEN 'E' THEN to_varbyte('', 'hex') END \
                 WHERE SUBSTRING(\"_cdc_special\", 2, 1) <> '0'",
                "UPDATE \"_cdc_stage\" SET \"ratio\" = CASE SUBSTRING(\"_cdc_special\", 4, 1) WHEN 'N' THEN CAST('NaN' AS FLOAT8) \
                 WHEN 'I' THEN CAST('Infinity' AS FLOAT8) WHEN 'J' THEN CAST('-Infinity' AS FLOAT8) END \
                 WHERE SUBSTRING(\"_cdc_special\", 4, 1) <> '0'",
            ]
        );
        assert!(tx.statements[tx.head].contains("\"_cdc_found\", \"_cdc_special\") FROM"));
    }

    #[test]
    fn a_whole_decimal_into_an_integer_column_is_written_as_its_integer() {
        let rows = [
            change(1, vec![("n", Value::Decimal(Decimal { unscaled: -200, scale: 2 }))]),
            change(2, vec![("n", Value::Decimal(Decimal { unscaled: 150, scale: 2 }))]),
            change(3, vec![("n", Value::Int(7))]),
        ];
        let file = file_of(&[("n", FieldKind::Integer)], &rows);
        assert_eq!(fields(&file, 0, 2), ["1", "-2"]);
        assert_eq!(file.unfit, [(1, 1)], "1.50 is no integer");
        assert_eq!(fields(&file, 1, 2), ["3", "7"]);
        assert_eq!(FieldKind::of("INT4"), FieldKind::Integer);
        let file = file_of(&[("d", FieldKind::Numeric)], &[change(1, vec![("d", Value::Float(1.25))])]);
        assert_eq!(fields(&file, 0, 2), ["1", "1.25"], "no exponent into a DECIMAL column");
        let rows = [
            change(1, vec![("d", text(" 1E+3 "))]),
            change(2, vec![("d", text("abc"))]),
            change(3, vec![("i", text("  "))]),
        ];
        let file = file_of(&[("d", FieldKind::Numeric), ("i", FieldKind::Other)], &rows);
        assert_eq!(fields(&file, 0, 2), ["1", "1000"], "numeric text as its canonical digits");
        assert_eq!(file.unfit, [(1, 1), (2, 2)], "no number; blank text COPY would load as NULL");
    }

    #[test]
    fn super_values_are_json_text() {
        let rows = [
            change(1, vec![("doc", text("{\"a\": [1, 2]}"))]),
            change(2, vec![("doc", text("plain \"text\""))]),
            change(3, vec![("doc", Value::Int(5))]),
        ];
        let file = file_of(&[("doc", FieldKind::Document)], &rows);
        let lines: Vec<&str> = file.csv.lines().collect();
        assert!(lines[0].starts_with("1,\"{\"\"a\"\": [1, 2]}\","), "{}", lines[0]);
        assert!(lines[1].starts_with("2,\"\"\"plain \\\"\"text\\\"\"\"\"\","), "{}", lines[1]);
        assert!(lines[2].starts_with("3,\"5\","), "{}", lines[2]);
    }

    #[test]
    fn the_copy_transaction_carries_no_value_and_its_object_is_gzip() {
        let rows = [change(1, vec![("name", text("Secret-Name"))])];
        let target = TableName { schema: "public".into(), table: "t".into() };
        let names: Vec<Arc<str>> = vec![Arc::from("id"), Arc::from("name")];
        let key = [Arc::from("id")];
        let spec = spec(&target, &names, &key, 0);
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let file = stage_file(&spec, &[FieldKind::Other, FieldKind::Character], &refs);
        let source = CopySource {
            url: "s3://bucket/staging/public.t/abc.csv.gz".into(),
            iam_role: "arn:aws:iam::123456789012:role/copy".into(),
        };
        let tx = transaction(&spec, &[FieldKind::Other, FieldKind::Character], &refs, &file, &source).unwrap().unwrap();
        let mut columns = sql::staged_columns(&spec, false);
        columns.push(SPECIAL_COLUMN);
        assert_eq!(tx.statements[tx.head], copy_statement(&columns, &source, "_cdc_null_"));
        assert!(tx.statements[tx.head].starts_with("COPY \"_cdc_stage\" (\"id\", \"name\", \"_cdc_position\""));
        assert!(tx.statements[tx.head].contains(
            "FROM 's3://bucket/staging/public.t/abc.csv.gz' IAM_ROLE 'arn:aws:iam::123456789012:role/copy' FORMAT AS CSV"
        ));
        assert_eq!(tx.rows_of_statement(tx.head), Some(&[0][..]));
        assert!(tx.statements.iter().all(|s| !s.contains("Secret-Name")));
        let mut unzipped = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(compress(&file.csv).as_slice()), &mut unzipped)
            .unwrap();
        assert_eq!(unzipped, file.csv);
        assert!(unzipped.contains("\"Secret-Name\""));
    }
}
