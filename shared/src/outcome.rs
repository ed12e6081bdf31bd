//! What became of each Kafka record: a change to apply, a skip with a reason, or a reject
//! with every failed (column, rule) pair. None of these types can hold a rejected value.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{SensitiveKind, TableConfig};
use crate::debezium::{Evidence, Op, Position, RowSchema};
// Below the decoders, which produce them; kept at this path for their users.
pub use crate::row::{Column, Reason};
use crate::value::Value;

/// The Kafka record a change came from (a replay keeps the original coordinates): stored
/// with the row, it orders changes that source positions cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOrigin {
    pub topic: Arc<str>,
    pub partition: i64,
    pub offset: i64,
}

/// A change ready to plan: the row as it will be written.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub table: Arc<TableConfig>,
    pub op: Op,
    /// `true` for a delete: soft mode keeps the row flagged, hard mode removes it.
    pub deleted: bool,
    /// A delete made from a tombstone (a null Kafka value), whose delete event the consumer
    /// did not see: it has no source position.
    pub tombstone: bool,
    pub position: Position,
    /// Source commit time (`source.ts_ms`), when known.
    pub source_ts_ms: Option<i64>,
    pub kafka: KafkaOrigin,
    /// Values of the table's key columns, in key order.
    pub key: Vec<Value<'a>>,
    pub key_columns: Arc<[Arc<str>]>,
    /// The row image: `after` for r/c/u; for a delete only its key columns (a delete keeps the
    /// stored values, or removes the row). A column the source did not send holds
    /// [`Value::Unavailable`].
    pub columns: Vec<Column<'a>>,
    /// Columns whose value was masked.
    pub masked: Vec<Arc<str>>,
    /// Columns `[tables.detect]` found a sensitive-looking value in (and masked, under
    /// `policy = "mask"`), with what it looked like.
    pub detected: Vec<(Arc<str>, SensitiveKind)>,
    /// The row's Debezium schema, when the message had one (types for new columns).
    pub row_schema: Option<Arc<RowSchema>>,
    /// Set by the plan when values of earlier changes of the batch were filled in (an
    /// unavailable column, a soft delete's values): the oldest of those changes. The values
    /// stand only if it is newer than the row the target holds.
    pub filled_from: Option<FillSource>,
}

/// Where a change's filled-in values came from: the evidence of an earlier change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillSource {
    pub position: Position,
    pub source_ts_ms: Option<i64>,
    pub kafka: KafkaOrigin,
}

impl Change<'_> {
    /// What orders this change against others of its key ([`crate::debezium::compare`]).
    pub fn evidence(&self) -> Evidence<'_> {
        Evidence {
            position: &self.position,
            source_ts_ms: self.source_ts_ms,
            kafka: Some((&self.kafka.topic, self.kafka.partition, self.kafka.offset)),
            deleted: self.deleted,
            snapshot: self.op == Op::Read,
        }
    }
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

#[derive(Debug, Clone)]
pub struct Reject {
    pub stage: Stage,
    pub table: Option<Arc<TableConfig>>,
    pub op: Option<Op>,
    pub position: Option<Position>,
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

/// Most records of a batch are changes; boxing them to shrink the rare skips and rejects
/// would add an allocation per record on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    Change(Change<'a>),
    Skip(SkipReason),
    Reject(Reject),
}
