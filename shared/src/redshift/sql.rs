//! Pure SQL builders: data in, strings out. The apply SQL is the portable subset of Redshift
//! and PostgreSQL 15; one `BatchExecuteStatement` is one transaction (statements in brackets
//! only when the rows need them):
//!
//! 1. `[LOCK target, ledger]`, `CREATE TEMP TABLE "_cdc_stage" AS SELECT <columns>, <stage
//!    columns> FROM target WHERE 1 = 0` — the target's types without its NOT NULL constraints
//!    (a delete stages only its key), plus the stage's own columns: the row's index in the plan
//!    (`_cdc_row`), which columns keep the stored value (`_cdc_keep`, one flag per column), the
//!    key as text (`_cdc_key`, for the delete ledger), how the target holds the key
//!    (`_cdc_found`: `L` live, `D` soft-deleted; `B` staged for a delete that carries values of
//!    its batch), whether it holds it at all (`_cdc_held`) and why the row is rejected
//!    (`_cdc_reject`).
//! 2. `INSERT INTO "_cdc_stage" … VALUES (…), (…)` — as many as needed, each ≤ 90 KB.
//! 3. Mark `_cdc_found` and `_cdc_held` from the target.
//! 4. Drop the rows the target (or, for keys it lacks, the delete ledger) holds a provably
//!    newer-or-equal change of: stale. Their count is the statements' ResultRows.
//! 5. Reject (`position_regressed`) the rows whose order against the stored one cannot be known.
//!    The order is [`crate::debezium::compare`], rendered by [`OrderSql`].
//! 6. `[reject unavailable_value]` an upsert that keeps a column of a row the target lacks;
//!    `[reject delete_ledger_missing]` a delete that needs the ledger when there is none.
//! 7. `[UPDATE "_cdc_stage" … FROM target]`: carry the stored values into the kept columns
//!    (Debezium's unavailable-value placeholder; every non-key column of a delete), one
//!    statement per 90 KB of assignments.
//! 8. `[DELETE FROM target USING "_cdc_stage"]` (hard deletes), `UPDATE target … FROM
//!    "_cdc_stage"` (rows the target holds: upserts, soft deletes that keep the stored values)
//!    and `INSERT INTO target … SELECT … FROM "_cdc_stage"` (new rows). Only the columns the
//!    batch sends are written: the target's other columns keep their values, or take their
//!    DEFAULT in a new row.
//! 9. `[DELETE FROM / INSERT INTO "<schema>"."_cdc_deletes"]`: a delete the target keeps no row
//!    for (hard deletes; soft deletes of keys it never held) is recorded in the schema's delete
//!    ledger, so an older change of the key that arrives later is found stale.
//! 10. `SELECT "_cdc_row", "_cdc_reject" FROM "_cdc_stage" WHERE "_cdc_reject" IS NOT NULL`:
//!     read (one more Data API call) only when its ResultRows is not 0.
//!
//! Literals follow Redshift's rules: backslash is an escape inside `'…'`, so `\` becomes `\\`
//! and `'` becomes `''`; `E'…'` does not exist. NUL never reaches here (decode rejects or
//! strips it). Identifiers are lowercase and double-quoted.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use crate::config::{DeleteMode, TableName};
use crate::outcome::Change;
use crate::plan::TablePlan;
use crate::rule::Rule;
use crate::temporal;
use crate::value::{Value, write_float};

/// The Data API accepts 100 KB of SQL per statement; keep a margin.
pub const MAX_STATEMENT_BYTES: usize = 90 * 1024;
/// Statements per `BatchExecuteStatement`.
pub const MAX_STATEMENTS: usize = 40;
/// The most statements after the stage inserts (steps 3 to 10, all of them), besides the
/// UPDATEs that carry stored values (step 7), of which there are [`carry_statements`].
const MAX_TAIL_STATEMENTS: usize = 13;
/// The tail's statements that check filled-in values, when the transaction has such rows.
const FILL_SOURCE_STATEMENTS: usize = 2;
/// The Data API's limit on one statement: "The SQL statement text can be up to 100 KB"
/// (ExecuteStatement, Amazon Redshift Data API reference). Statements other than the stage
/// inserts grow with the number and length of column names only; a table whose names push one
/// past this cannot be loaded through the Data API, and its rows are rejected
/// (`statement_too_large`) instead of failing every retry.
pub const DATA_API_STATEMENT_BYTES: usize = 100 * 1024;

/// The temporary table each transaction stages its rows in (step 1 of the module docs).
pub const STAGE_TABLE: &str = "_cdc_stage";
/// Metadata columns every target table carries, in the order they are written.
pub const METADATA_COLUMNS: [&str; 8] = [
    "_cdc_position",
    "_cdc_op",
    "_cdc_deleted",
    "_cdc_source_ts",
    "_cdc_loaded_at",
    "_cdc_kafka_topic",
    "_cdc_kafka_partition",
    "_cdc_kafka_offset",
];
/// The delete ledger's table name, in each target schema.
pub const DELETE_LEDGER: &str = "_cdc_deletes";
/// The ledger's columns, in the order they are written.
pub const DELETE_LEDGER_COLUMNS: [&str; 8] = [
    "_cdc_table",
    "_cdc_key",
    "_cdc_position",
    "_cdc_source_ts",
    "_cdc_kafka_topic",
    "_cdc_kafka_partition",
    "_cdc_kafka_offset",
    "_cdc_deleted_at",
];
/// The stage's own columns after the target's, with their types. The stage inserts write the
/// first [`STAGED_BY_INSERTS`]; the apply statements set the others.
const STAGE_COLUMNS: [(&str, &str); 6] = [
    ("_cdc_row", "INTEGER"),
    ("_cdc_keep", "VARCHAR(1600)"),
    ("_cdc_key", "VARCHAR(65535)"),
    ("_cdc_found", "CHAR(1)"),
    ("_cdc_held", "BOOLEAN"),
    ("_cdc_reject", "VARCHAR(32)"),
];
const STAGED_BY_INSERTS: usize = 4;
/// Prefix of the stage columns holding the evidence of the change a row's filled-in values
/// came from ([`Change::filled_from`]); staged only by transactions that have such rows.
const FILL_SOURCE_PREFIX: &str = "_cdc_src_";
const FILL_SOURCE_COLUMNS: [(&str, &str); 5] = [
    ("_cdc_src_position", "VARCHAR(64)"),
    ("_cdc_src_source_ts", "TIMESTAMP"),
    ("_cdc_src_kafka_topic", "VARCHAR(249)"),
    ("_cdc_src_kafka_partition", "INTEGER"),
    ("_cdc_src_kafka_offset", "BIGINT"),
];

/// Append `name` as a lowercase double-quoted identifier.
pub fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\"\""),
            c => out.extend(c.to_lowercase()),
        }
    }
    out.push('"');
}

/// `"schema"."table"`.
pub fn qualified(table: &TableName) -> String {
    let mut out = String::with_capacity(table.schema.len() + table.table.len() + 5);
    push_ident(&mut out, &table.schema);
    out.push('.');
    push_ident(&mut out, &table.table);
    out
}

/// The delete ledger of `target`'s schema.
pub fn delete_ledger(target: &TableName) -> TableName {
    TableName { schema: target.schema.clone(), table: DELETE_LEDGER.into() }
}

/// Append a string literal with Redshift escaping.
pub fn push_text_literal(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('\'');
    if !text.contains(['\\', '\'']) {
        out.push_str(text);
    } else {
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("''"),
                c => out.push(c),
            }
        }
    }
    out.push('\'');
}

/// Append a value as a SQL literal (`NULL` for an unavailable value: the stored one is kept).
pub fn push_literal(out: &mut String, value: &Value<'_>) {
    match value {
        Value::Null | Value::Unavailable => out.push_str("NULL"),
        Value::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        // Exponent form, the shortest that reads back exactly: a plain `1e300` would be a
        // 301-digit numeric literal, beyond the 38 digits of Redshift's numeric type, and
        // `1.5e0` is a float literal, not a NUMERIC ("Numeric literals", Redshift Database
        // Developer Guide: `[ + | - ] digit ... [ . ] [ digit ...] [ e | E [ + | - ] digit ... ]`).
        // (Not -0: a numeric literal has no negative zero.)
        Value::Float(x) if x.is_finite() && !(*x == 0.0 && x.is_sign_negative()) => {
            let _ = write!(out, "{x:e}");
        }
        // -0 as a float (a text '-0' into SUPER would be a string).
        Value::Float(x) if *x == 0.0 => out.push_str("CAST('-0' AS FLOAT8)"),
        // 'NaN', 'Infinity' and '-Infinity' as text, cast by the column's float type.
        Value::Float(x) => {
            let mut text = String::new();
            write_float(&mut text, *x);
            push_text_literal(out, &text);
        }
        Value::Decimal(d) => {
            let _ = write!(out, "{d}");
        }
        Value::Text(s) => push_text_literal(out, s),
        // Redshift VARBYTE from hex (the emulator provides the same function).
        Value::Bytes(b) => {
            out.push_str("to_varbyte('");
            out.reserve(b.len() * 2 + 10);
            for byte in b.iter() {
                crate::digits::push_hex_byte(out, *byte);
            }
            out.push_str("', 'hex')");
        }
        Value::Date(_) | Value::Time(_) => {
            out.push('\'');
            value.write_text(out);
            out.push('\'');
        }
        // Timestamps are UTC, and say so: a TIMESTAMPTZ column reads a literal without a zone
        // in the session's time zone (which `SET timezone` or `ALTER USER … SET timezone` can
        // change), and a TIMESTAMP column ignores the zone ("Time zone values in input strings
        // are ignored", "Datetime types", Redshift Database Developer Guide).
        Value::Timestamp(_) => {
            out.push('\'');
            value.write_text(out);
            out.push_str("+00'");
        }
    }
}

/// The key of a change as one text, for the delete ledger: each key value's canonical text
/// (trailing blanks dropped, as Redshift compares text), `|`-separated, with `\\` and `|`
/// escaped by a backslash.
pub fn key_text(change: &Change<'_>) -> String {
    let mut out = String::new();
    for (i, value) in change.key.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        let text = value.text();
        let text = if matches!(value, Value::Text(_)) { text.trim_end_matches(' ') } else { &text };
        for c in text.chars() {
            if matches!(c, '\\' | '|') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// A value for a `SUPER` column. A JSON document (a Debezium `io.debezium.data.Json` column,
/// an array or a map; without a schema, text holding a JSON object or array) goes through
/// `JSON_PARSE`: "If the JSON_PARSE function is missing in the query, Amazon Redshift treats
/// the value as a single string instead of a JSON-formatted string that must be parsed"
/// ("Ingesting and querying semistructured data", Redshift Database Developer Guide). Other
/// text is a SUPER string; other values are scalars.
fn push_super_literal(out: &mut String, change: &Change<'_>, column: &str, value: &Value<'_>) {
    if is_document(change, column, Some(value)) {
        out.push_str("JSON_PARSE(");
        push_literal(out, value);
        out.push(')');
    } else {
        push_literal(out, value);
    }
}

/// Whether `value` of `column` is a JSON document for a SUPER column ([`push_super_literal`]):
/// text the row's schema declares JSON or composite, or without a schema, text holding a JSON
/// object or array.
pub(crate) fn is_document(change: &Change<'_>, column: &str, value: Option<&Value<'_>>) -> bool {
    let Some(Value::Text(text)) = value else { return false };
    let declared = change.row_schema.as_ref().and_then(|s| s.fields.iter().find(|f| f.column.as_ref() == column));
    match declared.map(|f| &f.ty) {
        Some(ty) => matches!(ty, crate::debezium::ColumnType::Json | crate::debezium::ColumnType::Composite),
        None => {
            let trimmed = text.trim_start();
            (trimmed.starts_with('{') || trimmed.starts_with('['))
                && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
        }
    }
}

/// What the apply SQL writes to: the target, its data columns, its key.
#[derive(Debug, Clone)]
pub struct ApplySpec<'a> {
    /// The target table (rendered `"schema"."table"`).
    pub target: &'a TableName,
    /// Data columns to write (metadata columns are added), key columns included.
    pub columns: &'a [Arc<str>],
    /// The key columns, in key order.
    pub key: &'a [Arc<str>],
    /// What a delete does: flag the row (`soft`) or remove it (`hard`).
    pub delete_mode: DeleteMode,
    /// Start each transaction with `LOCK` on the target: concurrent loaders of one table
    /// then wait for each other instead of failing on serialization conflicts (at the cost
    /// of blocking readers of the table while a load runs, in Redshift).
    pub lock: bool,
    /// `_cdc_loaded_at` for every row of this load.
    pub loaded_at_micros: i64,
    /// The target's schema has the delete ledger ([`DELETE_LEDGER`]).
    pub ledger: bool,
    /// `columns` that are `SUPER` in the target (empty: none).
    pub super_columns: &'a [bool],
}

/// What a stage row does with the stored value of a column (one character of `_cdc_keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Write the staged value.
    Write = b'0' as isize,
    /// Keep the stored value; a new row gets NULL. A column the change does not carry: every
    /// value a delete has no in-batch value for, a target column the source does not send.
    Stored = b'1' as isize,
    /// Keep the stored value, which must exist: the source could not send it (Debezium's
    /// unavailable-value placeholder). Without a stored row the change is rejected
    /// (`unavailable_value`): the value is unknown.
    Required = b'U' as isize,
    /// Write the staged value only over a live stored row, else keep the stored value. A delete
    /// carries the values of an earlier change of its batch that sent placeholders: that change
    /// lands only over a live row, so its values stand only there.
    Live = b'L' as isize,
}

/// Mark column `i` of `columns` as `kept` in a row's `_cdc_keep` flags (`0` for the others).
pub(crate) fn set_keep_flag(flags: &mut String, columns: usize, i: usize, kept: Keep) {
    if flags.is_empty() {
        flags.extend(std::iter::repeat_n('0', columns));
    }
    let flag = match kept {
        Keep::Required => "U",
        Keep::Live => "L",
        Keep::Stored => "1",
        Keep::Write => "0",
    };
    flags.replace_range(i..=i, flag);
}

pub(crate) fn keep(change: &Change<'_>, value: Option<&Value<'_>>) -> Keep {
    match value {
        None | Some(Value::Unavailable) if change.deleted => Keep::Stored,
        None => Keep::Stored,
        Some(Value::Unavailable) => Keep::Required,
        Some(_) if change.deleted && change.columns.iter().any(|c| c.value.is_unavailable()) => Keep::Live,
        Some(_) => Keep::Write,
    }
}

/// The value of `spec.columns[i]` in `change`.
pub(crate) fn value_at<'c>(spec: &ApplySpec<'_>, change: &'c Change<'_>, i: usize) -> Option<&'c Value<'c>> {
    let name = &spec.columns[i];
    // Rows usually list their columns in the plan's order: try that position first.
    match change.columns.get(i) {
        Some(c) if &c.name == name => Some(&c.value),
        _ => change.columns.iter().find(|c| &c.name == name).map(|c| &c.value),
    }
}

/// A delete that carries every value of an earlier change of its batch (a create and a delete
/// in one batch): soft mode stores it as a deleted row even when the target never held the key.
pub(crate) fn delete_with_values(change: &Change<'_>) -> bool {
    change.deleted
        && change.columns.len() > change.key_columns.len()
        && !change.columns.iter().any(|c| c.value.is_unavailable())
}

/// Append one row as a `VALUES` tuple: the data columns in `spec.columns` order (NULL where
/// the row keeps the stored value), the metadata columns, then the stage's own columns that
/// inserts write. `row` is the row's index in the plan.
pub fn push_row(out: &mut String, spec: &ApplySpec<'_>, change: &Change<'_>, row: usize, spec_has_fill_sources: bool) {
    out.push('(');
    let mut flags = String::new();
    for i in 0..spec.columns.len() {
        if i > 0 {
            out.push(',');
        }
        let value = value_at(spec, change, i);
        match keep(change, value) {
            Keep::Write if spec.super_columns.get(i).copied().unwrap_or(false) => {
                push_super_literal(out, change, &spec.columns[i], value.unwrap_or(&Value::Null));
            }
            Keep::Write => push_literal(out, value.unwrap_or(&Value::Null)),
            kept => {
                set_keep_flag(&mut flags, spec.columns.len(), i, kept);
                match kept {
                    Keep::Live => push_literal(out, value.unwrap_or(&Value::Null)),
                    _ => out.push_str("NULL"),
                }
            }
        }
    }
    out.push(',');
    push_text_literal(out, change.position.as_str());
    out.push_str(",'");
    out.push_str(change.op.code());
    out.push_str(if change.deleted { "',TRUE," } else { "',FALSE," });
    push_timestamp_ms(out, change.source_ts_ms);
    out.push(',');
    push_literal(out, &Value::Timestamp(spec.loaded_at_micros));
    out.push(',');
    push_text_literal(out, &change.kafka.topic);
    out.push(',');
    out.push_str(itoa::Buffer::new().format(change.kafka.partition));
    out.push(',');
    out.push_str(itoa::Buffer::new().format(change.kafka.offset));
    out.push(',');
    out.push_str(itoa::Buffer::new().format(row));
    out.push(',');
    if flags.is_empty() {
        out.push_str("NULL");
    } else {
        out.push('\'');
        out.push_str(&flags);
        out.push('\'');
    }
    out.push(',');
    push_text_literal(out, &key_text(change));
    out.push_str(if delete_with_values(change) { ",'B'" } else { ",NULL" });
    if spec_has_fill_sources {
        match &change.filled_from {
            Some(source) => {
                out.push(',');
                push_text_literal(out, source.position.as_str());
                out.push(',');
                push_timestamp_ms(out, source.source_ts_ms);
                out.push(',');
                push_text_literal(out, &source.kafka.topic);
                let _ = write!(out, ",{},{}", source.kafka.partition, source.kafka.offset);
            }
            None => out.push_str(",NULL,NULL,NULL,NULL,NULL"),
        }
    }
    out.push(')');
}

/// A commit time (ms since the epoch) as a timestamp literal; NULL when unknown or out of range.
pub(crate) fn push_timestamp_ms(out: &mut String, ms: Option<i64>) {
    match ms.and_then(|ms| ms.checked_mul(1_000)).filter(|m| temporal::valid_timestamp(*m)) {
        Some(micros) => push_literal(out, &Value::Timestamp(micros)),
        None => out.push_str("NULL"),
    }
}

pub(crate) fn column_list(columns: &[&str], qualifier: Option<&str>) -> String {
    let mut out = String::new();
    for (i, name) in columns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Some(q) = qualifier {
            out.push_str(q);
            out.push('.');
        }
        push_ident(&mut out, name);
    }
    out
}

fn key_match(spec: &ApplySpec<'_>, target: &str, stage: &str) -> String {
    let mut out = String::new();
    for (i, key) in spec.key.iter().enumerate() {
        if i > 0 {
            out.push_str(" AND ");
        }
        out.push_str(target);
        out.push('.');
        push_ident(&mut out, key);
        out.push_str(" = ");
        out.push_str(stage);
        out.push('.');
        push_ident(&mut out, key);
    }
    out
}

/// [`crate::debezium::compare`] as SQL: a stage row (`s`) against a stored row or ledger entry
/// (`t`), whose `_cdc_deleted` is `t_deleted`. Both have `_cdc_position`, `_cdc_source_ts` and
/// the `_cdc_kafka_*` columns. NULLs (rows stored before a column existed) count as unknown.
#[derive(Debug, Clone)]
pub struct OrderSql {
    /// Provably older or the same change: drop it.
    pub stale: String,
    /// Provably newer: apply it.
    pub newer: String,
}

impl OrderSql {
    /// `t_snapshot`: whether the stored row is a snapshot read (its time an upper bound).
    pub fn new(t: &str, t_deleted: &str, t_snapshot: &str, s: &str) -> OrderSql {
        let s_side = Side {
            prefix: "_cdc_",
            deleted: format!("{s}.\"_cdc_deleted\""),
            found: format!("{s}.\"_cdc_found\""),
            snapshot: format!("COALESCE({s}.\"_cdc_op\" = 'r', FALSE)"),
        };
        OrderSql::of(t, t_deleted, t_snapshot, s, &s_side)
    }

    /// The order of the change a stage row's filled-in values came from (its `_cdc_src_*`
    /// columns, an upsert) against the stored row.
    pub fn fill_source(t: &str, t_deleted: &str, t_snapshot: &str, s: &str) -> OrderSql {
        let s_side = Side {
            prefix: FILL_SOURCE_PREFIX,
            deleted: "FALSE".into(),
            found: "NULL".into(),
            snapshot: "FALSE".into(),
        };
        OrderSql::of(t, t_deleted, t_snapshot, s, &s_side)
    }

    /// [`crate::debezium::compare`] of `s` (its columns named by `side`) against `t`.
    fn of(t: &str, t_deleted: &str, t_snapshot: &str, s: &str, side: &Side) -> OrderSql {
        let Side { prefix, deleted: s_deleted, found: s_found, snapshot: s_snapshot } = side;
        let col = |name: &str| format!("{s}.\"{prefix}{name}\"");
        let tp = format!("COALESCE({t}.\"_cdc_position\", '')");
        let sp = col("position");
        let (tt, st) = (format!("{t}.\"_cdc_source_ts\""), col("source_ts"));
        let same_lineage = format!("{tp} <> '' AND {sp} <> '' AND LEFT({tp}, 8) = LEFT({sp}, 8)");
        // Times contradict "s is newer" only against a stored commit time, and "s is older or
        // the same" only with an incoming commit time (a snapshot read's is an upper bound).
        let against_newer = format!("COALESCE({st} < {tt} AND NOT {t_snapshot}, FALSE)");
        let against_stale = format!("COALESCE({st} > {tt} AND NOT {s_snapshot}, FALSE)");
        let source_stale =
            format!("COALESCE({same_lineage} AND ({sp} = {tp} OR ({sp} < {tp} AND NOT {against_stale})), FALSE)");
        let source_newer = format!("COALESCE({same_lineage} AND {sp} > {tp} AND NOT {against_newer}, FALSE)");
        // A stage row that carries values of its batch is no bare tombstone: a create of its
        // batch came after the stored delete, and Kafka order tells it.
        let same_partition = format!(
            "{t}.\"_cdc_kafka_topic\" = {} AND {t}.\"_cdc_kafka_partition\" = {}",
            col("kafka_topic"),
            col("kafka_partition")
        );
        let so = col("kafka_offset");
        let after_next = format!("COALESCE({same_partition} AND {so} > {t}.\"_cdc_kafka_offset\" + 1, FALSE)");
        let redundant_delete = format!(
            "COALESCE({sp} = '' AND {s_deleted} AND {t_deleted} AND COALESCE({s_found}, '') <> 'B' \
             AND NOT {after_next}, FALSE)"
        );
        // Past the source rules with one lineage, position and commit time contradict each
        // other and the offset breaks the tie; otherwise the commit times must not contradict it.
        let contradiction = format!("COALESCE({same_lineage}, FALSE)");
        let kafka_stale = format!(
            "COALESCE({same_partition} AND {so} <= {t}.\"_cdc_kafka_offset\" AND ({contradiction} OR NOT {against_stale}), FALSE)"
        );
        let kafka_newer = format!(
            "COALESCE({same_partition} AND {so} > {t}.\"_cdc_kafka_offset\" AND ({contradiction} OR NOT {against_newer}), FALSE)"
        );
        // A stored row without Kafka coordinates predates them: commit times alone, strictly.
        let legacy_stale = format!("COALESCE({t}.\"_cdc_kafka_topic\" IS NULL AND {st} < {tt}, FALSE)");
        let legacy_newer = format!("COALESCE({t}.\"_cdc_kafka_topic\" IS NULL AND {st} > {tt}, FALSE)");
        OrderSql {
            stale: format!(
                "({source_stale} OR {redundant_delete} OR (NOT {source_newer} AND ({kafka_stale} OR {legacy_stale})))"
            ),
            newer: format!(
                "({source_newer} OR (NOT {source_stale} AND NOT {redundant_delete} AND ({kafka_newer} OR {legacy_newer})))"
            ),
        }
    }

    /// Neither provably older nor provably newer.
    pub fn unknown(&self) -> String {
        format!("(NOT {} AND NOT {})", self.stale, self.newer)
    }
}

/// How the incoming side of an [`OrderSql`] names its evidence: columns `<prefix>position`,
/// `<prefix>source_ts`, `<prefix>kafka_topic|partition|offset`, and expressions for whether
/// it is a delete, its `_cdc_found`, and whether it is a snapshot read.
struct Side {
    prefix: &'static str,
    deleted: String,
    found: String,
    snapshot: String,
}

/// One `BatchExecuteStatement`: its statements and the rows they carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// The SQL, in order: head, stage inserts, tail.
    pub statements: Vec<String>,
    /// Indices (into the rows given to [`build_transactions`]) of the rows it writes.
    pub rows: Vec<usize>,
    /// For each stage `INSERT` (statement `head + i`), the positions in `rows` it carries.
    pub inserts: Vec<Range<usize>>,
    /// Statements before the first stage insert (`LOCK`, `CREATE TEMP TABLE`).
    pub head: usize,
    /// Statements (0-based) whose row counts together are the stale rows.
    pub stale_statements: Vec<usize>,
    /// The statement (0-based) that selects the rejected rows: `(_cdc_row, rule)`, `_cdc_row`
    /// being an index into the rows given to [`build_transactions`].
    pub report_statement: usize,
}

impl Transaction {
    /// The rows carried by stage insert statement `statement` (0-based), if it is one.
    pub fn rows_of_statement(&self, statement: usize) -> Option<&[usize]> {
        let insert = statement.checked_sub(self.head)?;
        self.inserts.get(insert).map(|range| &self.rows[range.clone()])
    }

    /// Stale rows, from the row counts of the committed statements.
    pub fn stale_rows(&self, counts: &[i64]) -> usize {
        self.stale_statements.iter().map(|&i| counts.get(i).copied().unwrap_or(0).max(0) as usize).sum()
    }

    /// Rejected rows, from the row counts of the committed statements (0: no need to read the
    /// report).
    pub fn rejected_rows(&self, counts: &[i64]) -> usize {
        counts.get(self.report_statement).copied().unwrap_or(0).max(0) as usize
    }
}

/// Rendered transactions, plus rows too large for one statement.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The transactions, their rows in the order given.
    pub transactions: Vec<Transaction>,
    /// Indices of rows whose single `VALUES` tuple exceeds [`MAX_STATEMENT_BYTES`].
    pub oversized: Vec<usize>,
    /// Indices of rows that cannot be rendered because a statement of their table's apply SQL
    /// (the column lists, the carry UPDATEs) exceeds [`DATA_API_STATEMENT_BYTES`] or needs more
    /// than [`MAX_STATEMENTS`] statements: rule [`Rule::StatementTooLarge`].
    pub too_large: Vec<usize>,
}

/// The apply SQL of a whole table plan, for a target that has every column of the plan and a
/// delete ledger: what benchmarks and profilers render (the loader narrows the columns to the
/// target's first).
pub fn render_plan(plan: &TablePlan<'_, '_>, loaded_at_micros: i64) -> Rendered {
    let Some(first) = plan.rows.first() else { return Rendered::default() };
    let spec = ApplySpec {
        target: plan.target(),
        columns: &plan.columns,
        key: &first.change.key_columns,
        delete_mode: plan.table.delete_mode,
        lock: plan.table.lock,
        loaded_at_micros,
        ledger: true,
        super_columns: &[],
    };
    let changes: Vec<&Change<'_>> = plan.rows.iter().map(|row| row.change.as_ref()).collect();
    build_transactions(&spec, &changes)
}

/// What a transaction's rows need beyond the plain apply.
#[derive(Debug, Default)]
pub(crate) struct Needs {
    /// Columns some row keeps the stored value of.
    keep: Vec<bool>,
    /// Some row needs a stored value to exist ([`Keep::Required`]).
    required: bool,
    deletes: bool,
}

impl Needs {
    pub(crate) fn add(&mut self, spec: &ApplySpec<'_>, change: &Change<'_>) {
        if self.keep.is_empty() {
            self.keep = vec![false; spec.columns.len()];
        }
        self.deletes |= change.deleted;
        for i in 0..spec.columns.len() {
            match keep(change, value_at(spec, change, i)) {
                Keep::Write => {}
                Keep::Stored | Keep::Live => self.keep[i] = true,
                Keep::Required => {
                    self.keep[i] = true;
                    self.required = true;
                }
            }
        }
    }
}

/// The statements after the stage inserts (steps 3 to 10 of the module docs).
fn tail(
    spec: &ApplySpec<'_>,
    needs: &Needs,
    fill_sources: bool,
    stale_statements: &mut Vec<usize>,
    first: usize,
) -> Vec<String> {
    let table = qualified(spec.target);
    let stage = format!("\"{STAGE_TABLE}\"");
    let matched = key_match(spec, &table, &stage);
    let ledger = qualified(&delete_ledger(spec.target));
    let mut table_literal = String::new();
    push_text_literal(&mut table_literal, &spec.target.to_string());
    // The ledger speaks for the keys the target holds no row for.
    let ledger_match = format!(
        "{ledger}.\"_cdc_table\" = {table_literal} AND {ledger}.\"_cdc_key\" = {stage}.\"_cdc_key\" \
         AND COALESCE({stage}.\"_cdc_found\", 'B') = 'B'"
    );
    let (table_deleted, table_snapshot) =
        (format!("{table}.\"_cdc_deleted\""), format!("COALESCE({table}.\"_cdc_op\" = 'r', FALSE)"));
    let against_target = OrderSql::new(&table, &table_deleted, &table_snapshot, &stage);
    let against_ledger = OrderSql::new(&ledger, "TRUE", "FALSE", &stage);
    let soft = spec.delete_mode == DeleteMode::Soft;
    // Which deletes the ledger records: every hard delete; a soft delete of a key the target
    // holds no row for (a stored row keeps the delete's position itself).
    let needs_ledger = if soft { format!(" AND {stage}.\"_cdc_found\" IS NULL") } else { String::new() };
    let mut out = Vec::with_capacity(MAX_TAIL_STATEMENTS);
    out.push(format!(
        "UPDATE {stage} SET \"_cdc_held\" = TRUE, \"_cdc_found\" = CASE WHEN {stage}.\"_cdc_found\" = 'B' THEN 'B' \
         WHEN {table}.\"_cdc_deleted\" THEN 'D' ELSE 'L' END FROM {table} WHERE {matched}"
    ));
    stale_statements.push(first + out.len());
    out.push(format!("DELETE FROM {stage} USING {table} WHERE {matched} AND {}", against_target.stale));
    if spec.ledger {
        stale_statements.push(first + out.len());
        out.push(format!("DELETE FROM {stage} USING {ledger} WHERE {ledger_match} AND {}", against_ledger.stale));
    }
    out.push(format!(
        "UPDATE {stage} SET \"_cdc_reject\" = '{regressed}' FROM {table} WHERE {matched} AND {}",
        against_target.unknown(),
        regressed = Rule::PositionRegressed,
    ));
    if spec.ledger {
        out.push(format!(
            "UPDATE {stage} SET \"_cdc_reject\" = '{regressed}' FROM {ledger} WHERE {ledger_match} AND {stage}.\"_cdc_reject\" IS NULL AND {}",
            against_ledger.unknown(),
            regressed = Rule::PositionRegressed,
        ));
    }
    if fill_sources {
        // Values filled in from an earlier change of the batch stand only if that change is
        // newer than the stored row (or the ledger's delete), or is the stored change itself.
        let src = |name: &str| format!("{stage}.\"{FILL_SOURCE_PREFIX}{name}\"");
        let same_change = |t: &str| {
            format!(
                "(COALESCE({p} <> '' AND {p} = {t}.\"_cdc_position\", FALSE) OR COALESCE({topic} = {t}.\"_cdc_kafka_topic\" \
                 AND {partition} = {t}.\"_cdc_kafka_partition\" AND {offset} = {t}.\"_cdc_kafka_offset\", FALSE))",
                p = src("position"),
                topic = src("kafka_topic"),
                partition = src("kafka_partition"),
                offset = src("kafka_offset"),
            )
        };
        let has_source = format!("{} IS NOT NULL", src("kafka_topic"));
        let vs_target = OrderSql::fill_source(&table, &table_deleted, &table_snapshot, &stage);
        out.push(format!(
            "UPDATE {stage} SET \"_cdc_reject\" = '{stale_fill}' FROM {table} WHERE {matched} AND {stage}.\"_cdc_reject\" IS NULL \
             AND {has_source} AND NOT {} AND NOT {}",
            vs_target.newer,
            same_change(&table),
            stale_fill = Rule::StaleFill,
        ));
        if spec.ledger {
            let vs_ledger = OrderSql::fill_source(&ledger, "TRUE", "FALSE", &stage);
            out.push(format!(
                "UPDATE {stage} SET \"_cdc_reject\" = '{stale_fill}' FROM {ledger} WHERE {ledger_match} \
                 AND {stage}.\"_cdc_reject\" IS NULL AND {has_source} AND NOT {} AND NOT {}",
                vs_ledger.newer,
                same_change(&ledger),
                stale_fill = Rule::StaleFill,
            ));
        }
    }
    if needs.required {
        out.push(format!(
            "UPDATE {stage} SET \"_cdc_reject\" = '{unavailable}' WHERE \"_cdc_reject\" IS NULL \
             AND \"_cdc_keep\" LIKE '%U%' AND COALESCE(\"_cdc_found\", '') <> 'L'",
            unavailable = Rule::UnavailableValue,
        ));
    }
    if needs.deletes && !spec.ledger {
        out.push(format!(
            "UPDATE {stage} SET \"_cdc_reject\" = '{ledger_missing}' WHERE \"_cdc_reject\" IS NULL AND \"_cdc_deleted\"{}",
            needs_ledger.replace(&format!("{stage}."), ""),
            ledger_missing = Rule::DeleteLedgerMissing,
        ));
    }
    out.extend(carry_updates(spec, &needs.keep, &table, &stage, &matched));
    // Rows the target holds are updated in place, so that target columns the source does not
    // send keep their values (and IDENTITY columns their numbers); new rows are inserted with
    // the columns the batch sends, so that the others take their DEFAULT.
    let data: Vec<&str> =
        spec.columns.iter().map(|c| c.as_ref()).filter(|c| !spec.key.iter().any(|k| k.as_ref() == *c)).collect();
    let mut set = String::new();
    for column in data.iter().copied().chain(METADATA_COLUMNS) {
        if !set.is_empty() {
            set.push_str(", ");
        }
        push_ident(&mut set, column);
        set.push_str(" = ");
        set.push_str(&stage);
        set.push('.');
        push_ident(&mut set, column);
    }
    if !soft && needs.deletes {
        out.push(format!(
            "DELETE FROM {table} USING {stage} WHERE {matched} AND {stage}.\"_cdc_reject\" IS NULL AND {stage}.\"_cdc_deleted\""
        ));
    }
    out.push(format!(
        "UPDATE {table} SET {set} FROM {stage} WHERE {matched} AND {stage}.\"_cdc_reject\" IS NULL{}",
        if soft { String::new() } else { format!(" AND NOT {stage}.\"_cdc_deleted\"") }
    ));
    let written: Vec<&str> = spec.columns.iter().map(|c| c.as_ref()).chain(METADATA_COLUMNS).collect();
    out.push(format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {stage} WHERE \"_cdc_reject\" IS NULL AND \"_cdc_held\" IS NULL AND {}",
        column_list(&written, None),
        column_list(&written, None),
        if soft { "(NOT \"_cdc_deleted\" OR \"_cdc_found\" = 'B')" } else { "NOT \"_cdc_deleted\"" }
    ));
    if needs.deletes && spec.ledger {
        out.push(format!(
            "DELETE FROM {ledger} USING {stage} WHERE {ledger}.\"_cdc_table\" = {table_literal} AND {ledger}.\"_cdc_key\" = {stage}.\"_cdc_key\" \
             AND {stage}.\"_cdc_reject\" IS NULL AND {stage}.\"_cdc_deleted\"{needs_ledger}"
        ));
        out.push(format!(
            "INSERT INTO {ledger} ({}) SELECT {table_literal}, \"_cdc_key\", \"_cdc_position\", \"_cdc_source_ts\", \"_cdc_kafka_topic\", \
             \"_cdc_kafka_partition\", \"_cdc_kafka_offset\", \"_cdc_loaded_at\" FROM {stage} WHERE \"_cdc_reject\" IS NULL AND \"_cdc_deleted\"{}",
            column_list(&DELETE_LEDGER_COLUMNS, None),
            needs_ledger.replace(&format!("{stage}."), "")
        ));
    }
    out.push(format!("SELECT \"_cdc_row\", \"_cdc_reject\" FROM {stage} WHERE \"_cdc_reject\" IS NOT NULL"));
    debug_assert!(out.len() <= MAX_TAIL_STATEMENTS + FILL_SOURCE_STATEMENTS + carry_statements(spec));
    out
}

/// One kept column's assignment in the carry UPDATE (step 7).
fn carry_assignment(out: &mut String, i: usize, column: &str, table: &str, stage: &str) {
    let mut ident = String::new();
    push_ident(&mut ident, column);
    let flag = format!("SUBSTRING({stage}.\"_cdc_keep\", {}, 1)", i + 1);
    let _ = write!(
        out,
        "{ident} = CASE WHEN {flag} = '0' OR ({flag} = 'L' AND {stage}.\"_cdc_found\" = 'L') THEN {stage}.{ident} \
         ELSE {table}.{ident} END"
    );
}

/// The carry UPDATEs for the columns `keep` marks, each within [`MAX_STATEMENT_BYTES`]: a wide
/// table's assignments take several statements.
fn carry_updates(spec: &ApplySpec<'_>, keep: &[bool], table: &str, stage: &str, matched: &str) -> Vec<String> {
    let head = format!("UPDATE {stage} SET ");
    let foot = format!(
        " FROM {table} WHERE {matched} AND {stage}.\"_cdc_keep\" IS NOT NULL AND {stage}.\"_cdc_reject\" IS NULL"
    );
    let mut out = Vec::new();
    let mut set = String::new();
    let mut assignment = String::new();
    for (i, column) in spec.columns.iter().enumerate().filter(|(i, _)| keep.get(*i).copied().unwrap_or(false)) {
        assignment.clear();
        carry_assignment(&mut assignment, i, column, table, stage);
        if !set.is_empty() && head.len() + set.len() + 2 + assignment.len() + foot.len() > MAX_STATEMENT_BYTES {
            out.push(format!("{head}{}{foot}", std::mem::take(&mut set)));
        }
        if !set.is_empty() {
            set.push_str(", ");
        }
        set.push_str(&assignment);
    }
    if !set.is_empty() {
        out.push(format!("{head}{set}{foot}"));
    }
    out
}

/// The most carry UPDATEs a transaction of `spec` can need: one per [`MAX_STATEMENT_BYTES`]
/// of assignments when every column is kept.
fn carry_statements(spec: &ApplySpec<'_>) -> usize {
    let table = qualified(spec.target);
    let stage = format!("\"{STAGE_TABLE}\"");
    let matched = key_match(spec, &table, &stage);
    carry_updates(spec, &vec![true; spec.columns.len()], &table, &stage, &matched).len()
}

/// The stage columns the rows fill (by `INSERT … VALUES` or `COPY`), in [`push_row`]'s order:
/// the data columns, the metadata columns, the stage's own columns the rows carry, and the
/// evidence of filled-in values when `fill_sources`.
pub(crate) fn staged_columns<'s>(spec: &'s ApplySpec<'_>, fill_sources: bool) -> Vec<&'s str> {
    let source_columns = if fill_sources { &FILL_SOURCE_COLUMNS[..] } else { &[] };
    spec.columns
        .iter()
        .map(|c| c.as_ref())
        .chain(METADATA_COLUMNS)
        .chain(STAGE_COLUMNS[..STAGED_BY_INSERTS].iter().map(|(name, _)| *name))
        .chain(source_columns.iter().map(|(name, _)| *name))
        .collect()
}

/// The statements before the rows are staged (step 1 of the module docs): `[LOCK]` and the
/// `CREATE TEMP TABLE` of the stage (with `extra`, a `VARCHAR(1600)` column the COPY path
/// stages its special flags in).
pub(crate) fn head(spec: &ApplySpec<'_>, fill_sources: bool, extra: Option<&str>) -> Vec<String> {
    let table = qualified(spec.target);
    let stage = format!("\"{STAGE_TABLE}\"");
    let source_columns = if fill_sources { &FILL_SOURCE_COLUMNS[..] } else { &[] };
    let mut head = Vec::with_capacity(2);
    if spec.lock {
        // The ledger too: every transaction reads it. The target first, always, so that two
        // loaders never wait for each other in opposite orders.
        head.push(if spec.ledger {
            format!("LOCK {table}, {}", qualified(&delete_ledger(spec.target)))
        } else {
            format!("LOCK {table}")
        });
    }
    let mut create = format!(
        "CREATE TEMP TABLE {stage} AS SELECT {}",
        column_list(&spec.columns.iter().map(|c| c.as_ref()).chain(METADATA_COLUMNS).collect::<Vec<_>>(), None)
    );
    for (name, ty) in STAGE_COLUMNS.iter().chain(source_columns) {
        let _ = write!(create, ", CAST(NULL AS {ty}) AS ");
        push_ident(&mut create, name);
    }
    if let Some(extra) = extra {
        create.push_str(", CAST(NULL AS VARCHAR(1600)) AS ");
        push_ident(&mut create, extra);
    }
    let _ = write!(create, " FROM {table} WHERE 1 = 0");
    head.push(create);
    head
}

/// The statements a transaction of `spec` may have besides its head and its staging
/// statements: the tail at its longest.
pub(crate) fn reserved_statements(spec: &ApplySpec<'_>, fill_sources: bool) -> usize {
    MAX_TAIL_STATEMENTS + if fill_sources { FILL_SOURCE_STATEMENTS } else { 0 } + carry_statements(spec)
}

/// Close a transaction whose rows are staged: append the tail (steps 3 to 10) for the rows
/// `needs` describes and set its stale and report statements.
pub(crate) fn finish(spec: &ApplySpec<'_>, transaction: &mut Transaction, needs: &Needs, fill_sources: bool) {
    let first = transaction.statements.len();
    let tail = tail(spec, needs, fill_sources, &mut transaction.stale_statements, first);
    transaction.statements.extend(tail);
    transaction.report_statement = transaction.statements.len() - 1;
}

/// Render the apply SQL for `rows` (one change per key) into as few transactions as fit.
pub fn build_transactions(spec: &ApplySpec<'_>, rows: &[&Change<'_>]) -> Rendered {
    let stage = format!("\"{STAGE_TABLE}\"");
    let fill_sources = rows.iter().any(|r| r.filled_from.is_some());
    let staged = staged_columns(spec, fill_sources);
    let insert_header = format!("INSERT INTO {stage} ({}) VALUES ", column_list(&staged, None));
    let head = head(spec, fill_sources, None);
    let reserved = reserved_statements(spec, fill_sources) + head.len();
    let max_inserts = MAX_STATEMENTS.checked_sub(reserved).filter(|n| *n > 0);
    let (Some(max_inserts), true) = (max_inserts, insert_header.len() < MAX_STATEMENT_BYTES) else {
        return Rendered { too_large: (0..rows.len()).collect(), ..Rendered::default() };
    };
    let empty = || Transaction {
        statements: head.clone(),
        rows: Vec::new(),
        inserts: Vec::new(),
        head: head.len(),
        stale_statements: Vec::new(),
        report_statement: 0,
    };

    let mut rendered = Rendered::default();
    let mut current = empty();
    let mut needs = Needs::default();
    let mut statement = String::new();
    let mut statement_first_row = 0;
    let finish_statement = |current: &mut Transaction, statement: &mut String, first: usize| {
        if current.rows.len() > first {
            current.inserts.push(first..current.rows.len());
            current.statements.push(std::mem::take(statement));
        }
    };
    let finish_transaction = |rendered: &mut Rendered, current: &mut Transaction, needs: &mut Needs| {
        if !current.rows.is_empty() {
            let mut done = std::mem::replace(current, empty());
            finish(spec, &mut done, needs, fill_sources);
            rendered.transactions.push(done);
        }
        *needs = Needs::default();
    };
    let mut tuple = String::new();
    for (index, row) in rows.iter().enumerate() {
        tuple.clear();
        push_row(&mut tuple, spec, row, index, fill_sources);
        if insert_header.len() + tuple.len() > MAX_STATEMENT_BYTES {
            rendered.oversized.push(index);
            continue;
        }
        if !statement.is_empty() && statement.len() + 1 + tuple.len() > MAX_STATEMENT_BYTES {
            finish_statement(&mut current, &mut statement, statement_first_row);
            if current.inserts.len() == max_inserts {
                finish_transaction(&mut rendered, &mut current, &mut needs);
            }
        }
        if statement.is_empty() {
            statement.reserve(MAX_STATEMENT_BYTES.min(insert_header.len() + tuple.len() * (rows.len() - index)));
            statement.push_str(&insert_header);
            statement_first_row = current.rows.len();
        } else {
            statement.push(',');
        }
        statement.push_str(&tuple);
        current.rows.push(index);
        needs.add(spec, row);
    }
    finish_statement(&mut current, &mut statement, statement_first_row);
    finish_transaction(&mut rendered, &mut current, &mut needs);
    if rendered.transactions.iter().flat_map(|t| &t.statements).any(|s| s.len() > DATA_API_STATEMENT_BYTES) {
        rendered.too_large.extend(rendered.transactions.drain(..).flat_map(|t| t.rows));
        rendered.too_large.sort_unstable();
    }
    rendered
}

/// `ALTER TABLE "schema"."table" ADD COLUMN "name" type`.
pub fn add_column(target: &TableName, column: &str, sql_type: &str) -> String {
    let mut out = format!("ALTER TABLE {} ADD COLUMN ", qualified(target));
    push_ident(&mut out, column);
    out.push(' ');
    out.push_str(sql_type);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TableConfig;
    use crate::debezium::Op;
    use crate::outcome::{Column, KafkaOrigin};
    use std::borrow::Cow;

    fn literal(value: Value<'_>) -> String {
        let mut out = String::new();
        push_literal(&mut out, &value);
        out
    }

    #[test]
    fn literals_follow_redshift_rules() {
        assert_eq!(literal(Value::Text(Cow::Borrowed("O'Brien"))), "'O''Brien'");
        assert_eq!(literal(Value::Text(Cow::Borrowed(r"C:\temp\new"))), r"'C:\\temp\\new'");
        assert_eq!(literal(Value::Text(Cow::Borrowed(r"\'; DROP TABLE t; --"))), r"'\\''; DROP TABLE t; --'");
        assert_eq!(literal(Value::Text(Cow::Borrowed("trailing\\"))), r"'trailing\\'");
        assert_eq!(literal(Value::Null), "NULL");
        assert_eq!(literal(Value::Bool(true)), "TRUE");
        assert_eq!(literal(Value::Int(-42)), "-42");
        assert_eq!(literal(Value::Float(0.1)), "1e-1");
        assert_eq!(literal(Value::Float(1e300)), "1e300", "not 301 digits");
        assert_eq!(literal(Value::Float(-2.5)), "-2.5e0");
        assert_eq!(literal(Value::Float(f64::NAN)), "'NaN'");
        assert_eq!(literal(Value::Decimal(crate::value::Decimal { unscaled: -4510, scale: 2 })), "-45.10");
        assert_eq!(literal(Value::Timestamp(1_531_488_225_780_000)), "'2018-07-13 13:23:45.780000+00'");
        assert_eq!(literal(Value::Date(17725)), "'2018-07-13'");
        assert_eq!(literal(Value::Bytes(Cow::Borrowed(&[0, 255]))), "to_varbyte('00ff', 'hex')");
        assert!(!literal(Value::Text(Cow::Borrowed("x"))).starts_with('E'));
    }

    #[test]
    fn floats_round_trip() {
        for x in [0.1, 1.0 / 3.0, 1e300, -2.5e-300, f64::MAX, f64::MIN_POSITIVE] {
            assert_eq!(literal(Value::Float(x)).parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn identifiers_are_lowercase_and_quoted() {
        let mut out = String::new();
        push_ident(&mut out, "First\"Name");
        assert_eq!(out, "\"first\"\"name\"");
        let table = TableName { schema: "Public".into(), table: "T".into() };
        assert_eq!(qualified(&table), "\"public\".\"t\"");
    }

    fn change(id: i64, name: &str, deleted: bool) -> Change<'static> {
        let table = Arc::new(TableConfig::default_for_topic("x.t").unwrap());
        Change {
            table,
            op: if deleted { Op::Delete } else { Op::Create },
            deleted,
            tombstone: false,
            position: crate::debezium::Position::from_stored(format!("{id:020}")),
            source_ts_ms: Some(1_000),
            kafka: KafkaOrigin { topic: "x.t".into(), partition: 0, offset: id },
            key: vec![Value::Int(id)],
            key_columns: Arc::from(vec![Arc::from("id")]),
            columns: if deleted {
                vec![Column { name: "id".into(), value: Value::Int(id) }]
            } else {
                vec![
                    Column { name: "id".into(), value: Value::Int(id) },
                    Column { name: "name".into(), value: Value::Text(Cow::Owned(name.to_string())) },
                ]
            },
            masked: Vec::new(),
            detected: Vec::new(),
            row_schema: None,
            filled_from: None,
        }
    }

    fn spec<'a>(
        target: &'a TableName,
        columns: &'a [Arc<str>],
        key: &'a [Arc<str>],
        mode: DeleteMode,
    ) -> ApplySpec<'a> {
        ApplySpec {
            target,
            columns,
            key,
            delete_mode: mode,
            lock: false,
            loaded_at_micros: 0,
            ledger: true,
            super_columns: &[],
        }
    }

    #[test]
    fn one_small_plan_is_one_transaction() {
        let target = TableName { schema: "public".into(), table: "patients".into() };
        let columns: Vec<Arc<str>> = vec!["id".into(), "name".into()];
        let key: Vec<Arc<str>> = vec!["id".into()];
        let mut unavailable = change(3, "c", false);
        unavailable.columns[1].value = Value::Unavailable;
        let rows = [change(1, "a", false), change(2, "b", true), unavailable];
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let rendered = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert!(rendered.oversized.is_empty());
        let [tx] = rendered.transactions.as_slice() else { panic!("one transaction") };
        assert_eq!(tx.rows, vec![0, 1, 2]);
        assert_eq!(tx.rows_of_statement(1), Some(&[0, 1, 2][..]));
        let s = &tx.statements;
        assert_eq!(
            s[0],
            concat!(
                r#"CREATE TEMP TABLE "_cdc_stage" AS SELECT "id", "name", "_cdc_position", "_cdc_op", "_cdc_deleted", "#,
                r#""_cdc_source_ts", "_cdc_loaded_at", "_cdc_kafka_topic", "_cdc_kafka_partition", "_cdc_kafka_offset", "#,
                r#"CAST(NULL AS INTEGER) AS "_cdc_row", CAST(NULL AS VARCHAR(1600)) AS "_cdc_keep", "#,
                r#"CAST(NULL AS VARCHAR(65535)) AS "_cdc_key", CAST(NULL AS CHAR(1)) AS "_cdc_found", "#,
                r#"CAST(NULL AS BOOLEAN) AS "_cdc_held", CAST(NULL AS VARCHAR(32)) AS "_cdc_reject" "#,
                r#"FROM "public"."patients" WHERE 1 = 0"#
            )
        );
        // A delete stages its key only and keeps every other column; an unavailable value
        // keeps its column; the rest are written.
        assert!(s[1].ends_with(concat!(
            r#"VALUES (1,'a','00000000000000000001','c',FALSE,'1970-01-01 00:00:01.000000+00','1970-01-01 00:00:00.000000+00','x.t',0,1,0,NULL,'1',NULL),"#,
            r#"(2,NULL,'00000000000000000002','d',TRUE,'1970-01-01 00:00:01.000000+00','1970-01-01 00:00:00.000000+00','x.t',0,2,1,'01','2',NULL),"#,
            r#"(3,NULL,'00000000000000000003','c',FALSE,'1970-01-01 00:00:01.000000+00','1970-01-01 00:00:00.000000+00','x.t',0,3,2,'0U','3',NULL)"#
        )), "{}", s[1]);
        assert_eq!(
            s[2],
            concat!(
                r#"UPDATE "_cdc_stage" SET "_cdc_held" = TRUE, "_cdc_found" = CASE WHEN "_cdc_stage"."_cdc_found" = 'B' THEN 'B' "#,
                r#"WHEN "public"."patients"."_cdc_deleted" THEN 'D' ELSE 'L' END FROM "public"."patients" "#,
                r#"WHERE "public"."patients"."id" = "_cdc_stage"."id""#
            )
        );
        assert_eq!(tx.stale_statements, vec![3, 4]);
        assert!(s[3].starts_with(r#"DELETE FROM "_cdc_stage" USING "public"."patients" WHERE "public"."patients"."id" = "_cdc_stage"."id" AND (COALESCE("#));
        assert!(s[4].starts_with(r#"DELETE FROM "_cdc_stage" USING "public"."_cdc_deletes" WHERE "public"."_cdc_deletes"."_cdc_table" = 'public.patients'"#));
        assert!(s[5].contains("'position_regressed'") && s[6].contains("'position_regressed'"));
        assert!(s[7].contains("'unavailable_value'"), "an upsert keeps a column: {}", s[7]);
        assert_eq!(
            s[8],
            concat!(
                r#"UPDATE "_cdc_stage" SET "name" = CASE WHEN SUBSTRING("_cdc_stage"."_cdc_keep", 2, 1) = '0' OR "#,
                r#"(SUBSTRING("_cdc_stage"."_cdc_keep", 2, 1) = 'L' AND "_cdc_stage"."_cdc_found" = 'L') "#,
                r#"THEN "_cdc_stage"."name" ELSE "public"."patients"."name" END FROM "public"."patients" "#,
                r#"WHERE "public"."patients"."id" = "_cdc_stage"."id" AND "_cdc_stage"."_cdc_keep" IS NOT NULL "#,
                r#"AND "_cdc_stage"."_cdc_reject" IS NULL"#
            )
        );
        // Held rows are updated in place (key columns are not written), new ones inserted.
        assert_eq!(
            s[9],
            concat!(
                r#"UPDATE "public"."patients" SET "name" = "_cdc_stage"."name", "_cdc_position" = "_cdc_stage"."_cdc_position", "#,
                r#""_cdc_op" = "_cdc_stage"."_cdc_op", "_cdc_deleted" = "_cdc_stage"."_cdc_deleted", "#,
                r#""_cdc_source_ts" = "_cdc_stage"."_cdc_source_ts", "_cdc_loaded_at" = "_cdc_stage"."_cdc_loaded_at", "#,
                r#""_cdc_kafka_topic" = "_cdc_stage"."_cdc_kafka_topic", "_cdc_kafka_partition" = "_cdc_stage"."_cdc_kafka_partition", "#,
                r#""_cdc_kafka_offset" = "_cdc_stage"."_cdc_kafka_offset" FROM "_cdc_stage" "#,
                r#"WHERE "public"."patients"."id" = "_cdc_stage"."id" AND "_cdc_stage"."_cdc_reject" IS NULL"#
            )
        );
        assert!(s[10].ends_with(
            r#"FROM "_cdc_stage" WHERE "_cdc_reject" IS NULL AND "_cdc_held" IS NULL AND (NOT "_cdc_deleted" OR "_cdc_found" = 'B')"#
        ), "{}", s[10]);
        assert!(
            s[11].starts_with(r#"DELETE FROM "public"."_cdc_deletes" USING "_cdc_stage""#)
                && s[11].ends_with(r#"AND "_cdc_stage"."_cdc_found" IS NULL"#),
            "{}",
            s[11]
        );
        assert!(s[12].starts_with(r#"INSERT INTO "public"."_cdc_deletes" ("_cdc_table", "_cdc_key", "#));
        assert_eq!(s[13], r#"SELECT "_cdc_row", "_cdc_reject" FROM "_cdc_stage" WHERE "_cdc_reject" IS NOT NULL"#);
        assert_eq!((tx.report_statement, s.len()), (13, 14));
        assert_eq!(tx.stale_rows(&[0, 1, 0, 1, 1, 0]), 2);

        // Hard deletes remove the row, insert nothing, and every delete is recorded.
        let hard = build_transactions(&spec(&target, &columns, &key, DeleteMode::Hard), &refs);
        let s = &hard.transactions[0].statements;
        assert!(s[9].starts_with(r#"DELETE FROM "public"."patients" USING "_cdc_stage" WHERE"#), "{}", s[9]);
        assert!(s[9].ends_with(r#"AND "_cdc_stage"."_cdc_reject" IS NULL AND "_cdc_stage"."_cdc_deleted""#));
        assert!(s[10].ends_with(r#"AND NOT "_cdc_stage"."_cdc_deleted""#), "{}", s[10]);
        assert!(s[11].ends_with(r#" WHERE "_cdc_reject" IS NULL AND "_cdc_held" IS NULL AND NOT "_cdc_deleted""#));
        assert!(s[13].ends_with(r#"WHERE "_cdc_reject" IS NULL AND "_cdc_deleted""#));
        // Upserts only: no carry, no ledger writes.
        let upserts = [change(1, "a", false)];
        let refs: Vec<&Change<'_>> = upserts.iter().collect();
        let plain = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert_eq!(plain.transactions[0].statements.len(), 10);
        // Without a ledger: deletes that need it are refused, nothing reads it.
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let no_ledger =
            build_transactions(&ApplySpec { ledger: false, ..spec(&target, &columns, &key, DeleteMode::Soft) }, &refs);
        let s = &no_ledger.transactions[0].statements;
        assert!(s.iter().all(|s| !s.contains("_cdc_deletes")));
        assert!(s.iter().any(|s| s.contains(r#"SET "_cdc_reject" = 'delete_ledger_missing' WHERE "_cdc_reject" IS NULL AND "_cdc_deleted" AND "_cdc_found" IS NULL"#)));
        let locked =
            build_transactions(&ApplySpec { lock: true, ..spec(&target, &columns, &key, DeleteMode::Soft) }, &refs);
        let tx = &locked.transactions[0];
        assert_eq!(tx.statements[0], r#"LOCK "public"."patients", "public"."_cdc_deletes""#, "the ledger is shared");
        assert_eq!((tx.head, tx.rows_of_statement(2)), (2, Some(&[0, 1, 2][..])));
    }

    #[test]
    fn key_text_escapes_its_separator() {
        let mut c = change(1, "a", false);
        c.key = vec![Value::Text(Cow::Borrowed(r"a|b\c")), Value::Int(7)];
        assert_eq!(key_text(&c), r"a\|b\\c|7");
    }

    #[test]
    fn large_plans_split_by_statement_size_and_count() {
        let target = TableName { schema: "public".into(), table: "t".into() };
        let columns: Vec<Arc<str>> = vec!["id".into(), "name".into()];
        let key: Vec<Arc<str>> = vec!["id".into()];
        let name = "x".repeat(1000);
        let rows: Vec<Change<'_>> = (0..5_000).map(|i| change(i, &name, false)).collect();
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let rendered = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert!(rendered.transactions.len() >= 2, "5 MB of rows need several transactions");
        let mut seen: Vec<usize> = Vec::new();
        for tx in &rendered.transactions {
            assert!(tx.statements.len() <= MAX_STATEMENTS);
            assert!(tx.statements.iter().all(|s| s.len() <= MAX_STATEMENT_BYTES));
            assert_eq!(tx.inserts.len() + 9, tx.statements.len(), "CTAS, inserts and the upsert tail");
            seen.extend(&tx.rows);
        }
        assert_eq!(seen, (0..5_000).collect::<Vec<_>>(), "every row exactly once, in order");
    }

    #[test]
    fn a_row_too_large_for_one_statement_is_set_aside() {
        let target = TableName { schema: "public".into(), table: "t".into() };
        let columns: Vec<Arc<str>> = vec!["id".into(), "name".into()];
        let key: Vec<Arc<str>> = vec!["id".into()];
        let rows = [change(1, "ok", false), change(2, &"y".repeat(MAX_STATEMENT_BYTES), false)];
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let rendered = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert_eq!(rendered.oversized, vec![1]);
        assert_eq!(rendered.transactions[0].rows, vec![0]);
    }

    #[test]
    fn wide_tables_split_the_carry_and_reject_what_cannot_be_said() {
        let target = TableName { schema: "public".into(), table: "t".into() };
        let key: Vec<Arc<str>> = vec!["id".into()];
        // 480 columns of 24-character names: one carry UPDATE would be ~150 KB.
        let columns: Vec<Arc<str>> = std::iter::once(Arc::from("id"))
            .chain((1..480).map(|i| Arc::from(format!("column_number_{i:010}").as_str())))
            .collect();
        let mut delete = change(1, "a", true);
        delete.columns.truncate(1);
        let refs = [&delete];
        let rendered = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert!(rendered.too_large.is_empty() && rendered.oversized.is_empty());
        let [tx] = rendered.transactions.as_slice() else { panic!("one transaction") };
        let carries: Vec<&String> = tx.statements.iter().filter(|s| s.contains("\"_cdc_keep\", ")).collect();
        assert!(carries.len() >= 2, "the carry is split: {}", carries.len());
        assert!(tx.statements.iter().all(|s| s.len() <= MAX_STATEMENT_BYTES));
        for i in 1..480 {
            let name = format!("\"column_number_{i:010}\" = CASE");
            assert_eq!(carries.iter().filter(|s| s.contains(&name)).count(), 1, "column {i} carried once");
        }
        // 1,600 columns of 100-character names: the column list alone is over 100 KB.
        let columns: Vec<Arc<str>> = std::iter::once(Arc::from("id"))
            .chain((1..1600).map(|i| Arc::from(format!("{i:0>100}").as_str())))
            .collect();
        let rows = [change(1, "a", false), change(2, "b", false)];
        let refs: Vec<&Change<'_>> = rows.iter().collect();
        let rendered = build_transactions(&spec(&target, &columns, &key, DeleteMode::Soft), &refs);
        assert!(rendered.transactions.is_empty());
        assert_eq!(rendered.too_large, vec![0, 1]);
    }

    #[test]
    fn alter_table() {
        let target = TableName { schema: "public".into(), table: "t".into() };
        assert_eq!(
            add_column(&target, "Email", "VARCHAR(256)"),
            r#"ALTER TABLE "public"."t" ADD COLUMN "email" VARCHAR(256)"#
        );
    }
}
