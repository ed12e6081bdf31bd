//! In-memory statement records, their status lifecycle, statement ids and the ClientToken map.
//!
//! A single statement is a record with one part; a batch has one part per SQL (its
//! sub-statements). The store is bounded: beyond [`MAX_RECORDS`] the oldest finished records
//! are evicted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio_postgres::CancelToken;

use crate::wire::{ColumnMetadata, Epoch, Field};

/// Records kept before the oldest finished ones are evicted.
pub const MAX_RECORDS: usize = 50_000;
/// How long a ClientToken maps to its statement (AWS: 8 hours).
pub const CLIENT_TOKEN_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Tokens kept at most: the Rust SDK sends a fresh token with every call, so bound the map
/// even within the 8 hours.
pub const MAX_TOKENS: usize = 2 * MAX_RECORDS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Submitted,
    Picked,
    Started,
    Finished,
    Failed,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "SUBMITTED",
            Status::Picked => "PICKED",
            Status::Started => "STARTED",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Aborted => "ABORTED",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Submitted, Status::Picked, Status::Started, Status::Finished, Status::Failed, Status::Aborted]
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    pub fn is_done(self) -> bool {
        matches!(self, Status::Finished | Status::Failed | Status::Aborted)
    }
}

/// The rows of a statement with a result set.
#[derive(Debug, Default)]
pub struct ResultSet {
    pub columns: Vec<ColumnMetadata>,
    pub records: Vec<Vec<Field>>,
    /// Bytes of the text form of all values (`ResultSize`).
    pub size: i64,
}

/// The database, cluster or workgroup and identity a statement runs against, as requested.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub database: String,
    pub cluster_identifier: Option<String>,
    pub workgroup_name: Option<String>,
    pub secret_arn: Option<String>,
    pub db_user: Option<String>,
}

/// One SQL statement of a record.
#[derive(Debug)]
pub struct Part {
    pub sql: String,
    pub status: Status,
    pub error: Option<String>,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    started: Option<Instant>,
    /// Nanoseconds; -1 until done.
    pub duration: i64,
    /// Rows returned or affected; -1 until known.
    pub result_rows: i64,
    pub result_size: i64,
    pub has_result_set: bool,
    pub query_id: i64,
    pub result: Option<Arc<ResultSet>>,
}

impl Part {
    fn new(sql: String, now: Epoch) -> Self {
        Part {
            sql,
            status: Status::Submitted,
            error: None,
            created_at: now,
            updated_at: now,
            started: None,
            duration: -1,
            result_rows: -1,
            result_size: -1,
            has_result_set: false,
            query_id: -1,
            result: None,
        }
    }

    fn end(&mut self, status: Status, error: Option<String>) {
        self.status = status;
        self.error = error;
        self.updated_at = Epoch::now();
        self.duration = self.started.map_or(0, elapsed_nanos);
    }
}

/// What a finished part produced.
#[derive(Debug)]
pub struct Outcome {
    pub rows: i64,
    pub result: Option<ResultSet>,
}

/// Cancellation handshake between CancelStatement and the runner. Both sides act under the
/// store lock, so a cancel either reaches the running query or is seen before the next one.
#[derive(Default)]
pub struct Cancel {
    pub requested: bool,
    /// Set while a PostgreSQL query of this record runs.
    pub token: Option<CancelToken>,
    /// Wakes a runner that sleeps (latency) or waits for a connection.
    pub wake: Arc<Notify>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel").field("requested", &self.requested).field("running", &self.token.is_some()).finish()
    }
}

#[derive(Debug)]
pub struct Record {
    pub id: String,
    pub is_batch: bool,
    pub target: Target,
    pub statement_name: Option<String>,
    pub status: Status,
    pub error: Option<String>,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    started: Option<Instant>,
    pub duration: i64,
    pub redshift_pid: i64,
    pub parts: Vec<Part>,
    pub cancel: Cancel,
    /// Bumped whenever a part or the record ends, for calls with `WaitTimeSeconds`.
    pub progress: watch::Sender<u64>,
}

impl Record {
    fn bump(&self) {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn result_rows(&self) -> i64 {
        if !self.status.is_done() {
            return -1;
        }
        self.parts.iter().map(|p| p.result_rows.max(0)).sum()
    }

    pub fn result_size(&self) -> i64 {
        if !self.status.is_done() {
            return -1;
        }
        self.parts.iter().map(|p| p.result_size.max(0)).sum()
    }

    pub fn has_result_set(&self) -> bool {
        self.parts.iter().any(|p| p.has_result_set)
    }

    /// A batch parent reports 0 (as AWS does); a single statement its own query id.
    pub fn query_id(&self) -> i64 {
        if self.is_batch { 0 } else { self.parts[0].query_id.max(0) }
    }
}

/// The ClientToken of a request: the token and a fingerprint of the rest of the request.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub token: String,
    pub fingerprint: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenLookup {
    New,
    Seen(String),
    Mismatch,
}

#[derive(Debug, Default)]
pub struct Store {
    records: HashMap<String, Record>,
    /// Creation order (seq → id) for ListStatements and eviction.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    next_query_id: i64,
    active: usize,
    tokens: HashMap<String, (String, u64, Instant)>,
    token_order: VecDeque<(Instant, String)>,
}

fn elapsed_nanos(start: Instant) -> i64 {
    i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

impl Store {
    pub fn new() -> Self {
        Store { next_query_id: 100_000, ..Store::default() }
    }

    /// Statements SUBMITTED, PICKED or STARTED.
    pub fn active(&self) -> usize {
        self.active
    }

    pub fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Record> {
        self.records.get_mut(id)
    }

    pub fn lookup_token(&mut self, idempotency: &Idempotency) -> TokenLookup {
        self.expire_tokens();
        match self.tokens.get(&idempotency.token) {
            None => TokenLookup::New,
            Some((id, fingerprint, _)) if *fingerprint == idempotency.fingerprint => TokenLookup::Seen(id.clone()),
            Some(_) => TokenLookup::Mismatch,
        }
    }

    fn expire_tokens(&mut self) {
        while let Some((at, token)) = self.token_order.front() {
            if at.elapsed() < CLIENT_TOKEN_TTL {
                break;
            }
            if self.tokens.get(token).is_some_and(|(_, _, stored)| stored == at) {
                self.tokens.remove(token);
            }
            self.token_order.pop_front();
        }
    }

    /// Creates a SUBMITTED record with a new lowercase uuid v4 id and returns the id.
    pub fn insert(
        &mut self,
        target: Target,
        sqls: Vec<String>,
        is_batch: bool,
        statement_name: Option<String>,
        idempotency: Option<Idempotency>,
    ) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let now = Epoch::now();
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = Record {
            id: id.clone(),
            is_batch,
            target,
            statement_name,
            status: Status::Submitted,
            error: None,
            created_at: now,
            updated_at: now,
            started: None,
            duration: -1,
            redshift_pid: 0,
            parts: sqls.into_iter().map(|sql| Part::new(sql, now)).collect(),
            cancel: Cancel::default(),
            progress: watch::Sender::new(0),
        };
        self.records.insert(id.clone(), record);
        self.order.insert(seq, id.clone());
        self.active += 1;
        if let Some(Idempotency { token, fingerprint }) = idempotency {
            let at = Instant::now();
            self.tokens.insert(token.clone(), (id.clone(), fingerprint, at));
            self.token_order.push_back((at, token));
            while self.tokens.len() > MAX_TOKENS {
                let Some((at, token)) = self.token_order.pop_front() else { break };
                if self.tokens.get(&token).is_some_and(|(_, _, stored)| *stored == at) {
                    self.tokens.remove(&token);
                }
            }
        }
        self.evict();
        id
    }

    fn evict(&mut self) {
        if self.records.len() <= MAX_RECORDS {
            return;
        }
        let excess = self.records.len() - MAX_RECORDS;
        let victims: Vec<u64> = self
            .order
            .iter()
            .filter(|(_, id)| self.records.get(*id).is_some_and(|r| r.status.is_done()))
            .take(excess)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in victims {
            if let Some(id) = self.order.remove(&seq) {
                self.records.remove(&id);
            }
        }
    }

    /// Records newest first, starting below `before` (a seq from a NextToken).
    pub fn newest_first(&self, before: Option<u64>) -> impl Iterator<Item = (u64, &Record)> {
        self.order
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .filter_map(|(seq, id)| self.records.get(id).map(|r| (*seq, r)))
    }

    /// SUBMITTED → PICKED: chosen to run, waiting for a slot and a connection. Returns false if a
    /// cancel came first (the record is then ABORTED).
    pub fn pick(&mut self, id: &str) -> bool {
        let Some(record) = self.records.get_mut(id) else { return false };
        if record.cancel.requested {
            self.abort_from(id, 0);
            return false;
        }
        record.status = Status::Picked;
        record.updated_at = Epoch::now();
        true
    }

    /// Marks part `index` (and the record) STARTED on a connection of backend `pid`, unless a
    /// cancel was requested; `token` lets CancelStatement interrupt it.
    pub fn start_part(&mut self, id: &str, index: usize, pid: i32, token: CancelToken) -> bool {
        let query_id = self.next_query_id;
        let Some(record) = self.records.get_mut(id) else { return false };
        if record.cancel.requested {
            return false;
        }
        self.next_query_id += 1;
        record.cancel.token = Some(token);
        record.redshift_pid = i64::from(pid);
        let now = Epoch::now();
        record.updated_at = now;
        record.status = Status::Started;
        record.started.get_or_insert_with(Instant::now);
        if let Some(part) = record.parts.get_mut(index) {
            part.status = Status::Started;
            part.started = Some(Instant::now());
            part.updated_at = now;
            part.query_id = query_id;
        }
        true
    }

    /// Part `index` succeeded. For a single statement this also finishes the record.
    pub fn finish_part(&mut self, id: &str, index: usize, outcome: Outcome) {
        let Some(record) = self.records.get_mut(id) else { return };
        if let Some(part) = record.parts.get_mut(index) {
            part.end(Status::Finished, None);
            part.result_rows = outcome.rows;
            part.has_result_set = outcome.result.is_some();
            part.result_size = outcome.result.as_ref().map_or(0, |r| r.size);
            part.result = outcome.result.map(Arc::new);
        }
        record.bump();
        if !record.is_batch {
            self.end_record(id, Status::Finished, None);
        }
    }

    /// Part `index` failed with `error`: later parts are ABORTED and the record FAILED.
    pub fn fail_from(&mut self, id: &str, index: usize, error: String) {
        let Some(record) = self.records.get_mut(id) else { return };
        for (i, part) in record.parts.iter_mut().enumerate().skip(index) {
            if i == index {
                part.end(Status::Failed, Some(error.clone()));
            } else {
                part.end(Status::Aborted, None);
            }
        }
        record.bump();
        self.end_record(id, Status::Failed, Some(error));
    }

    /// A cancel stopped the record before part `index` finished.
    pub fn abort_from(&mut self, id: &str, index: usize) {
        let Some(record) = self.records.get_mut(id) else { return };
        let query_id = record.parts.iter().map(|p| p.query_id).max().unwrap_or(0).max(0);
        let message = crate::errors::cancelled_text(query_id);
        for part in record.parts.iter_mut().skip(index) {
            part.end(Status::Aborted, None);
        }
        if !record.is_batch {
            record.parts[0].error = Some(message.clone());
        }
        record.bump();
        self.end_record(id, Status::Aborted, Some(message));
    }

    /// Ends the record (a batch once all parts ran). Also hands back the cancel token so the
    /// caller knows no cancel can reach the connection any more.
    pub fn end_record(&mut self, id: &str, status: Status, error: Option<String>) {
        let Some(record) = self.records.get_mut(id) else { return };
        if record.status.is_done() {
            return;
        }
        record.status = status;
        record.error = error;
        record.updated_at = Epoch::now();
        record.duration = record.started.map_or(0, elapsed_nanos);
        record.cancel.token = None;
        record.bump();
        self.active = self.active.saturating_sub(1);
    }

    /// `RedshiftQueryId` of part `index` (0 before it started).
    pub fn query_id(&self, id: &str, index: usize) -> i64 {
        self.records.get(id).and_then(|r| r.parts.get(index)).map_or(0, |p| p.query_id.max(0))
    }

    /// True if CancelStatement was called for the record.
    pub fn cancel_requested(&self, id: &str) -> bool {
        self.records.get(id).is_some_and(|r| r.cancel.requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target { database: "dev".into(), ..Target::default() }
    }

    #[test]
    fn ids_are_lowercase_uuid_v4_and_listing_is_newest_first() {
        let mut store = Store::new();
        let first = store.insert(target(), vec!["select 1".into()], false, None, None);
        let second = store.insert(target(), vec!["select 2".into()], false, None, None);
        let parsed = uuid::Uuid::parse_str(&first).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(first, first.to_lowercase());
        let ids: Vec<_> = store.newest_first(None).map(|(_, r)| r.id.clone()).collect();
        assert_eq!(ids, vec![second, first]);
        assert_eq!(store.active(), 2);
    }

    #[test]
    fn batch_failure_marks_earlier_finished_failing_failed_and_later_aborted() {
        let mut store = Store::new();
        let sqls = vec!["a".into(), "b".into(), "c".into()];
        let id = store.insert(target(), sqls, true, None, None);
        assert!(store.pick(&id));
        store.finish_part(&id, 0, Outcome { rows: 2, result: None });
        store.fail_from(&id, 1, "ERROR: boom (SQLSTATE XX000)".into());
        let record = store.get(&id).unwrap();
        let statuses: Vec<_> = record.parts.iter().map(|p| p.status).collect();
        assert_eq!(statuses, [Status::Finished, Status::Failed, Status::Aborted]);
        assert_eq!(record.status, Status::Failed);
        assert_eq!(record.error.as_deref(), Some("ERROR: boom (SQLSTATE XX000)"));
        assert_eq!(record.parts[1].error, record.error);
        assert_eq!(record.parts[2].error, None);
        assert_eq!(record.result_rows(), 2);
        assert!(record.duration >= 0);
        assert_eq!(store.active(), 0);
    }

    #[test]
    fn client_tokens_map_to_the_first_id_and_detect_a_different_request() {
        let mut store = Store::new();
        let token = Idempotency { token: "t1".into(), fingerprint: 7 };
        assert_eq!(store.lookup_token(&token), TokenLookup::New);
        let id = store.insert(target(), vec!["x".into()], false, None, Some(token.clone()));
        assert_eq!(store.lookup_token(&token), TokenLookup::Seen(id));
        let other = Idempotency { fingerprint: 8, ..token };
        assert_eq!(store.lookup_token(&other), TokenLookup::Mismatch);
    }

    #[test]
    fn eviction_drops_the_oldest_finished_records_only() {
        let mut store = Store::new();
        let active = store.insert(target(), vec!["x".into()], false, None, None);
        for _ in 0..MAX_RECORDS + 5 {
            let id = store.insert(target(), vec!["x".into()], false, None, None);
            store.end_record(&id, Status::Finished, None);
        }
        assert_eq!(store.records.len(), MAX_RECORDS);
        assert!(store.get(&active).is_some());
        assert_eq!(store.active(), 1);
    }

    #[test]
    fn cancel_before_start_aborts() {
        let mut store = Store::new();
        let id = store.insert(target(), vec!["x".into()], false, None, None);
        store.get_mut(&id).unwrap().cancel.requested = true;
        assert!(!store.pick(&id));
        let record = store.get(&id).unwrap();
        assert_eq!(record.status, Status::Aborted);
        assert!(record.error.as_deref().unwrap().contains("cancelled"));
    }
}
