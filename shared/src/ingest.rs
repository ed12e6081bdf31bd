//! The one place that runs a batch and keeps the invariant: **a batch succeeds only when every
//! record is committed in Redshift (loaded, or stale because the target already holds its
//! change or a newer one), superseded by a later change of the same key in the batch, skipped
//! for a stated reason, or durably written to the S3 dead-letter store.** Otherwise the
//! invocation fails and the event source mapping retries the whole batch.
//!
//! Order of work: transform → plan → load → dead-letter. Dead letters are written only after
//! the load succeeded, and all of them or none, so that a retried batch finds committed rows
//! stale and leaves no second copy of a dead-letter object. The ingest Lambda, the replay
//! Lambda and `cdc ingest`/`cdc replay` all run [`Ingestor::process`].
//!
//! Owns the order of work, the accounting ([`Processed`]), the quarantine split and the
//! summary (one log line, one metrics line). It must not succeed with a record unaccounted
//! for, write dead letters before the load committed, or log anything of a record but its
//! coordinates.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::batch::DecodedBatch;
use crate::dlq::{self, Failed, Store, StoreError, Writer};
use crate::event::{EventParseError, KafkaRecord, MskEvent};
use crate::metrics::{self, Metric, MetricsSink, RecordCount, TargetNotReady, emf_line};
use crate::outcome::{Outcome, Reason, SkipReason, Stage};
use crate::plan::plan;
use crate::redshift::{LoadError, Loader};
use crate::registry::{Lookup, RegistryError, SchemaCache};
use crate::rule::Rule;
use crate::temporal::now_micros;
use crate::transform::{Caches, Pipeline};

/// One invocation: who asked, and until when.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Lambda's request id (a UUID for a local run): in logs, dead letters and dead-letter
    /// object keys.
    pub request_id: String,
    /// When the invocation must have answered.
    pub deadline: Instant,
    /// Tells apart the dead-letter objects of several batches of one invocation (replay).
    pub batch_tag: Option<String>,
}

impl Invocation {
    /// From Lambda's context: the deadline in epoch milliseconds. Some local runtime
    /// emulators (`cargo lambda watch`) send the function timeout instead of a time; a value
    /// too small to be an epoch time after 2001 is read as such a duration.
    pub fn from_lambda(request_id: String, deadline_ms: u64) -> Invocation {
        const EPOCH_MS_2001: u64 = 1_000_000_000_000;
        let remaining = if deadline_ms < EPOCH_MS_2001 {
            Duration::from_millis(deadline_ms)
        } else {
            Duration::from_millis(deadline_ms.saturating_sub((now_micros() / 1_000).max(0) as u64))
        };
        Invocation { request_id, deadline: Instant::now() + remaining, batch_tag: None }
    }

    /// A local run (`cdc ingest`): a fresh request id and `timeout` from now.
    pub fn local(timeout: Duration) -> Invocation {
        Invocation { request_id: uuid::Uuid::new_v4().to_string(), deadline: Instant::now() + timeout, batch_tag: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_deadlines_as_epoch_times_or_durations() {
        let now_ms = (now_micros() / 1_000) as u64;
        let remaining = |i: Invocation| i.deadline.saturating_duration_since(Instant::now()).as_secs();
        assert!((58..=60).contains(&remaining(Invocation::from_lambda("a".into(), now_ms + 60_000))));
        assert_eq!(remaining(Invocation::from_lambda("b".into(), now_ms - 5_000)), 0, "a past deadline leaves nothing");
        assert!(
            (598..=600).contains(&remaining(Invocation::from_lambda("c".into(), 600_000))),
            "cargo lambda watch sends the timeout"
        );
    }

    /// An `Ingestor` holds the masking key (in its pipeline's masker) for the life of a warm
    /// function: its `Debug` (a panic message, a `{:?}` in a log line) must print none of it,
    /// as text, bytes or hex.
    #[test]
    fn debug_output_never_prints_the_masking_key() {
        use crate::redshift::{Auth, DataApi, Target};
        let key = b"masking-key-that-must-never-be-printed-0123456789";
        let config = Arc::new(crate::Config::default_routing());
        let mut pipeline = Pipeline::new(config, Some(key)).unwrap();
        pipeline.key_version = Some("v-1".into());
        let offline = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let target = Target { auth: Auth::Workgroup { name: "wg".into(), secret_arn: None }, database: "dev".into() };
        let loader = Loader::new(DataApi::new(aws_sdk_redshiftdata::Client::new(&offline), target));
        let store = Store {
            client: aws_sdk_s3::Client::new(&offline),
            bucket: "b".into(),
            prefix: "dead-letter".into(),
            archive_prefix: "archive".into(),
            quarantine_prefix: "quarantine".into(),
            kms_key_id: Some("alias/dlq".into()),
        };
        let ingestor = Ingestor::new(pipeline, loader, store, Arc::new(crate::metrics::Stdout));
        let shown = format!("{ingestor:?} {ingestor:#?}");
        assert!(shown.contains("Masker") && shown.contains("v-1"), "the pipeline is shown: {shown}");
        let bytes = format!("{:?}", &key[..12]);
        let hex: String = key[..12].iter().map(|b| format!("{b:02x}")).collect();
        for secret in ["never-be-printed", &bytes[1..bytes.len() - 1], &hex] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A count per enum value (stage, skip reason) as a JSON object keyed by the value's
/// snake_case name, in name order (as the response has always had them).
fn counts_by_name<K: Copy, S: serde::Serializer>(
    counts: &BTreeMap<K, usize>,
    name: fn(K) -> &'static str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut named: Vec<(&'static str, usize)> = counts.iter().map(|(&k, &n)| (name(k), n)).collect();
    named.sort_unstable();
    serializer.collect_map(named)
}

fn skipped_by_name<S: serde::Serializer>(counts: &BTreeMap<SkipReason, usize>, s: S) -> Result<S::Ok, S::Error> {
    counts_by_name(counts, SkipReason::as_str, s)
}

fn stages_by_name<S: serde::Serializer>(counts: &BTreeMap<Stage, usize>, s: S) -> Result<S::Ok, S::Error> {
    counts_by_name(counts, Stage::as_str, s)
}

/// `[{"table": …, "column": …, "kind": …, "records": n}]`: JSON maps need string keys.
fn detections_as_list<S: serde::Serializer>(
    detections: &BTreeMap<(String, Arc<str>, &'static str), usize>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(detections.iter().map(|((table, column, kind), records)| {
        serde_json::json!({"table": table, "column": column.as_ref(), "kind": kind, "records": records})
    }))
}

/// Why a batch failed as a whole: the invocation returns it and the event source mapping
/// retries the batch. Rows already committed are found stale on the retry; no dead-letter
/// object is left behind.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The payload is not an MSK event (ingest only; nothing was loaded).
    #[error("the invocation payload is not an MSK event: {0}")]
    Event(#[from] EventParseError),
    /// The deadline left no time after the margin ([`Ingestor::deadline_margin`]); nothing
    /// was done.
    #[error("only {remaining_ms} ms were left of the invocation, not more than the deadline margin ({margin_ms} ms)")]
    NoTime {
        /// Time left before the invocation's deadline, ms.
        remaining_ms: u128,
        /// The margin kept back, ms.
        margin_ms: u128,
    },
    /// The load failed (a Data API error that blames no row, the deadline): some
    /// transactions may have committed.
    #[error("batch not loaded, will be retried: {0}")]
    Load(#[from] LoadError),
    /// Writing the dead letters failed after the load; the objects written were deleted again.
    #[error("dead-letter write failed, batch will be retried: {0}")]
    DeadLetter(#[from] StoreError),
    /// The schema registry did not give a schema the batch's Avro records need (nothing was
    /// loaded): an outage must not reject records.
    #[error("batch not read, will be retried: {0}")]
    SchemaRegistry(#[from] RegistryError),
}

impl IngestError {
    /// The Lambda `errorType` of the function's error response: one word per variant
    /// (`InvalidEvent`, `NoTime`, `Load`, `DeadLetter`) instead of a boxed type's name.
    pub fn error_type(&self) -> &'static str {
        match self {
            IngestError::Event(_) => "InvalidEvent",
            IngestError::NoTime { .. } => "NoTime",
            IngestError::Load(_) => "Load",
            IngestError::DeadLetter(_) => "DeadLetter",
            IngestError::SchemaRegistry(_) => "SchemaRegistry",
        }
    }

    /// The target problem an operator fixes with DDL, when that is why the batch failed.
    pub fn target_not_ready(&self) -> Option<TargetNotReady> {
        match self {
            IngestError::Load(LoadError::TargetTableMissing { .. }) => Some(TargetNotReady::TableMissing),
            IngestError::Load(LoadError::MetadataColumnsMissing { .. }) => Some(TargetNotReady::MetadataColumnsMissing),
            IngestError::Load(LoadError::Warehouse(_)) => None,
            IngestError::Event(_)
            | IngestError::NoTime { .. }
            | IngestError::DeadLetter(_)
            | IngestError::SchemaRegistry(_) => None,
        }
    }
}

/// Run a batch in full, or only show what would happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Load, dead-letter, and (replay) archive.
    Apply,
    /// Transform, plan, and the loader's dry run ([`Loader::dry_run`]: `DescribeTable` and
    /// every check against the target), writing nothing: no `ALTER TABLE`, transaction, staged
    /// object or dead letter. The counts are the real run's, except for what only the apply
    /// SQL decides against the stored rows (a stale row counts as loaded).
    DryRun,
}

/// What became of a batch. `received = loaded + stale + superseded + skipped + dead-lettered`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Processed {
    /// Records in the batch: the sum of every other count ([`Processed::is_balanced`]).
    pub records_received: usize,
    /// Rows written (in a dry run: rows that would be sent to the warehouse).
    pub loaded: usize,
    /// Rows not written because the target (or its delete ledger) already held this change or
    /// a newer one: a redelivery, a retry after a partial commit, an older change.
    pub stale: usize,
    /// Changes replaced by a later change of their key in the same batch (not counted when the
    /// latest was rejected and an earlier one loaded in its place).
    pub superseded: usize,
    /// By reason (`{"tombstone": 1, …}`).
    #[serde(serialize_with = "skipped_by_name")]
    pub skipped: BTreeMap<SkipReason, usize>,
    /// By stage (`{"validate": 2, …}`; in a dry run: the rejects the real run would make
    /// before the apply SQL runs).
    #[serde(serialize_with = "stages_by_name")]
    pub dead_lettered: BTreeMap<Stage, usize>,
    /// The S3 keys of the dead-letter objects written (quarantine included), in write order.
    pub dead_letter_objects: Vec<String>,
    /// Data API calls made by the load, polls and retries included (in a dry run: its
    /// `DescribeTable` calls).
    pub data_api_calls: u64,
    /// S3 calls: staged objects' puts (retries counted) and deletes, and dead-letter writes.
    pub s3_calls: u64,
    /// Bytes of SQL text submitted to the Data API (on the COPY path: no row value in it).
    pub sql_bytes: u64,
    /// Bytes of staged objects written (gzip-compressed CSV).
    pub staged_bytes: u64,
    /// Committed transactions (`BatchExecuteStatement`s) that carried rows.
    pub transactions: usize,
    /// Of `transactions`, those that loaded a staged object with `COPY` (the others inserted
    /// `VALUES`: `load = "insert"` tables, and rows a staged file cannot carry).
    pub copy_transactions: usize,
    /// Calls and transactions repeated after a transient failure (throttling, conflicts,
    /// server errors, failed polls).
    pub retries: u32,
    /// Rejects (counted in `dead_lettered`) whose order against the stored change of their key
    /// could not be known (`position_regressed`).
    #[serde(skip_serializing_if = "is_zero")]
    pub positions_regressed: usize,
    /// Of `dead_lettered`: records past the replay attempts cap, written under the
    /// quarantine prefix instead of the dead-letter prefix.
    #[serde(skip_serializing_if = "is_zero")]
    pub quarantined: usize,
    /// `[tables.detect]` findings: (target table, column, kind) → records, masked or rejected.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", serialize_with = "detections_as_list")]
    pub detections: BTreeMap<(String, Arc<str>, &'static str), usize>,
    /// Now minus the oldest source commit time of the batch's changes, ms (`SourceLag`);
    /// `None` when no change carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_source_lag_ms: Option<i64>,
}

impl Processed {
    /// Records dead-lettered over every stage (quarantined ones included).
    pub fn dead_lettered_total(&self) -> usize {
        self.dead_lettered.values().sum()
    }

    /// Records skipped for any reason.
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }

    /// Every record is accounted for exactly once.
    pub fn is_balanced(&self) -> bool {
        self.records_received
            == self.loaded + self.stale + self.superseded + self.skipped_total() + self.dead_lettered_total()
    }
}

/// The ingest handler's JSON response.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    /// Lambda's request id (as in the dead letters it wrote).
    pub request_id: String,
    /// The counts, flattened into the response's top level.
    #[serde(flatten)]
    pub processed: Processed,
    /// Wall time from parsing the event to the summary, ms (the `BatchDuration` metric).
    pub duration_ms: u64,
}

/// Everything a warm function keeps: pipeline, loader (with its target-schema cache),
/// dead-letter store, decode caches and telemetry settings.
#[derive(Debug)]
pub struct Ingestor {
    /// Decode, route, validate, mask (holds the config and the masking key).
    pub pipeline: Pipeline,
    /// Loads plans into the target warehouse.
    pub loader: Loader,
    /// The dead-letter store: S3 bucket, prefixes, encryption.
    pub store: Store,
    /// The schema registry and the schemas read from it (`SCHEMA_REGISTRY`); `None`: registry
    /// frames are rejected (`converter_binary`).
    pub schemas: Option<SchemaCache>,
    caches: Mutex<Caches>,
    /// Kept back from the invocation's deadline for the dead-letter writes and the response
    /// (`DEADLINE_MARGIN_MS`, default 5 s).
    pub deadline_margin: Duration,
    /// The CloudWatch namespace of the metrics (`METRICS_NAMESPACE`, default
    /// `MskRedshiftCdc`).
    pub metrics_namespace: String,
    /// The `FunctionName` dimension and the dead letters' `function` (`AWS_LAMBDA_FUNCTION_NAME`,
    /// else `ingest` or `replay`).
    pub function_name: String,
    /// Where the EMF lines go: stdout in Lambda, stderr for `cdc`, memory in tests.
    pub metrics: Arc<dyn MetricsSink>,
    /// A record dead-lettered this many times goes to quarantine when it fails once more
    /// (`REPLAY_MAX_ATTEMPTS`, default [`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: u32,
}

/// Dead-letter attempts before quarantine: enough for a fix and a replay or two, few enough
/// that an undecodable record stops being copied on every replay.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Record coordinates as a map key.
type Coordinates<'a> = (&'a str, i64, i64);

impl Ingestor {
    /// An ingestor with the defaults: 5 s deadline margin, namespace `MskRedshiftCdc`,
    /// function name `ingest`, [`DEFAULT_MAX_ATTEMPTS`]. `wiring::build` sets them from the
    /// settings.
    pub fn new(pipeline: Pipeline, loader: Loader, store: Store, metrics: Arc<dyn MetricsSink>) -> Ingestor {
        Ingestor {
            pipeline,
            loader,
            store,
            schemas: None,
            caches: Mutex::new(Caches::default()),
            deadline_margin: Duration::from_secs(5),
            metrics_namespace: "MskRedshiftCdc".into(),
            function_name: "ingest".into(),
            metrics,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// The ingest Lambda's work: one MSK event, in [`Mode::Apply`], then the summary log and
    /// metrics lines (a failure emits `BatchesFailed`).
    ///
    /// Errors: [`IngestError::Event`] when the payload is not an event, else those of
    /// [`Ingestor::process`].
    pub async fn ingest(&self, event_json: &[u8], invocation: &Invocation) -> Result<IngestSummary, IngestError> {
        let started = Instant::now();
        let span = tracing::info_span!("ingest", request_id = %invocation.request_id);
        let _entered = span.enter();
        let event = match MskEvent::parse(event_json) {
            Ok(event) => event,
            Err(error) => {
                // The message names a JSON path, a kind and a position, never a value.
                tracing::error!(request_id = %invocation.request_id, error = %error, "the invocation payload is not an MSK event; nothing was loaded and the event source mapping will retry it");
                self.emit_metrics(&[Metric::count("BatchesFailed", 1), Metric::count("EventsMalformed", 1)]);
                return Err(error.into());
            }
        };
        let records = event.records_in_order();
        let result = self.process(records.clone(), &HashMap::new(), invocation, Mode::Apply).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(processed) => {
                self.report(&invocation.request_id, &records, &processed, duration_ms);
                Ok(IngestSummary { request_id: invocation.request_id.clone(), processed, duration_ms })
            }
            Err(error) => {
                tracing::error!(request_id = %invocation.request_id, records = records.len(), error = %error, "batch failed; the event source mapping will retry it");
                let mut metrics = vec![RecordCount::Received.metric(records.len()), Metric::count("BatchesFailed", 1)];
                metrics.extend(error.target_not_ready().map(|t| t.metric()));
                self.emit_metrics(&metrics);
                Err(error)
            }
        }
    }

    /// Transform, plan, load and dead-letter `records`. `attempts` holds how often a record
    /// was already dead-lettered (replay), by coordinates; missing means 0.
    ///
    /// Errors: [`IngestError::NoTime`] when the deadline less the margin has passed;
    /// [`IngestError::Load`] when the load fails as a whole; [`IngestError::DeadLetter`] when
    /// a dead-letter object cannot be written. On `Ok`, every record is counted once
    /// ([`Processed::is_balanced`]).
    pub async fn process<'r>(
        &self,
        records: Vec<&'r KafkaRecord<'r>>,
        attempts: &HashMap<Coordinates<'_>, u32>,
        invocation: &Invocation,
        mode: Mode,
    ) -> Result<Processed, IngestError> {
        let Some(deadline) = invocation.deadline.checked_sub(self.deadline_margin).filter(|d| *d > Instant::now())
        else {
            let remaining_ms = invocation.deadline.saturating_duration_since(Instant::now()).as_millis();
            return Err(IngestError::NoTime { remaining_ms, margin_ms: self.deadline_margin.as_millis() });
        };
        let now = now_micros();
        let mut batch = DecodedBatch::from_records(records);
        self.read_avro(&mut batch).await?;
        let outcomes = {
            let mut caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
            self.pipeline.transform(&batch, &mut caches, now)
        };
        let plans = plan(&outcomes);
        let mut processed = Processed { records_received: batch.len(), ..Processed::default() };
        let previous =
            |r: &KafkaRecord<'_>| attempts.get(&(r.topic.as_ref(), r.partition, r.offset)).copied().unwrap_or(0);
        let mut failed = Vec::new();
        for (record, outcome) in batch.records().iter().zip(&outcomes) {
            match outcome {
                Outcome::Skip(reason) => *processed.skipped.entry(*reason).or_default() += 1,
                Outcome::Reject(reject) => {
                    if let Some(table) = &reject.table {
                        for reason in &reject.reasons {
                            if let (Some(column), Some(kind)) =
                                (&reason.column, crate::detect::SensitiveKind::from_rule(reason.rule))
                            {
                                let at = (table.target.to_string(), column.clone(), kind.name());
                                *processed.detections.entry(at).or_default() += 1;
                            }
                        }
                    }
                    failed.push(Failed {
                        record,
                        stage: reject.stage,
                        reasons: reject.reasons.clone(),
                        error_class: None,
                        previous_attempts: previous(record),
                    })
                }
                Outcome::Change(change) => {
                    for (column, kind) in &change.detected {
                        let at = (change.table.target.to_string(), column.clone(), kind.name());
                        *processed.detections.entry(at).or_default() += 1;
                    }
                    if let Some(ts) = change.source_ts_ms {
                        processed.max_source_lag_ms = processed.max_source_lag_ms.max(Some(now / 1_000 - ts));
                    }
                }
            }
        }
        // What the plan itself decided: tombstones after their delete add nothing; a change whose
        // order against the latest of its key cannot be known is rejected.
        for plan in &plans {
            *processed.skipped.entry(SkipReason::Tombstone).or_default() += plan.redundant_tombstones.len();
            for regressed in &plan.regressed {
                let record = batch.records()[regressed.index];
                failed.push(Failed {
                    record,
                    stage: Stage::Load,
                    reasons: vec![Reason::record(Rule::PositionRegressed)],
                    error_class: None,
                    previous_attempts: previous(record),
                });
            }
        }
        processed.skipped.retain(|_, n| *n > 0);
        // A dry run makes the same decisions against the target, and writes nothing.
        let report = match mode {
            Mode::Apply => self.loader.load(&plans, deadline, now).await?,
            Mode::DryRun => self.loader.dry_run(&plans, deadline, now).await?,
        };
        processed.superseded = plans.iter().map(|p| p.superseded()).sum::<usize>() - report.promoted;
        processed.loaded = report.rows_loaded;
        processed.stale = report.rows_stale;
        processed.data_api_calls = report.data_api_calls;
        processed.s3_calls = report.s3_calls;
        processed.sql_bytes = report.sql_bytes;
        processed.staged_bytes = report.staged_bytes;
        processed.transactions = report.transactions;
        processed.copy_transactions = report.copy_transactions;
        processed.retries = report.retries;
        failed.extend(report.rejects.iter().map(|r| {
            let record = batch.records()[r.index];
            Failed {
                record,
                stage: r.stage,
                reasons: r.reasons.clone(),
                error_class: r.error_class.map(|c| c.as_str()),
                previous_attempts: previous(record),
            }
        }));
        for f in &failed {
            *processed.dead_lettered.entry(f.stage).or_default() += 1;
            if f.reasons.iter().any(|r| r.rule == Rule::PositionRegressed) {
                processed.positions_regressed += 1;
                if mode == Mode::Apply {
                    // Coordinates only: the record goes to the dead-letter store for an operator.
                    tracing::warn!(
                        topic = %f.record.topic,
                        partition = f.record.partition,
                        offset = f.record.offset,
                        "change rejected: its order against the stored change of its key cannot be known (position_regressed)"
                    );
                }
            }
        }
        if mode == Mode::DryRun {
            processed.quarantined = failed.iter().filter(|f| f.previous_attempts >= self.max_attempts).count();
            return Ok(processed);
        }
        if !failed.is_empty() {
            let writer = Writer {
                function: &self.function_name,
                request_id: &invocation.request_id,
                failed_at_micros: now,
                key_suffix: invocation.batch_tag.as_deref(),
                mask_key_version: self.pipeline.key_version.as_deref(),
            };
            // Past the cap a record leaves the dead-letter prefix, and with it every default
            // replay, for the quarantine prefix; it is still stored, never dropped.
            let (quarantined, again): (Vec<Failed<'_>>, Vec<Failed<'_>>) =
                failed.into_iter().partition(|f| f.previous_attempts >= self.max_attempts);
            processed.quarantined = quarantined.len();
            for f in &quarantined {
                tracing::warn!(
                    topic = %f.record.topic,
                    partition = f.record.partition,
                    offset = f.record.offset,
                    attempts = f.previous_attempts + 1,
                    "record quarantined: dead-lettered more often than REPLAY_MAX_ATTEMPTS allows"
                );
            }
            let mut objects = dlq::objects(&self.store.prefix, &writer, &again);
            objects.extend(dlq::objects(&self.store.quarantine_prefix, &writer, &quarantined));
            self.store.put_all(&objects).await?;
            processed.s3_calls += objects.len() as u64;
            processed.dead_letter_objects = objects.into_iter().map(|o| o.key).collect();
        }
        debug_assert!(processed.is_balanced(), "every record is accounted for: {processed:?}");
        Ok(processed)
    }

    /// Turn the batch's registry frames into the JsonConverter's text, with the schemas the
    /// registry gives (read once per function). Records whose schema is unknown or refused are
    /// rejected one by one; without a registry nothing changes.
    ///
    /// Errors: [`IngestError::SchemaRegistry`] when the registry does not answer.
    async fn read_avro(&self, batch: &mut DecodedBatch<'_>) -> Result<(), IngestError> {
        let Some(cache) = &self.schemas else { return Ok(()) };
        let refs = batch.schema_refs();
        if refs.is_empty() {
            return Ok(());
        }
        // Boxed: the registry's request futures nest deep enough to overflow the compiler's
        // layout query depth in the functions' `lambda_runtime::run` future, and only a batch
        // with Avro records gets here.
        let known = Box::pin(cache.resolve(&refs)).await?;
        batch.read_avro(&|schema| match known.get(&schema)? {
            Lookup::Found(schema) => Some(Ok(schema.clone())),
            Lookup::Refused(error) => Some(Err(error.clone())),
            Lookup::Unknown => None,
        });
        Ok(())
    }

    /// One summary log line and one metrics line per invocation. Coordinates and counts only.
    fn report(&self, request_id: &str, records: &[&KafkaRecord<'_>], processed: &Processed, duration_ms: u64) {
        let mut ranges: BTreeMap<(&str, i64), (i64, i64)> = BTreeMap::new();
        for r in records {
            let range = ranges.entry((r.topic.as_ref(), r.partition)).or_insert((r.offset, r.offset));
            range.0 = range.0.min(r.offset);
            range.1 = range.1.max(r.offset);
        }
        let offsets: Vec<String> = ranges.iter().map(|((t, p), (a, b))| format!("{t}-{p}:{a}..{b}")).collect();
        tracing::info!(
            request_id,
            offsets = %offsets.join(","),
            received = processed.records_received,
            loaded = processed.loaded,
            stale = processed.stale,
            superseded = processed.superseded,
            skipped = processed.skipped_total(),
            dead_lettered = processed.dead_lettered_total(),
            dead_letter_objects = processed.dead_letter_objects.len(),
            data_api_calls = processed.data_api_calls,
            s3_calls = processed.s3_calls,
            transactions = processed.transactions,
            copy_transactions = processed.copy_transactions,
            retries = processed.retries,
            duration_ms,
            "batch processed"
        );
        let mut metrics = vec![
            RecordCount::Received.metric(processed.records_received),
            RecordCount::Loaded.metric(processed.loaded),
            RecordCount::Stale.metric(processed.stale),
            RecordCount::Superseded.metric(processed.superseded),
            RecordCount::Skipped.metric(processed.skipped_total()),
            RecordCount::DeadLettered.metric(processed.dead_lettered_total()),
            Metric::count("DataApiCalls", processed.data_api_calls as usize),
            Metric::count("S3Calls", processed.s3_calls as usize),
            Metric::count("CopyTransactions", processed.copy_transactions),
            Metric::count("InsertTransactions", processed.transactions - processed.copy_transactions),
            Metric::count("DataApiRetries", processed.retries as usize),
            Metric::count("PositionsRegressed", processed.positions_regressed),
            RecordCount::Quarantined.metric(processed.quarantined),
            Metric::millis("BatchDuration", duration_ms as f64),
        ];
        metrics.extend(
            metrics::STAGES
                .map(|stage| metrics::rejected(stage, processed.dead_lettered.get(&stage).copied().unwrap_or(0))),
        );
        self.emit_detections(processed);
        if let Some(lag) = processed.max_source_lag_ms {
            metrics.push(Metric::millis("SourceLag", lag as f64));
        }
        self.emit_metrics(&metrics);
    }

    /// `[tables.detect]` findings: a warning and a `SensitiveValuesDetected` metric per
    /// (table, column, kind), dimensions `FunctionName`, `Table`, `Column`, `Kind`. Names and
    /// counts only, never a value.
    pub fn emit_detections(&self, processed: &Processed) {
        for ((table, column, kind), records) in &processed.detections {
            tracing::warn!(
                table,
                column = column.as_ref(),
                kind,
                records,
                "sensitive-looking values detected ([tables.detect])"
            );
            let dimensions =
                [("FunctionName", self.function_name.as_str()), ("Table", table), ("Column", column), ("Kind", kind)];
            let line = emf_line(
                &self.metrics_namespace,
                &dimensions,
                &[Metric::count("SensitiveValuesDetected", *records)],
                now_micros() / 1_000,
            );
            self.metrics.emit(&line);
        }
    }

    /// One EMF line of `metrics` with the `FunctionName` dimension, timestamped now.
    pub fn emit_metrics(&self, metrics: &[Metric]) {
        let line =
            emf_line(&self.metrics_namespace, &[("FunctionName", &self.function_name)], metrics, now_micros() / 1_000);
        self.metrics.emit(&line);
    }
}
