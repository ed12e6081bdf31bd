//! Per record: decode → route → validate → mask. The result is one [`Outcome`] per record,
//! aligned with the batch, so that every record is accounted for.
//!
//! A record goes through named steps (`steps.rs`), in this order; the first that skips or
//! rejects it decides its outcome:
//!
//! | step | skips or rejects |
//! |---|---|
//! | `control_topic` | heartbeat and transaction-metadata topics (skip) |
//! | `payload` | a null value → the tombstone path; `base64` |
//! | `decode` | schema-change, transaction and heartbeat messages (skip); `json`, `not_an_envelope`, `schema`, `unknown_op`, `source`, `converter_string`, `unwrapped_record`, `converter_binary` |
//! | `op_policy` | ops `t` and `m`: skip, or `truncate`/`message` (`on_truncate`, `on_message`) |
//! | `routed` | a topic no table routes: skip, or `unroutable` |
//! | `position` | `source_position` |
//! | `decode_image` | the op's image (`before` for a delete): a field's conversion rule, `row_image` |
//! | `key_columns` | `key_base64`, `key_json`, `missing_key`, `unavailable_value`, the key's conversion rule |
//! | `keep_the_key` (delete) or `check_column_names` | a delete keeps its key only; `column_name`, `duplicate_column` |
//! | `decoded` | any reason so far: `Validate` if all are `missing_key`, else `Decode` |
//! | `masked_columns_present` (upsert) | `unknown_column` |
//! | `rules` (upsert) | the column rules of `validate::check` |
//! | `detect` | `[tables.detect]` findings under `policy = "reject"` (`detected_<kind>`) |
//! | `mask` | `mask_on_key`, `mask_key`, `mask_year` |
//!
//! A tombstone (`tombstone`) takes the route, `key_columns`, `detect` and `mask`; after the
//! batch, `follow_deletes` skips a `tombstone_key` reject whose delete event it holds. Steps
//! do no I/O and allocate only what the change keeps (or a reject's reasons).

mod steps;

use std::collections::HashMap;
use std::sync::Arc;

use crate::batch::DecodedBatch;
use crate::config::{Config, TableConfig};
use crate::debezium::{ColumnNames, SchemaCache};
use crate::event::KafkaRecord;
use crate::mask::{Mask, Masker};
use crate::outcome::{KafkaOrigin, Outcome, SkipReason};
use crate::rule::Rule;

/// Configuration and masking key: built once per cold start ([`Pipeline::new`]), shared by
/// every invocation; [`Pipeline::transform`] runs a batch through it.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The pipeline config (`CDC_CONFIG`: tables, rules, masks, policies).
    pub config: Arc<Config>,
    /// The masking key (and the keys derived for the salts in use) that `hmac` masks use.
    pub masker: Masker,
    /// The masking key's version (Secrets Manager `VersionId`), recorded with dead letters.
    pub key_version: Option<String>,
}

/// Why [`Pipeline::new`] refused its config and masking key (cold start fails; the text names
/// the variable to set, never the key).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The config uses an `hmac` mask (a column's or `[tables.detect]`'s) and no key is given.
    #[error(
        "the config uses an hmac mask but no masking key is set (set MASKING_KEY, or MASKING_KEY_SECRET_ARN in AWS)"
    )]
    MissingMaskingKey,
    /// The masking key is shorter than [`crate::mask::MIN_KEY_BYTES`] (32) bytes.
    #[error(
        "the masking key is {bytes} bytes; it must be at least {} (generate one with `openssl rand -base64 48`)",
        crate::mask::MIN_KEY_BYTES
    )]
    ShortMaskingKey {
        /// The key's length in bytes.
        bytes: usize,
    },
}

impl Pipeline {
    /// The pipeline of `config` with `masking_key` (raw bytes, at least
    /// [`crate::mask::MIN_KEY_BYTES`]; `None` when no mask needs one). Errors: a key too short
    /// ([`PipelineError::ShortMaskingKey`]), or none when the config uses `hmac`
    /// ([`PipelineError::MissingMaskingKey`]). `key_version` starts `None`.
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

    /// Transform every record of a batch: one [`Outcome`] per record, in batch order.
    /// `now_micros` (epoch microseconds, UTC) is the reference for `not_future`.
    pub fn transform<'b>(&self, batch: &'b DecodedBatch<'_>, caches: &mut Caches, now_micros: i64) -> Vec<Outcome<'b>> {
        let mut outcomes: Vec<Outcome<'b>> = (0..batch.len())
            .map(|i| {
                match self.transform_record(batch.records()[i], batch.key(i), batch.value(i), caches, now_micros) {
                    Ok(change) => Outcome::Change(change),
                    Err(stop) => stop.into(),
                }
            })
            .collect();
        follow_deletes(batch.records(), &mut outcomes);
        outcomes
    }

    /// The table `topic` routes to (the config's, or the default routing's), cached per topic.
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
}

/// State kept between invocations of a warm function: parsed schemas, routes, names. Start
/// with `Caches::default()`; it only grows with the distinct schemas, topics and column names
/// seen.
#[derive(Debug, Default)]
pub struct Caches {
    /// Connect schemas parsed so far, by their JSON text (message and key schemas).
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

#[cfg(test)]
mod tests;
