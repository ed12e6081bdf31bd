//! What became of each Kafka record: a change to apply, a skip with a reason, or a reject
//! with every failed (column, rule) pair. None of these types can hold a rejected value.
//!
//! Owns the types only ([`Outcome`], [`Change`], [`Reject`], [`Stage`], [`SkipReason`]; the
//! per-column [`Column`] and [`Reason`] are `row`'s, re-exported); the transform makes them,
//! the plan and loader read them. It must not grow a field that could carry a rejected value:
//! a [`Reject`] holds coordinates and rule names, and everything it was rejected for stays in
//! the raw record the dead letter carries.

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
    /// The topic, as in the event (shared by the records of one topic).
    pub topic: Arc<str>,
    /// The partition number (0-based).
    pub partition: i64,
    /// The offset within the partition; stored as `_cdc_kafka_offset`.
    pub offset: i64,
}

/// A change ready to plan: the row as it will be written.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The configured table the record was routed to (target, key, delete mode…).
    pub table: Arc<TableConfig>,
    /// The envelope's op (`r`, `c`, `u` or `d`; a tombstone is `d`).
    pub op: Op,
    /// `true` for a delete: soft mode keeps the row flagged, hard mode removes it.
    pub deleted: bool,
    /// A delete made from a tombstone (a null Kafka value), whose delete event the consumer
    /// did not see: it has no source position.
    pub tombstone: bool,
    /// The source position ([`Position::none`] for a tombstone or a connector without a
    /// rule); stored as `_cdc_position`.
    pub position: Position,
    /// Source commit time (`source.ts_ms`, ms since the Unix epoch), when known.
    pub source_ts_ms: Option<i64>,
    /// The record that carried the change.
    pub kafka: KafkaOrigin,
    /// Values of the table's key columns, in key order.
    pub key: Vec<Value<'a>>,
    /// The key's column names (lowercase), in key order: the config's `key`, else the Kafka
    /// key's fields.
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
    /// That change's source position.
    pub position: Position,
    /// That change's commit time, ms since the Unix epoch.
    pub source_ts_ms: Option<i64>,
    /// That change's Kafka record.
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

/// Where in the pipeline a record was rejected: the dead-letter object's key prefix
/// (`<prefix>/<stage>/…`), its `stage` field and the `Rejected<Stage>` metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The record could not be read: base64, JSON, envelope, schema, `source` position, a
    /// column value, a column name, the key.
    Decode,
    /// No table routes its topic (under `unroutable = "reject"`).
    Route,
    /// It was read, and breaks a rule: column rules, a key it lacks (`missing_key`,
    /// `tombstone_key`), `[tables.detect]` under `policy = "reject"`, a mask that cannot apply,
    /// an unknown masked column, a truncate or logical message under a `reject` policy.
    Validate,
    /// The target table does not fit it: the table, a metadata column or the delete ledger is
    /// missing, or it carries a column the target lacks (under `drift = "dlq"`).
    Drift,
    /// The target refused it: values the checks before any SQL or the database itself refuse,
    /// a row too large for a statement, an order against the stored row (or an earlier change
    /// of its key in the batch) that cannot be known (`position_regressed`).
    Load,
}

impl Stage {
    /// The stage's name, lowercase: `decode`, `route`, `validate`, `drift`, `load`.
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

/// A record the pipeline will not load: where it failed and why, never what it held. It goes
/// to a dead letter with the raw record.
#[derive(Debug, Clone)]
pub struct Reject {
    /// Where it was rejected: the dead letter's `stage` and `Rejected<Stage>` metric.
    pub stage: Stage,
    /// The table it was routed to, when routing got that far.
    pub table: Option<Arc<TableConfig>>,
    /// The envelope's op, when the envelope was read.
    pub op: Option<Op>,
    /// The source position, when it was read (for `cdc explain` and logs).
    pub position: Option<Position>,
    /// Every (column or record, rule) pair it failed.
    pub reasons: Vec<Reason>,
}

/// Records that are consumed without loading anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Null value after a delete: the `d` event already carries the delete.
    Tombstone,
    /// A heartbeat: a `__debezium-heartbeat…` topic, or a `{"ts_ms": …}` message.
    Heartbeat,
    /// A schema-change event (`ddl`, `tableChanges`) on a data topic.
    SchemaChange,
    /// A transaction BEGIN/END marker (the `….transaction` topic, or by its content).
    Transaction,
    /// A truncate (`op` `t`) under `on_truncate = "skip"`.
    Truncate,
    /// A logical decoding message (`op` `m`) under `on_message = "skip"`.
    Message,
    /// With `unroutable = "skip"`.
    Unroutable,
}

impl SkipReason {
    /// The reason's name, lowercase snake case (`tombstone`, `schema_change`…), as the
    /// response's `skipped` counts and `cdc explain` print it; also the rule of a truncate or
    /// message under a `reject` policy.
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

/// What became of one record; `Pipeline::transform` returns one per record, aligned with
/// the batch.
///
/// Most records of a batch are changes; boxing them to shrink the rare skips and rejects
/// would add an allocation per record on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    /// A change to plan and load.
    Change(Change<'a>),
    /// Consumed without loading anything, for a stated reason.
    Skip(SkipReason),
    /// Not loadable: dead-lettered.
    Reject(Reject),
}
