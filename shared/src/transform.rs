//! Per record: decode → route → validate → mask. The result is one [`Outcome`] per record,
//! aligned with the batch, so that every record is accounted for.

use std::collections::HashMap;
use std::sync::Arc;

use crate::batch::{DecodedBatch, Payload};
use crate::config::{Config, OpPolicy, TableConfig, TombstonePolicy, UnroutablePolicy};
use crate::debezium::{self, ColumnNames, ColumnType, Key, Message, Op, Position, SchemaCache};
use crate::detect::{Detect, DetectPolicy, SensitiveKind};
use crate::event::KafkaRecord;
use crate::mask::{Mask, Masker};
use crate::outcome::{Change, Column, KafkaOrigin, Outcome, Reason, Reject, SkipReason, Stage};
use crate::rule::Rule;
use crate::validate;
use crate::value::Value;

/// Configuration and masking key: built once per cold start, shared by every invocation.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub config: Arc<Config>,
    pub masker: Masker,
    /// The masking key's version (Secrets Manager `VersionId`), recorded with dead letters.
    pub key_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "the config uses an hmac mask but no masking key is set (set MASKING_KEY, or MASKING_KEY_SECRET_ARN in AWS)"
    )]
    MissingMaskingKey,
    #[error(
        "the masking key is {bytes} bytes; it must be at least {} (generate one with `openssl rand -base64 48`)",
        crate::mask::MIN_KEY_BYTES
    )]
    ShortMaskingKey { bytes: usize },
}

impl Pipeline {
    /// Refuses a config that needs a masking key when none is given.
    pub fn new(config: Arc<Config>, masking_key: Option<&[u8]>) -> Result<Pipeline, PipelineError> {
        if let Some(key) = masking_key.filter(|k| k.len() < crate::mask::MIN_KEY_BYTES) {
            return Err(PipelineError::ShortMaskingKey { bytes: key.len() });
        }
        if config.uses_hmac() && masking_key.is_none() {
            return Err(PipelineError::MissingMaskingKey);
        }
        // Every salt in use: of `[tables.columns]` masks and of `[tables.detect]`'s mask.
        let salts: Vec<&Arc<str>> = config.tables.iter().flat_map(|t| t.masks()).filter_map(Mask::salt).collect();
        let masker = Masker::with_salts(masking_key, salts);
        Ok(Pipeline { config, masker, key_version: None })
    }

    /// Transform every record of a batch. `now_micros` is the reference for `not_future`.
    pub fn transform<'b>(&self, batch: &'b DecodedBatch<'_>, caches: &mut Caches, now_micros: i64) -> Vec<Outcome<'b>> {
        let mut outcomes: Vec<Outcome<'b>> = (0..batch.len())
            .map(|i| self.transform_record(batch.records()[i], batch.key(i), batch.value(i), caches, now_micros))
            .collect();
        follow_deletes(batch.records(), &mut outcomes);
        outcomes
    }

    fn route(&self, topic: &str, caches: &mut Caches) -> Option<Arc<TableConfig>> {
        if let Some(route) = caches.routes.get(topic) {
            return route.clone();
        }
        let route = if self.config.is_default_routing() {
            TableConfig::default_for_topic(topic).ok().map(Arc::new)
        } else {
            self.config.table_for_topic(topic).cloned()
        };
        caches.routes.insert(topic.to_string(), route.clone());
        route
    }

    fn transform_record<'b>(
        &self,
        record: &KafkaRecord<'_>,
        key: Payload<'b>,
        value: Payload<'b>,
        caches: &mut Caches,
        now_micros: i64,
    ) -> Outcome<'b> {
        let topic = record.topic.as_ref();
        if topic.starts_with("__debezium-heartbeat") {
            return Outcome::Skip(SkipReason::Heartbeat);
        }
        // Debezium's transaction metadata topic is `<prefix>.transaction`; a source table named
        // `transaction` that a configured table routes is data (its BEGIN/END messages are
        // still recognised by their content below).
        if topic.ends_with(".transaction") && !self.config.tables.iter().any(|t| t.topic.matches(topic)) {
            return Outcome::Skip(SkipReason::Transaction);
        }
        let bytes = match value {
            Payload::Absent => return self.tombstone(record, key, caches),
            Payload::Invalid => return reject(Stage::Decode, None, None, None, vec![Reason::record(Rule::Base64)]),
            Payload::Bytes(bytes) => bytes,
        };
        let envelope = match debezium::decode_message(bytes, &mut caches.schemas) {
            Ok(Message::Change(envelope)) => envelope,
            Ok(Message::SchemaChange) => return Outcome::Skip(SkipReason::SchemaChange),
            Ok(Message::Transaction) => return Outcome::Skip(SkipReason::Transaction),
            Ok(Message::Heartbeat) => return Outcome::Skip(SkipReason::Heartbeat),
            Err(e) => return reject(Stage::Decode, None, None, None, vec![Reason::record(e.rule())]),
        };
        let op = envelope.op;
        let pipeline = &self.config.pipeline;
        let special = match op {
            Op::Truncate => Some((pipeline.on_truncate, SkipReason::Truncate, Rule::Truncate)),
            Op::Message => Some((pipeline.on_message, SkipReason::Message, Rule::Message)),
            _ => None,
        };
        if let Some((policy, reason, rule)) = special {
            return match policy {
                OpPolicy::Skip => Outcome::Skip(reason),
                OpPolicy::Reject => reject(Stage::Validate, None, Some(op), None, vec![Reason::record(rule)]),
            };
        }
        let Some(table) = self.route(topic, caches) else {
            return match pipeline.unroutable {
                UnroutablePolicy::Skip => Outcome::Skip(SkipReason::Unroutable),
                UnroutablePolicy::Reject => {
                    reject(Stage::Route, None, Some(op), None, vec![Reason::record(Rule::Unroutable)])
                }
            };
        };
        let position = match debezium::position(envelope.source.as_ref()) {
            Ok(position) => position,
            Err(e) => return reject(Stage::Decode, Some(&table), Some(op), None, vec![Reason::record(e.rule())]),
        };
        let deleted = op == Op::Delete;
        let image = if deleted { envelope.before } else { envelope.after };
        let mut columns = Vec::new();
        let mut reasons = Vec::new();
        match image {
            Some(image) => {
                let row_schema = envelope.schema.as_ref().and_then(|s| s.row.as_deref());
                debezium::decode_row(
                    image,
                    row_schema,
                    &table,
                    pipeline.nul,
                    &mut caches.names,
                    &mut columns,
                    &mut reasons,
                );
            }
            // A delete without `before` still deletes by key; an upsert needs its row.
            None if deleted => {}
            None => reasons.push(Reason::record(Rule::RowImage)),
        }
        let key_columns = self.key_columns(&table, key, &mut columns, caches, &mut reasons);
        if deleted {
            // A delete writes no values: the target keeps the row's stored values (soft) or
            // removes it (hard). Only its key matters; PostgreSQL's default replica identity
            // sends nothing else, and the rest of a `before` image must not block the delete.
            let is_key = |name: &Arc<str>| key_columns.as_ref().is_some_and(|k| k.contains(name));
            columns.retain(|c| is_key(&c.name));
            reasons.retain(|r| r.column.as_ref().is_none_or(is_key) && r.rule != Rule::RowImage);
        } else {
            debezium::check_column_names(&columns, &mut reasons);
        }
        let key_columns = key_columns.unwrap_or_else(|| Arc::from(Vec::new()));
        if !reasons.is_empty() {
            let stage =
                if reasons.iter().all(|r| r.rule == Rule::MissingKey) { Stage::Validate } else { Stage::Decode };
            return reject(stage, Some(&table), Some(op), Some(position), reasons);
        }
        if !deleted {
            // A masked column the row does not have is a misspelling until shown otherwise:
            // the mask would guard nothing while the real column loads raw. (Debezium sends
            // every column of the row image, nulls included; a column with only rules or a
            // type hint guards nothing, and `required` catches its absence.)
            for (name, column) in &table.columns {
                if column.mask.is_some() && !columns.iter().any(|c| &c.name == name) {
                    reasons.push(Reason::column(name.clone(), Rule::UnknownColumn));
                }
            }
            if !reasons.is_empty() {
                reasons.sort_by(|a, b| a.column.cmp(&b.column));
                return reject(Stage::Validate, Some(&table), Some(op), Some(position), reasons);
            }
        }
        if !deleted {
            let mut failed = Vec::new();
            for (name, column_config) in &table.columns {
                if column_config.rules.is_empty() {
                    continue;
                }
                let value = columns.iter().find(|c| &c.name == name).map_or(&Value::Null, |c| &c.value);
                // The source did not send it: the stored value, checked when it was stored, stays.
                if value.is_unavailable() {
                    continue;
                }
                validate::check(&column_config.rules, value, now_micros, &mut failed);
                reasons.extend(failed.drain(..).map(|rule| Reason::column(name.clone(), rule)));
            }
            if !reasons.is_empty() {
                reasons.sort_by(|a, b| a.column.cmp(&b.column));
                return reject(Stage::Validate, Some(&table), Some(op), Some(position), reasons);
            }
        }
        let detected = detect(&table, &columns);
        if !detected.is_empty() && matches!(table.detect, Some(Detect { policy: DetectPolicy::Reject, .. })) {
            reasons.extend(detected.iter().map(|(column, kind)| Reason::column(column.clone(), kind.rule())));
            return reject(Stage::Validate, Some(&table), Some(op), Some(position), reasons);
        }
        let masked = self.mask(&table, &key_columns, &mut columns, &detected, &mut reasons);
        if !reasons.is_empty() {
            return reject(Stage::Validate, Some(&table), Some(op), Some(position), reasons);
        }
        Outcome::Change(Change {
            key: key_values(&key_columns, &columns),
            table,
            op,
            deleted,
            tombstone: false,
            position,
            source_ts_ms: envelope.source.as_ref().and_then(|s| s.ts_ms),
            kafka: caches.origin(record),
            key_columns,
            columns,
            masked,
            detected,
            row_schema: envelope.schema.as_ref().and_then(|s| s.row.clone()),
            filled_from: None,
        })
    }

    /// A record with a null value. Per its table's `tombstones` policy it is skipped, or it is a
    /// delete of its key that has no source position (Kafka order places it). Without a key it
    /// addresses no row and is skipped.
    fn tombstone<'b>(&self, record: &KafkaRecord<'_>, key: Payload<'b>, caches: &mut Caches) -> Outcome<'b> {
        let table = match self.route(&record.topic, caches) {
            Some(table) if table.tombstones == TombstonePolicy::Delete && key != Payload::Absent => table,
            _ => return Outcome::Skip(SkipReason::Tombstone),
        };
        let mut columns = Vec::new();
        let mut reasons = Vec::new();
        let key_columns =
            self.key_columns(&table, key, &mut columns, caches, &mut reasons).unwrap_or_else(|| Arc::from(Vec::new()));
        let detected = detect(&table, &columns);
        if !detected.is_empty() && matches!(table.detect, Some(Detect { policy: DetectPolicy::Reject, .. })) {
            let reasons = detected.iter().map(|(column, kind)| Reason::column(column.clone(), kind.rule())).collect();
            return reject(Stage::Validate, Some(&table), Some(Op::Delete), None, reasons);
        }
        if reasons.is_empty() {
            let masked = self.mask(&table, &key_columns, &mut columns, &detected, &mut reasons);
            if reasons.is_empty() {
                return Outcome::Change(Change {
                    key: key_values(&key_columns, &columns),
                    table,
                    op: Op::Delete,
                    deleted: true,
                    tombstone: true,
                    position: Position::none(),
                    source_ts_ms: None,
                    kafka: caches.origin(record),
                    key_columns,
                    columns,
                    masked,
                    detected,
                    row_schema: None,
                    filled_from: None,
                });
            }
        }
        if reasons.iter().all(|r| r.rule == Rule::MissingKey) {
            // The Kafka key does not carry the table's key: see `follow_deletes`.
            let reasons = reasons.into_iter().map(|r| Reason { rule: Rule::TombstoneKey, ..r }).collect();
            return reject(Stage::Validate, Some(&table), Some(Op::Delete), None, reasons);
        }
        reject(Stage::Decode, Some(&table), Some(Op::Delete), None, reasons)
    }

    /// Apply the table's masks to `columns` (after validation, before anything is written or
    /// shown), and `[tables.detect]`'s mask to the `detected` columns; returns the masked
    /// column names. A mask that cannot keep keys distinct on a key column, or that cannot
    /// apply to a value, adds a reason.
    fn mask(
        &self,
        table: &TableConfig,
        key_columns: &[Arc<str>],
        columns: &mut [Column<'_>],
        detected: &[(Arc<str>, SensitiveKind)],
        reasons: &mut Vec<Reason>,
    ) -> Vec<Arc<str>> {
        let mut masked = Vec::new();
        let detect_mask = match &table.detect {
            Some(Detect { policy: DetectPolicy::Mask(mask), .. }) => Some(mask),
            _ => None,
        };
        for column in columns.iter_mut() {
            let configured = table.column(&column.name).and_then(|c| c.mask.as_ref());
            let found = || detected.iter().any(|(name, _)| *name == column.name);
            let Some(mask) = configured.or_else(|| detect_mask.filter(|_| found())) else { continue };
            // Config refuses such a mask on a declared `key`; keys taken from the Kafka key are
            // only known here. Masking one would merge distinct keys (or make it NULL).
            if !mask.keeps_keys_distinct() && key_columns.contains(&column.name) {
                reasons.push(Reason::column(column.name.clone(), Rule::MaskOnKey));
                continue;
            }
            if column.value.is_unavailable() {
                continue;
            }
            let raw = std::mem::replace(&mut column.value, Value::Null);
            match self.masker.apply(mask, raw) {
                Ok(value) => column.value = value,
                Err(e) => reasons.push(Reason::column(column.name.clone(), e.rule())),
            }
            masked.push(column.name.clone());
        }
        masked
    }

    /// Determine the key columns and make sure each has a non-null value in `columns`,
    /// taking it from the Kafka key when the row image lacks it.
    fn key_columns<'b>(
        &self,
        table: &TableConfig,
        key: Payload<'b>,
        columns: &mut Vec<Column<'b>>,
        caches: &mut Caches,
        reasons: &mut Vec<Reason>,
    ) -> Option<Arc<[Arc<str>]>> {
        let kafka_key = match key {
            Payload::Bytes(bytes) => match debezium::decode_key(bytes, &mut caches.schemas) {
                Ok(key) => Some(key),
                Err(_) if table.key.is_some() => None,
                Err(_) => {
                    reasons.push(Reason::record(Rule::KeyJson));
                    return None;
                }
            },
            Payload::Invalid if table.key.is_none() => {
                reasons.push(Reason::record(Rule::KeyBase64));
                return None;
            }
            _ => None,
        };
        let key_columns: Arc<[Arc<str>]> = match (&table.key, &kafka_key) {
            (Some(key), _) => key.clone(),
            (None, Some(Key::Struct { fields, schema })) if !fields.is_empty() => {
                let row = schema.as_ref().and_then(|s| s.row.as_deref());
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| match row.and_then(|r| r.field(name, i)) {
                        Some(f) => f.column.clone(),
                        None => caches.names.lowercase(name),
                    })
                    .collect()
            }
            _ => {
                reasons.push(Reason::record(Rule::MissingKey));
                return None;
            }
        };
        for name in key_columns.iter() {
            if let Some(column) = columns.iter().find(|c| &c.name == name) {
                if column.value.is_null() {
                    reasons.push(Reason::column(name.clone(), Rule::MissingKey));
                } else if column.value.is_unavailable() {
                    reasons.push(Reason::column(name.clone(), Rule::UnavailableValue));
                }
                continue;
            }
            match from_kafka_key(
                name,
                kafka_key.as_ref(),
                table,
                &key_columns,
                self.config.pipeline.nul,
                &mut caches.names,
            ) {
                Some(Ok(value)) if !value.is_null() => columns.push(Column { name: name.clone(), value }),
                Some(Err(rule)) => reasons.push(Reason::column(name.clone(), rule)),
                _ => reasons.push(Reason::column(name.clone(), Rule::MissingKey)),
            }
        }
        Some(key_columns)
    }
}

/// The values of `key_columns` in key order (a key column is always in `columns` by now).
fn key_values<'b>(key_columns: &[Arc<str>], columns: &[Column<'b>]) -> Vec<Value<'b>> {
    key_columns.iter().map(|k| columns.iter().find(|c| &c.name == k).map_or(Value::Null, |c| c.value.clone())).collect()
}

/// A key column's value from the Kafka key, typed by the key schema or the column hint.
fn from_kafka_key<'b>(
    column: &str,
    key: Option<&Key<'b>>,
    table: &TableConfig,
    key_columns: &[Arc<str>],
    nul: crate::config::NulPolicy,
    names: &mut ColumnNames,
) -> Option<Result<Value<'b>, Rule>> {
    let hint = || table.column(column).and_then(|c| c.type_hint.clone()).unwrap_or(ColumnType::Untyped);
    match key? {
        Key::Struct { fields, schema } => {
            let row = schema.as_ref().and_then(|s| s.row.as_deref());
            let (i, (name, raw)) =
                fields.iter().enumerate().find(|(_, (name, _))| &*names.lowercase(name) == column)?;
            let ty = row.and_then(|r| r.field(name, i)).map_or_else(hint, |f| f.ty.clone());
            Some(debezium::convert(raw, &ty, nul, None).map_err(|e| e.rule()))
        }
        // A bare key can only stand for a single-column key.
        Key::Primitive(raw) if key_columns.len() == 1 => {
            Some(debezium::convert(raw, &hint(), nul, None).map_err(|e| e.rule()))
        }
        Key::Primitive(_) => None,
    }
}

fn reject<'b>(
    stage: Stage,
    table: Option<&Arc<TableConfig>>,
    op: Option<Op>,
    position: Option<Position>,
    reasons: Vec<Reason>,
) -> Outcome<'b> {
    Outcome::Reject(Reject { stage, table: table.cloned(), op, position, reasons })
}

/// State kept between invocations of a warm function: parsed schemas, routes, names.
#[derive(Debug, Default)]
pub struct Caches {
    pub schemas: SchemaCache,
    names: ColumnNames,
    routes: HashMap<String, Option<Arc<TableConfig>>>,
    topics: HashMap<Box<str>, Arc<str>>,
}

impl Caches {
    /// The record's Kafka coordinates, its topic name shared rather than copied per record.
    fn origin(&mut self, record: &KafkaRecord<'_>) -> KafkaOrigin {
        let topic = match self.topics.get(record.topic.as_ref()) {
            Some(topic) => topic.clone(),
            None => {
                let topic: Arc<str> = record.topic.as_ref().into();
                self.topics.insert(record.topic.as_ref().into(), topic.clone());
                topic
            }
        };
        KafkaOrigin { topic, partition: record.partition, offset: record.offset }
    }
}

/// Text columns of `columns` that hold a sensitive-looking value, by `[tables.detect]`: those
/// without a configured mask, not exempt, with the kind found. Empty when the table does not
/// detect.
fn detect(table: &TableConfig, columns: &[Column<'_>]) -> Vec<(Arc<str>, SensitiveKind)> {
    let Some(detect) = &table.detect else { return Vec::new() };
    columns
        .iter()
        .filter(|c| !detect.exempt.contains(&c.name) && table.column(&c.name).is_none_or(|cc| cc.mask.is_none()))
        .filter_map(|c| match &c.value {
            Value::Text(text) => detect.scan(text).map(|kind| (c.name.clone(), kind)),
            _ => None,
        })
        .collect()
}

/// A tombstone names its row by the Kafka key alone. When the table's `key` is not the Kafka
/// key (say `key = ["email"]` over a topic keyed by `id`), it cannot name a row: the delete event
/// Debezium writes just before it, with the same Kafka key, carries the delete. A tombstone
/// whose delete event is in the batch (the latest earlier record of its topic, partition and
/// Kafka key is that delete, decoded) is skipped as redundant (reason `tombstone`); one whose
/// delete the batch does not show stays rejected (`tombstone_key`): it may be all that is left
/// of a delete (a compacted topic), and only someone who knows the table can tell.
fn follow_deletes(records: &[&KafkaRecord<'_>], outcomes: &mut [Outcome<'_>]) {
    for i in 0..outcomes.len() {
        let Outcome::Reject(reject) = &outcomes[i] else { continue };
        if reject.reasons.is_empty() || !reject.reasons.iter().all(|r| r.rule == Rule::TombstoneKey) {
            continue;
        }
        let tombstone = records[i];
        let delete_before = (0..i)
            .rev()
            .find(|&j| {
                let r = records[j];
                r.topic == tombstone.topic && r.partition == tombstone.partition && r.key == tombstone.key
            })
            .is_some_and(|j| matches!(&outcomes[j], Outcome::Change(c) if c.deleted && !c.tombstone));
        if delete_before {
            outcomes[i] = Outcome::Skip(SkipReason::Tombstone);
        }
    }
}
