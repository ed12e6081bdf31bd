//! On-demand replay of dead-letter objects through the same pipeline as ingest.
//!
//! Objects are processed in key order. An object moves to the archive prefix only after each
//! of its records is committed, stale, superseded, skipped, or re-dead-lettered into a new
//! object (with `attempts + 1`); nothing is deleted before its records are stored elsewhere.
//! The replay stops cleanly before its deadline and answers `next_key`: pass it back to
//! resume. A dry run reports what would happen and changes nothing.
//!
//! Owns the request and response, the walk over candidate objects and the per-object
//! archive decision; each object's records go through [`Ingestor::process`] like a batch. It
//! must not read another bucket than the function's own, or archive an object before all of
//! its records are stored.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::dlq::{self, Contents};
use crate::event::KafkaRecord;
use crate::ingest::{IngestError, Ingestor, Invocation, Mode, Processed};
use crate::metrics::{Metric, RecordCount};

/// The replay function's payload (README "The functions"). Every field is optional (`{}`
/// replays the dead-letter prefix); an unknown field is an error, so that a misspelt filter
/// never replays more than was asked.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Must be the function's own dead-letter bucket (`DLQ_BUCKET`) when given: a replay
    /// reads no other bucket, so that its role and its writes stay within the stack's own.
    pub bucket: Option<String>,
    /// Default: the dead-letter prefix. Use `aws/lambda/<ESM id>/` for on-failure records,
    /// the quarantine prefix for records past the attempts cap.
    pub prefix: Option<String>,
    /// Replay exactly these keys (in key order) instead of listing a prefix.
    pub keys: Option<Vec<String>>,
    /// Only listed objects last modified at or after this RFC 3339 time (whole seconds count;
    /// `keys` are not filtered).
    pub since: Option<String>,
    /// Only listed objects last modified before this RFC 3339 time.
    pub until: Option<String>,
    /// At most this many objects per call (default 100; 0 is an error).
    pub max_objects: Option<usize>,
    /// Report what would happen (records through transform and plan) without loading,
    /// writing, archiving or emitting metrics.
    #[serde(default)]
    pub dry_run: bool,
    /// Resume after this key: the `next_key` of a previous response.
    pub next_key: Option<String>,
}

/// A replay request that could not be read, said without its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid replay request: {path}: {message}")]
pub struct ReplayRequestError {
    /// JSON path of the offending field, or `(request)`.
    pub path: String,
    /// serde's message with the input left out ([`crate::redact::parser_message`]).
    pub message: String,
}

impl ReplayRequest {
    /// Read a request. The replay function takes its payload as raw JSON and calls this
    /// rather than letting `lambda_runtime` deserialize it: the runtime's error (logged and
    /// returned) would quote the offending value.
    pub fn parse(json: &[u8]) -> Result<ReplayRequest, ReplayRequestError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let request = serde_path_to_error::deserialize::<_, ReplayRequest>(&mut de).map_err(|err| {
            let message = crate::redact::parser_message(&err.inner().to_string());
            let path = err.path().to_string();
            // The path of an unknown field is that field's name: input, left out too.
            let unnamed = path.is_empty() || path == "." || message.starts_with("unknown field");
            ReplayRequestError { path: if unnamed { "(request)".into() } else { path }, message }
        })?;
        de.end().map_err(|e| ReplayRequestError {
            path: "(request)".into(),
            message: crate::redact::parser_message(&e.to_string()),
        })?;
        Ok(request)
    }
}

/// What became of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectOutcome {
    /// Every record stored (loaded, stale, superseded, skipped or dead-lettered again), and
    /// the object moved under the archive prefix.
    Archived,
    /// Left where it is: unreadable, its batch failed, or the archive copy failed.
    Failed,
    /// A dry run: every record would be stored and the object archived.
    WouldArchive,
}

impl ObjectOutcome {
    /// `ReplayObjects<Outcome>`: objects that ended so. A dry run's `would_archive` has no
    /// metric: a preview counts nothing that alarms watch.
    fn metric(self, objects: usize) -> Option<Metric> {
        match self {
            ObjectOutcome::Archived => Some(Metric::count("ReplayObjectsArchived", objects)),
            ObjectOutcome::Failed => Some(Metric::count("ReplayObjectsFailed", objects)),
            ObjectOutcome::WouldArchive => None,
        }
    }
}

/// One object of a replay response.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ObjectReport {
    /// The object's S3 key in the dead-letter bucket (its original key, not the archive's).
    pub key: String,
    /// `archived`, `failed`, or in a dry run `would_archive`.
    pub outcome: ObjectOutcome,
    /// Records read from it (0 when it could not be read).
    pub records: usize,
    /// The key it was archived under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_to: Option<String>,
    /// The new dead-letter objects its failing records went to (dead-letter or quarantine
    /// prefix).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dead_letter_objects: Vec<String>,
    /// Why the object failed: error codes and names, never content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The replay function's response: totals over the objects, then each object. Record counts
/// mean what ingest's do ([`Processed`]).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplayResponse {
    /// The request's `dry_run`.
    pub dry_run: bool,
    /// Objects taken up (read and processed, whatever their outcome).
    pub objects_scanned: usize,
    /// Objects moved under the archive prefix.
    pub objects_archived: usize,
    /// Objects left in place ([`ObjectOutcome::Failed`]).
    pub objects_failed: usize,
    /// Rows written over all objects.
    pub records_loaded: usize,
    /// Records the target already held (an equal or newer change).
    pub records_stale: usize,
    /// Records replaced by a later change of their key in the same object.
    pub records_superseded: usize,
    /// Records skipped for a stated reason.
    pub records_skipped: usize,
    /// Dead-lettered again (in a dry run: would be rejected by the transform). Ingest calls
    /// this count `dead_lettered`, and both functions' metric `RecordsDeadLettered`; the field
    /// keeps its name for existing callers.
    pub records_rejected: usize,
    /// Of `records_rejected`: past the attempts cap (`REPLAY_MAX_ATTEMPTS`), so written under
    /// the quarantine prefix, where only a replay that names it reaches them.
    pub records_quarantined: usize,
    /// Every object taken up, in key order.
    pub objects: Vec<ObjectReport>,
    /// Set when the replay stopped before the end (deadline or `max_objects`): resume with
    /// `{"next_key": …}`.
    pub next_key: Option<String>,
}

impl ReplayResponse {
    /// Add `call`'s counts and objects to these (`cdc replay --all`); `next_key` becomes
    /// `call`'s.
    pub fn absorb(&mut self, call: ReplayResponse) {
        self.objects_scanned += call.objects_scanned;
        self.objects_archived += call.objects_archived;
        self.objects_failed += call.objects_failed;
        self.records_loaded += call.records_loaded;
        self.records_stale += call.records_stale;
        self.records_superseded += call.records_superseded;
        self.records_skipped += call.records_skipped;
        self.records_rejected += call.records_rejected;
        self.records_quarantined += call.records_quarantined;
        self.objects.extend(call.objects);
        self.next_key = call.next_key;
    }
}

/// Why a replay call failed as a whole (a single object's failure is reported in its
/// [`ObjectReport`] instead).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The request asks for something the replay refuses: another bucket, `since`/`until`
    /// that are not RFC 3339, `max_objects` 0. The text names the field, not its value.
    #[error("invalid replay request: {0}")]
    Request(String),
    /// Listing the prefix failed (S3 error code and key only).
    #[error("listing dead-letter objects failed: {0}")]
    List(#[from] dlq::StoreError),
    /// [`Ingestor::replay_all`]: a call took up no object and would resume where it started
    /// (its invocation leaves too little time for one object: the deadline margin plus 5 s).
    #[error("the replay made no progress (resume key {}): give each call more time (CDC_TIMEOUT_SECONDS)", .next_key.as_deref().unwrap_or("none"))]
    Stalled {
        /// Where the call would resume.
        next_key: Option<String>,
    },
}

impl ReplayError {
    /// The Lambda `errorType` of the function's error response: `InvalidRequest` or `List`
    /// (`Stalled` only comes from `cdc replay --all`).
    pub fn error_type(&self) -> &'static str {
        match self {
            ReplayError::Request(_) => "InvalidRequest",
            ReplayError::List(_) => "List",
            ReplayError::Stalled { .. } => "Stalled",
        }
    }
}

const DEFAULT_MAX_OBJECTS: usize = 100;

/// The objects a replay works through, in key order: given keys, or the store's listing
/// ([`dlq::Listing`]), read one page at a time as the replay reaches it.
enum Candidates {
    Keys(std::collections::VecDeque<String>),
    Listing(dlq::Listing),
}

impl Candidates {
    async fn next(&mut self, store: &dlq::Store) -> Result<Option<(String, Option<i64>)>, ReplayError> {
        match self {
            Candidates::Keys(keys) => Ok(keys.pop_front().map(|k| (k, None))),
            Candidates::Listing(listing) => Ok(listing.next(store).await?.map(|(key, modified)| (key, Some(modified)))),
        }
    }
}

/// Do not start an object with less time than this before the deadline margin.
const MIN_TIME_PER_OBJECT: Duration = Duration::from_secs(5);

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<i64>, ReplayError> {
    value
        .as_deref()
        .map(|text| {
            crate::temporal::parse_timestamp(text)
                .map(|micros| micros.div_euclid(1_000_000))
                .ok_or_else(|| ReplayError::Request(format!("`{field}` is not an RFC 3339 time")))
        })
        .transpose()
}

impl Ingestor {
    /// Replay the objects `request` names, in key order, until they are done, `max_objects`
    /// were taken up, or too little time is left (the deadline margin plus 5 s per object):
    /// then `next_key` says where to resume. Each object is read, its records processed as a
    /// batch (each with its previous `attempts`), and archived once they are all stored. One
    /// summary log line and, unless a dry run, one metrics line.
    ///
    /// Errors: [`ReplayError::Request`] for a request it refuses, before any object is read;
    /// [`ReplayError::List`] when a listing page cannot be read (objects already done stay
    /// done).
    pub async fn replay(
        &self,
        request: &ReplayRequest,
        invocation: &Invocation,
    ) -> Result<ReplayResponse, ReplayError> {
        self.replay_call(request, invocation, &mut HashSet::new()).await
    }

    /// `cdc replay --all`: [`Ingestor::replay`] call after call, each resuming at the previous
    /// call's `next_key`, until one ends without one. `invocation` gives each call its own
    /// invocation (a fresh deadline); `progress` sees each call's number (from 1) and
    /// response as it ends. An object a call wrote (records that failed again) is not taken
    /// up by a later call either: one `--all` takes a record up once, as one call does.
    /// Returns the totals over every call and every object; `next_key` is null.
    ///
    /// Errors: those of [`Ingestor::replay`] (calls already made stay made);
    /// [`ReplayError::Stalled`] when a call took up no object and would resume where it
    /// started (too little time for one object).
    pub async fn replay_all(
        &self,
        request: &ReplayRequest,
        mut invocation: impl FnMut() -> Invocation,
        mut progress: impl FnMut(usize, &ReplayResponse),
    ) -> Result<ReplayResponse, ReplayError> {
        let mut request = request.clone();
        let mut written = HashSet::new();
        let mut total = ReplayResponse { dry_run: request.dry_run, ..ReplayResponse::default() };
        for call in 1.. {
            let response = self.replay_call(&request, &invocation(), &mut written).await?;
            progress(call, &response);
            let next_key = response.next_key.clone();
            if next_key.is_some() && response.objects_scanned == 0 && next_key == request.next_key {
                return Err(ReplayError::Stalled { next_key });
            }
            total.absorb(response);
            match next_key {
                Some(key) => {
                    // Given keys are taken up after `next_key`; a listing resumes there.
                    request.next_key = Some(key);
                }
                None => break,
            }
        }
        Ok(total)
    }

    async fn replay_call(
        &self,
        request: &ReplayRequest,
        invocation: &Invocation,
        written: &mut HashSet<String>,
    ) -> Result<ReplayResponse, ReplayError> {
        let span = tracing::info_span!("replay", request_id = %invocation.request_id);
        let _entered = span.enter();
        if request.bucket.as_ref().is_some_and(|b| *b != self.store.bucket) {
            return Err(ReplayError::Request(
                "`bucket` must be the function's own dead-letter bucket (DLQ_BUCKET), or left out".into(),
            ));
        }
        let bucket = self.store.bucket.clone();
        let since = parse_time("since", &request.since)?;
        let until = parse_time("until", &request.until)?;
        let max_objects = request.max_objects.unwrap_or(DEFAULT_MAX_OBJECTS);
        if max_objects == 0 {
            return Err(ReplayError::Request("`max_objects` must be at least 1".into()));
        }
        let mut candidates = match &request.keys {
            Some(keys) => {
                let mut keys = keys.clone();
                keys.sort();
                keys.dedup();
                keys.retain(|k| request.next_key.as_ref().is_none_or(|after| k > after));
                Candidates::Keys(keys.into_iter().collect())
            }
            None => {
                // One more key than the objects a call may take, so that it knows whether more
                // wait.
                let page_size = i32::try_from(max_objects.saturating_add(1)).unwrap_or(i32::MAX);
                Candidates::Listing(self.store.listing(request.prefix.as_deref(), request.next_key.clone(), page_size))
            }
        };
        let mut response = ReplayResponse { dry_run: request.dry_run, ..ReplayResponse::default() };
        let mut last_done: Option<String> = None;
        // Objects this call wrote (records that failed again) wait for the next replay: the
        // listing, read page by page, may reach them, and one call takes a record up once
        // (`written` also holds those of the earlier calls of a `replay_all`).
        while let Some((key, modified)) = candidates.next(&self.store).await? {
            if written.contains(&key) {
                continue;
            }
            let out_of_time = Instant::now() + self.deadline_margin + MIN_TIME_PER_OBJECT > invocation.deadline;
            let filtered = modified.is_some_and(|m| since.is_some_and(|s| m < s) || until.is_some_and(|u| m >= u));
            if filtered && !out_of_time {
                last_done = Some(key);
                continue;
            }
            if response.objects_scanned == max_objects || out_of_time {
                response.next_key = last_done;
                if response.next_key.is_none() {
                    // Nothing done yet: resume before the first candidate.
                    response.next_key = request.next_key.clone();
                }
                tracing::info!(
                    objects = response.objects_scanned,
                    out_of_time,
                    "replay stopped early; resume with next_key"
                );
                return Ok(self.finish(response));
            }
            response.objects_scanned += 1;
            let batch =
                Invocation { batch_tag: Some(format!("{:04}", response.objects_scanned)), ..invocation.clone() };
            let report = self.replay_object(&bucket, &key, request.dry_run, &batch, &mut response).await;
            match report.outcome {
                ObjectOutcome::Archived => response.objects_archived += 1,
                ObjectOutcome::Failed => {
                    response.objects_failed += 1;
                    // The object stays where it is; its error names codes, coordinates and
                    // field names, never content.
                    tracing::warn!(key = %report.key, error = report.error.as_deref().unwrap_or(""), "replay object failed");
                }
                ObjectOutcome::WouldArchive => {}
            }
            written.extend(report.dead_letter_objects.iter().cloned());
            response.objects.push(report);
            last_done = Some(key);
        }
        Ok(self.finish(response))
    }

    fn finish(&self, response: ReplayResponse) -> ReplayResponse {
        tracing::info!(
            dry_run = response.dry_run,
            objects_scanned = response.objects_scanned,
            objects_archived = response.objects_archived,
            objects_failed = response.objects_failed,
            records_loaded = response.records_loaded,
            records_stale = response.records_stale,
            records_rejected = response.records_rejected,
            records_quarantined = response.records_quarantined,
            more = response.next_key.is_some(),
            "replay finished"
        );
        if response.dry_run {
            // A preview changes nothing, so it counts nothing that alarms watch.
            return response;
        }
        let mut metrics = vec![Metric::count("ReplayObjectsScanned", response.objects_scanned)];
        metrics.extend(ObjectOutcome::Archived.metric(response.objects_archived));
        metrics.extend(ObjectOutcome::Failed.metric(response.objects_failed));
        metrics.extend([
            RecordCount::Loaded.metric(response.records_loaded),
            RecordCount::DeadLettered.metric(response.records_rejected),
            RecordCount::Quarantined.metric(response.records_quarantined),
        ]);
        self.emit_metrics(&metrics);
        response
    }

    async fn replay_object(
        &self,
        bucket: &str,
        key: &str,
        dry_run: bool,
        invocation: &Invocation,
        response: &mut ReplayResponse,
    ) -> ObjectReport {
        let mut report = ObjectReport {
            key: key.to_string(),
            outcome: ObjectOutcome::Failed,
            records: 0,
            archived_to: None,
            dead_letter_objects: Vec::new(),
            error: None,
        };
        let body = match self.store.get(bucket, key).await {
            Ok(body) => body,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let processed = match dlq::read(&body) {
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
            Ok(Contents::DeadLetters(lines)) => {
                let records: Vec<KafkaRecord<'_>> = lines.iter().map(|l| l.to_record()).collect();
                let attempts: HashMap<(&str, i64, i64), u32> =
                    lines.iter().map(|l| ((l.topic.as_ref(), l.partition, l.offset), l.attempts)).collect();
                report.records = records.len();
                self.process(
                    records.iter().collect(),
                    &attempts,
                    invocation,
                    if dry_run { Mode::DryRun } else { Mode::Apply },
                )
                .await
            }
            Ok(Contents::OnFailure { event_json, .. }) => match dlq::on_failure_event(&event_json) {
                Err(e) => {
                    report.error = Some(format!("on-failure record payload: {e}"));
                    return report;
                }
                Ok(event) => {
                    let records = event.records_in_order();
                    report.records = records.len();
                    self.process(records, &HashMap::new(), invocation, if dry_run { Mode::DryRun } else { Mode::Apply })
                        .await
                }
            },
        };
        let processed: Processed = match processed {
            Ok(p) => p,
            Err(
                e @ (IngestError::Load(_)
                | IngestError::DeadLetter(_)
                | IngestError::NoTime { .. }
                | IngestError::SchemaRegistry(_)
                | IngestError::Event(_)),
            ) => {
                // A missing target or metadata column fails the object as it fails an ingest
                // batch: it stays where it is, for a replay after the DDL. The loader logged
                // the table; the metric is ingest's.
                if let Some(target) = e.target_not_ready().filter(|_| !dry_run) {
                    self.emit_metrics(&[target.metric()]);
                }
                report.error = Some(e.to_string());
                return report;
            }
        };
        response.records_loaded += processed.loaded;
        response.records_stale += processed.stale;
        response.records_superseded += processed.superseded;
        response.records_skipped += processed.skipped_total();
        response.records_rejected += processed.dead_lettered_total();
        response.records_quarantined += processed.quarantined;
        if !dry_run {
            self.emit_detections(&processed);
        }
        report.dead_letter_objects = processed.dead_letter_objects;
        if dry_run {
            report.outcome = ObjectOutcome::WouldArchive;
            return report;
        }
        match self.store.archive(bucket, key).await {
            Ok(target) => {
                report.outcome = ObjectOutcome::Archived;
                report.archived_to = Some(target);
            }
            // The records are stored (loaded or dead-lettered again); the object stays and a
            // later replay finds its records stale.
            Err(e) => report.error = Some(e.to_string()),
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_strict() {
        let request: ReplayRequest =
            serde_json::from_str(r#"{"prefix":"dead-letter/validate/","dry_run":true,"max_objects":5}"#).unwrap();
        assert!(request.dry_run);
        assert_eq!(request.max_objects, Some(5));
        assert!(serde_json::from_str::<ReplayRequest>(r#"{"prefx":"x"}"#).is_err());
        assert_eq!(
            ReplayRequest::parse(br#"{"dry_run":true} "#).unwrap(),
            ReplayRequest { dry_run: true, ..ReplayRequest::default() }
        );
        let error = ReplayRequest::parse(br#"{"keys":["a"],"dry_run":"Bartholomew 123-45-6789"}"#).unwrap_err();
        assert_eq!(error.path, "dry_run");
        assert!(error.message.starts_with("invalid type: string, expected a boolean"), "{error}");
        assert!(!error.to_string().contains("123-45-6789"), "{error}");
        let error = ReplayRequest::parse(br#"{"Bartholomew":1}"#).unwrap_err().to_string();
        assert!(error.contains("(request): unknown field"), "{error}");
        assert!(!error.contains("Bartholomew"), "{error}");
        assert_eq!(ReplayRequest::parse(b"{} x").unwrap_err().path, "(request)");
        assert!(parse_time("since", &Some("yesterday".into())).is_err());
        assert_eq!(parse_time("since", &Some("2026-11-24T00:00:00Z".into())).unwrap(), Some(1_795_478_400));
    }
}
