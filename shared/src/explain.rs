//! `cdc explain`: one JSON object per Kafka record saying what the pipeline would do.
//!
//! A rejected record shows no key and no row: its values were never masked, so they must
//! not be printed.
//!
//! Owns the line's shape only: it reads an [`Outcome`] the transform made and decides nothing.
//! A change's key and row are its masked values.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::event::KafkaRecord;
use crate::outcome::{Column, Outcome, Reason};

/// One record's line, serialized as one JSON object (README "`cdc explain`").
#[derive(Debug, Serialize)]
pub struct ExplainLine<'a> {
    /// The record's topic, as in the event.
    pub topic: &'a str,
    /// The record's partition (0-based).
    pub partition: i64,
    /// The record's offset in its partition: with topic and partition, what names the record
    /// in dead letters and logs.
    pub offset: i64,
    /// `upsert`, `delete`, `skip` or `reject`.
    pub action: &'static str,
    /// The target table, `schema.table`, when the record was routed.
    pub table: Option<String>,
    /// The envelope's op code (`r`, `c`, `u`, `d`), when it was read.
    pub op: Option<&'static str>,
    /// The source position as stored in `_cdc_position` (empty when unknown), when read.
    pub position: Option<&'a str>,
    /// A change's key columns and their masked values, in key order; `None` for skips and
    /// rejects.
    pub key: Option<JsonObject>,
    /// The values written. A delete writes only its key: soft mode keeps the stored values.
    pub row: Option<JsonObject>,
    /// Columns the source did not send (Debezium's unavailable-value placeholder): the target
    /// keeps the value it holds.
    pub unchanged: Vec<&'a str>,
    /// Columns whose value was masked (configured masks and `[tables.detect]`'s).
    pub masked: Vec<&'a str>,
    /// `[tables.detect]` findings that were masked: column → kind.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub detected: BTreeMap<&'a str, &'static str>,
    /// A reject's (column or record, rule) pairs; empty otherwise.
    pub reasons: &'a [Reason],
    /// A skip's reason (`tombstone`, `heartbeat`…); `None` otherwise.
    pub skip_reason: Option<&'static str>,
    /// Only for rejects: the pipeline stage that rejected the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    /// Only for rejects whose rule means the connector is configured otherwise than the
    /// pipeline reads (`converter_string`, `unwrapped_record`, `converter_binary`, `key_json`):
    /// the setting to change ([`Rule::remedy`](crate::rule::Rule::remedy)), once per rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<&'static str>,
}

/// A JSON object that keeps its keys in insertion order.
#[derive(Debug)]
pub struct JsonObject(pub Vec<(String, serde_json::Value)>);

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

fn object<'c>(columns: impl Iterator<Item = &'c Column<'c>>) -> JsonObject {
    JsonObject(columns.filter(|c| !c.value.is_unavailable()).map(|c| (c.name.to_string(), c.value.to_json())).collect())
}

/// The line for `record` and what the pipeline made of it.
pub fn explain<'a>(record: &'a KafkaRecord<'a>, outcome: &'a Outcome<'a>) -> ExplainLine<'a> {
    let mut line = ExplainLine {
        topic: &record.topic,
        partition: record.partition,
        offset: record.offset,
        action: "skip",
        table: None,
        op: None,
        position: None,
        key: None,
        row: None,
        unchanged: Vec::new(),
        masked: Vec::new(),
        detected: BTreeMap::new(),
        reasons: &[],
        skip_reason: None,
        stage: None,
        hints: Vec::new(),
    };
    match outcome {
        Outcome::Change(change) => {
            line.action = if change.deleted { "delete" } else { "upsert" };
            line.table = Some(change.table.target.to_string());
            line.op = Some(change.op.code());
            line.position = Some(change.position.as_str());
            line.key =
                Some(object(change.key_columns.iter().filter_map(|k| change.columns.iter().find(|c| &c.name == k))));
            line.row = Some(object(change.columns.iter()));
            line.unchanged =
                change.columns.iter().filter(|c| c.value.is_unavailable()).map(|c| c.name.as_ref()).collect();
            line.masked = change.masked.iter().map(|m| m.as_ref()).collect();
            line.detected = change.detected.iter().map(|(c, k)| (c.as_ref(), k.name())).collect();
        }
        Outcome::Skip(reason) => line.skip_reason = Some(reason.as_str()),
        Outcome::Reject(reject) => {
            line.action = "reject";
            line.table = reject.table.as_ref().map(|t| t.target.to_string());
            line.op = reject.op.map(|op| op.code());
            line.position = reject.position.as_ref().map(|p| p.as_str());
            line.reasons = &reject.reasons;
            line.stage = Some(reject.stage.as_str());
            for hint in reject.reasons.iter().filter_map(|r| r.rule.remedy()) {
                if !line.hints.contains(&hint) {
                    line.hints.push(hint);
                }
            }
        }
    }
    line
}
