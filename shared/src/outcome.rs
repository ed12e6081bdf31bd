//! What became of each Kafka record: a change to apply, a skip with a reason, or a reject
//! with every failed (column, rule) pair. None of these types can hold a rejected value.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::config::TableConfig;
use crate::debezium::{Op, RowSchema};
use crate::value::Value;

/// A target column and its value (masked where configured).
#[derive(Debug, Clone)]
pub struct Column<'a> {
    /// Lowercase column name.
    pub name: Arc<str>,
    pub value: Value<'a>,
}

/// A change ready to plan: the row as it will be written.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub table: Arc<TableConfig>,
    pub op: Op,
    /// `true` for a delete: soft mode keeps the row flagged, hard mode removes it.
    pub deleted: bool,
    pub position: String,
    /// Source commit time (`source.ts_ms`), when known.
    pub source_ts_ms: Option<i64>,
    /// Values of the table's key columns, in key order.
    pub key: Vec<Value<'a>>,
    pub key_columns: Arc<[Arc<str>]>,
    /// The row image: `after` for r/c/u, `before` (or just the key) for d.
    pub columns: Vec<Column<'a>>,
    /// Columns whose value was masked.
    pub masked: Vec<Arc<str>>,
    /// The row's Debezium schema, when the message had one (types for new columns).
    pub row_schema: Option<Arc<RowSchema>>,
}

/// Where in the pipeline a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Decode,
    Route,
    Validate,
    Drift,
    Load,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Route => "route",
            Stage::Validate => "validate",
            Stage::Drift => "drift",
            Stage::Load => "load",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed check: a column (or the record as a whole) and a rule name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Reason {
    pub column: Option<Arc<str>>,
    pub rule: Cow<'static, str>,
}

impl Reason {
    pub fn record(rule: &'static str) -> Reason {
        Reason { column: None, rule: Cow::Borrowed(rule) }
    }

    pub fn column(column: Arc<str>, rule: &'static str) -> Reason {
        Reason { column: Some(column), rule: Cow::Borrowed(rule) }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "{column}: {}", self.rule),
            None => f.write_str(&self.rule),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Reject {
    pub stage: Stage,
    pub table: Option<Arc<TableConfig>>,
    pub op: Option<Op>,
    pub position: Option<String>,
    pub reasons: Vec<Reason>,
}

/// Records that are consumed without loading anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Null value after a delete: the `d` event already carries the delete.
    Tombstone,
    Heartbeat,
    SchemaChange,
    Transaction,
    Truncate,
    Message,
    /// With `unroutable = "skip"`.
    Unroutable,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Tombstone => "tombstone",
            SkipReason::Heartbeat => "heartbeat",
            SkipReason::SchemaChange => "schema_change",
            SkipReason::Transaction => "transaction",
            SkipReason::Truncate => "truncate",
            SkipReason::Message => "message",
            SkipReason::Unroutable => "unroutable",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    Change(Change<'a>),
    Skip(SkipReason),
    Reject(Reject),
}
