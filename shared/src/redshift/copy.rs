//! The staged-COPY apply (`load = "copy"`): the rows of a transaction go to S3 as one
//! gzip-compressed CSV object, and the transaction `COPY`s it into the stage instead of
//! inserting `VALUES` literals. Pure builders, like [`super::sql`]: rows in, a file and SQL out.
//!
//! The transaction is the apply SQL of [`super::sql`] with its stage inserts replaced by one
//! statement: `[LOCK]`, `CREATE TEMP TABLE "_cdc_stage"`, `COPY "_cdc_stage" (…) FROM
//! 's3://…' IAM_ROLE '…' FORMAT AS CSV …`, then the same tail (position guard, carry, delete,
//! update, insert, ledger, report). No row value is in any statement: the values are in the
//! object, which the loader deletes after the transaction (the bucket's lifecycle rule is the
//! backstop).
//!
//! # The file
//! CSV as Redshift reads it ("Data format parameters", `CSV`, Redshift Database Developer
//! Guide): comma, `"` quotes (a quote inside doubled), `\n` between rows, no header, UTF-8.
//! Per field:
//! - NULL is the null string (`NULL AS`), unquoted. Redshift compares it after removing the
//!   quotes, so a quoted text equal to it would load as NULL too: the null string is `\N`
//!   unless a text of the file equals `\N`, and then the first of `\N1`, `\N2`, … no text
//!   equals ([`StagedFile::null_as`]).
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
//! A value the file cannot carry exactly goes the INSERT way instead ([`StagedFile::by_insert`]):
//! an empty VARBYTE or an empty text in a column that is not CHAR/VARCHAR (COPY loads "empty
//! fields for other data types, such as INT, … with NULL", "Data conversion parameters"),
//! floats that are NaN or infinite, and value kinds a column type takes only as a literal
//! (a timestamp into a DATE column, bytes into SUPER, …). Those rows keep the INSERT path's
//! exact semantics, including its errors.

use std::collections::HashSet;
use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::sql::{self, ApplySpec, DATA_API_STATEMENT_BYTES, Keep, MAX_STATEMENTS, Needs, STAGE_TABLE, Transaction};
use crate::outcome::Change;
use crate::temporal;
use crate::value::Value;

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
    /// Every other type (numbers, booleans, dates, times): the value's text.
    Other,
}

impl FieldKind {
    /// The kind of a column of type `type_name` (case-insensitive).
    pub fn of(type_name: &str) -> FieldKind {
        let lower = type_name.to_ascii_lowercase();
        if super::target::is_character_type(&lower) || matches!(lower.as_str(), "text" | "bpchar") {
            return FieldKind::Character;
        }
        match lower.as_str() {
            "super" => FieldKind::Document,
            "varbyte" | "varbinary" | "binary varying" | "bytea" => FieldKind::Bytes,
            "timestamp" | "timestamp without time zone" => FieldKind::Timestamp,
            "timestamptz" | "timestamp with time zone" => FieldKind::TimestampTz,
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
    /// The null string (`NULL AS`): `\N`, or one no text of the file equals.
    pub null_as: String,
    /// Indices (into the rows given) of the rows the file carries, in file order: the
    /// file's line `n` (1-based) is `rows[n - 1]`.
    pub rows: Vec<usize>,
    /// Indices of the rows the file cannot carry exactly: they go the INSERT way.
    pub by_insert: Vec<usize>,
}

/// The default null string of COPY ("NULL AS", "The default null_string is '\N'").
const NULL_AS: &str = "\\N";

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
        if push_row(&mut line, spec, kinds, change, index, fill_sources) {
            line.out.push('\n');
            file.csv.push_str(&line.out);
            file.rows.push(index);
        } else {
            file.by_insert.push(index);
        }
    }
    (file, near)
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

    /// A value into a column of `kind`; false when the file cannot carry it exactly.
    fn value(&mut self, kind: FieldKind, value: &Value<'_>, document: bool) -> bool {
        let mut text = String::new();
        match (kind, value) {
            (_, Value::Null | Value::Unavailable) => self.null(),
            (FieldKind::Document, value) => return self.document(value, document),
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
            (FieldKind::Other, Value::Text(s)) if !s.is_empty() => self.quoted(s),
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
            _ => return false,
        }
        true
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

/// One row's fields, in [`sql::staged_columns`]' order ([`sql::push_row`]'s). False when a
/// value cannot be carried.
fn push_row(
    line: &mut Line<'_>,
    spec: &ApplySpec<'_>,
    kinds: &[FieldKind],
    change: &Change<'_>,
    row: usize,
    fill_sources: bool,
) -> bool {
    let mut flags = String::new();
    for i in 0..spec.columns.len() {
        let value = sql::value_at(spec, change, i);
        let kind = kinds.get(i).copied().unwrap_or(FieldKind::Other);
        let document = kind == FieldKind::Document && sql::is_document(change, &spec.columns[i], value);
        let kept = sql::keep(change, value);
        if kept != Keep::Write {
            sql::set_keep_flag(&mut flags, spec.columns.len(), i, kept);
        }
        let fits = match kept {
            Keep::Write | Keep::Live => line.value(kind, value.unwrap_or(&Value::Null), document),
            _ => {
                line.null();
                true
            }
        };
        if !fits {
            return false;
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
    true
}

/// The `COPY` of a staged file into the stage: the stage's columns, the source, explicit
/// format options (CSV, comma, `"`, the null string, GZIP, UTF-8, the default DATEFORMAT) and
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
    out.push_str(" FORMAT AS CSV DELIMITER ',' QUOTE '\"' NULL AS ");
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
    rows: &[&Change<'_>],
    file: &StagedFile,
    source: &CopySource,
) -> Result<Option<Transaction>, TooLarge> {
    if file.rows.is_empty() {
        return Ok(None);
    }
    let fill_sources = rows.iter().any(|r| r.filled_from.is_some());
    let head = sql::head(spec, fill_sources);
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
    let columns = sql::staged_columns(spec, fill_sources);
    transaction.statements.push(copy_statement(&columns, source, &file.null_as));
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
