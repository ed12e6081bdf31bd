//! The Redshift Data API as this pipeline uses it: submit a transaction, poll it to its end,
//! retry what [`is_retriable`] allows, never past the caller's deadline.
//!
//! The SDK's own retries are meant to be off (build the client with
//! `RetryConfig::disabled()`): its standard mode knows nothing of our deadline, does not
//! retry `ActiveStatementsExceededException`, and cannot retry a statement that failed on a
//! serialization conflict. Every retry decision lives here instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_redshiftdata::types::StatusString;
use rand::Rng;
use tokio::time::Instant;

use super::error::{DataApiError, DbErrorClass, is_retriable};
use super::target::{TargetColumn, TargetTable};
use crate::config::TableName;

/// How to reach the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Redshift Serverless (`redshift-serverless:GetCredentials`), optionally with a secret.
    Workgroup { name: String, secret_arn: Option<String> },
    /// A provisioned cluster as a database user (`GetClusterCredentials`), with a Secrets
    /// Manager secret, or (neither) as the IAM identity (`GetClusterCredentialsWithIAM`).
    Cluster { id: String, db_user: Option<String>, secret_arn: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub auth: Auth,
    pub database: String,
}

/// Exponential backoff: `initial` for wait 0 (the first retry or poll), times `factor` for
/// each one after, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Backoff {
    pub fn delay(&self, wait: u32) -> Duration {
        let grown = self.initial.as_secs_f64() * self.factor.powi(wait.min(30) as i32);
        Duration::from_secs_f64(grown.min(self.max.as_secs_f64()))
    }

    /// "Full jitter": uniform between zero and the exponential delay, so that concurrent
    /// loaders that conflicted do not retry in lockstep.
    pub fn jittered(&self, wait: u32) -> Duration {
        let cap = self.delay(wait);
        cap.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// Polling starts at 20 ms: most micro-batches finish within a few hundred milliseconds.
pub const POLL: Backoff = Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(500), factor: 1.6 };
/// Retries of throttling, capacity and conflict errors.
pub const RETRY: Backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(5), factor: 2.0 };
/// At most this many attempts per transaction; the deadline usually comes first.
pub const MAX_ATTEMPTS: u32 = 10;
/// `WaitTimeSeconds` of `BatchExecuteStatement` and `DescribeStatement`: the call returns when
/// the statement ends or this much later (the Data API allows up to 30 s; "The number of seconds
/// to wait for all SQL statements in the batch to complete execution before returning the
/// response", Data API reference). It must stay below the client's per-attempt timeout
/// (15 s in `wiring`), and it never runs past the caller's deadline.
pub const LONG_POLL: Duration = Duration::from_secs(10);

/// A committed transaction: its statement id and the row count of every statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub statement_id: String,
    pub rows: Vec<i64>,
}

/// The client, the target and the backoff schedules; built once per cold start.
#[derive(Debug)]
pub struct DataApi {
    client: Client,
    target: Target,
    calls: AtomicU64,
    poll: Backoff,
    retry: Backoff,
    long_poll: Duration,
}

/// One unit of work (a load) against the Data API, counting its own calls so that
/// concurrent invocations sharing a [`DataApi`] report their own numbers.
#[derive(Debug)]
pub struct Session<'a> {
    api: &'a DataApi,
    calls: AtomicU64,
    retries: AtomicU64,
}

/// Apply the target's database and auth fields to any request builder that has them.
macro_rules! with_target {
    ($builder:expr, $target:expr) => {{
        let target: &Target = $target;
        let builder = $builder.database(&target.database);
        match &target.auth {
            Auth::Workgroup { name, secret_arn } => builder.workgroup_name(name).set_secret_arn(secret_arn.clone()),
            Auth::Cluster { id, db_user, secret_arn } => {
                builder.cluster_identifier(id).set_db_user(db_user.clone()).set_secret_arn(secret_arn.clone())
            }
        }
    }};
}

fn api_error<E: ProvideErrorMetadata>(
    operation: &'static str,
    err: SdkError<E, aws_sdk_redshiftdata::config::http::HttpResponse>,
) -> DataApiError {
    match err {
        SdkError::ServiceError(service) => DataApiError::Api {
            operation,
            code: service.err().code().unwrap_or("Unknown").to_string(),
            status: Some(service.raw().status().as_u16()),
        },
        SdkError::TimeoutError(_) => DataApiError::Transport { operation, kind: "timeout" },
        SdkError::DispatchFailure(_) => DataApiError::Transport { operation, kind: "dispatch failure" },
        SdkError::ResponseError(_) => DataApiError::Transport { operation, kind: "unreadable response" },
        SdkError::ConstructionFailure(_) => {
            DataApiError::Api { operation, code: "ConstructionFailure".into(), status: None }
        }
        _ => DataApiError::Transport { operation, kind: "unknown" },
    }
}

impl DataApi {
    pub fn new(client: Client, target: Target) -> DataApi {
        DataApi { client, target, calls: AtomicU64::new(0), poll: POLL, retry: RETRY, long_poll: LONG_POLL }
    }

    /// Override [`LONG_POLL`] (tests whose client times out sooner use a shorter one).
    pub fn with_long_poll(mut self, long_poll: Duration) -> DataApi {
        self.long_poll = long_poll.min(Duration::from_secs(30));
        self
    }

    /// Override the backoff schedules (tests use short ones).
    pub fn with_backoff(mut self, poll: Backoff, retry: Backoff) -> DataApi {
        self.poll = poll;
        self.retry = retry;
        self
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Data API calls made so far by every session (every attempt counts).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn session(&self) -> Session<'_> {
        Session { api: self, calls: AtomicU64::new(0), retries: AtomicU64::new(0) }
    }
}

impl Session<'_> {
    /// Data API calls made in this session.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Calls and transactions this session repeated after a transient failure: resubmits,
    /// failed polls and retried transactions alike.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.api.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Sleep for `delay`, or fail if that would pass the deadline.
    async fn pause(
        &self,
        delay: Duration,
        deadline: Instant,
        during: &'static str,
        statement_id: Option<&str>,
    ) -> Result<(), DataApiError> {
        if Instant::now() + delay >= deadline {
            return Err(DataApiError::Deadline { during, statement_id: statement_id.map(str::to_string) });
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Run `sqls` as one transaction (`BatchExecuteStatement`) and wait for its end.
    /// Transient failures — throttling, capacity, lost responses, serialization conflicts —
    /// are retried with jittered backoff; the result is `Committed` or the first permanent
    /// error, or `Deadline` if time ran out (the statement is then cancelled, best-effort).
    pub async fn run_transaction(&self, sqls: &[String], deadline: Instant) -> Result<Committed, DataApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.submit(sqls, deadline).await {
                Ok(id) => self.wait(&id, deadline).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(committed) => return Ok(committed),
                Err(e) if is_retriable(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "retrying transaction");
                    self.count_retry();
                    self.pause(self.api.retry.jittered(attempt - 1), deadline, "retrying a transaction", None).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Submit, retrying errors that mean "not accepted yet" with the same client token, so
    /// that a submission whose response was lost is not run twice.
    async fn submit(&self, sqls: &[String], deadline: Instant) -> Result<String, DataApiError> {
        let token = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.count();
            let request = with_target!(self.api.client.batch_execute_statement(), &self.api.target)
                .set_sqls(Some(sqls.to_vec()))
                .client_token(&token)
                .statement_name("msk-redshift-cdc")
                .wait_time_seconds(self.wait_seconds(deadline));
            let sent = tokio::time::timeout_at(deadline, request.send()).await;
            let error = match sent {
                Err(_) => {
                    return Err(DataApiError::Deadline { during: "submitting a transaction", statement_id: None });
                }
                Ok(Ok(output)) => {
                    return output.id().map(str::to_string).ok_or(DataApiError::Api {
                        operation: "BatchExecuteStatement",
                        code: "MissingStatementId".into(),
                        status: None,
                    });
                }
                Ok(Err(e)) => api_error("BatchExecuteStatement", e),
            };
            if !is_retriable(&error) || attempt >= MAX_ATTEMPTS {
                return Err(error);
            }
            self.count_retry();
            self.pause(self.api.retry.jittered(attempt - 1), deadline, "submitting a transaction", None).await?;
        }
    }

    /// `WaitTimeSeconds` for a call made now: [`DataApi::with_long_poll`]'s, less what is left
    /// before `deadline` (whole seconds, one kept in hand).
    fn wait_seconds(&self, deadline: Instant) -> i32 {
        let left = deadline.saturating_duration_since(Instant::now()).saturating_sub(Duration::from_secs(1));
        i32::try_from(self.api.long_poll.min(left).as_secs()).unwrap_or(0)
    }

    /// Ask `DescribeStatement` (long-polling: `WaitTimeSeconds`) until the statement ends. The
    /// submission already waited, so the first call goes at once and usually finds it ended;
    /// the [`POLL`] schedule applies only when a call comes back early with the statement
    /// still running (a service that does not long-poll, or a wait of 0 s near the deadline).
    async fn wait(&self, id: &str, deadline: Instant) -> Result<Committed, DataApiError> {
        let mut early = 0;
        loop {
            let asked = Instant::now();
            self.count();
            let request = self.api.client.describe_statement().id(id).wait_time_seconds(self.wait_seconds(deadline));
            let sent = tokio::time::timeout_at(deadline, request.send()).await;
            let output = match sent {
                Err(_) => {
                    self.cancel(id).await;
                    return Err(DataApiError::Deadline {
                        during: "waiting for a statement",
                        statement_id: Some(id.into()),
                    });
                }
                // A failed poll does not fail the statement: keep polling if it may pass.
                Ok(Err(e)) => {
                    let error = api_error("DescribeStatement", e);
                    if !is_retriable(&error) {
                        return Err(error);
                    }
                    self.count_retry();
                    self.poll_pause(&mut early, deadline, id).await?;
                    continue;
                }
                Ok(Ok(output)) => output,
            };
            match output.status() {
                Some(StatusString::Finished) => {
                    let rows = if output.sub_statements().is_empty() {
                        vec![output.result_rows()]
                    } else {
                        output.sub_statements().iter().map(|s| s.result_rows()).collect()
                    };
                    return Ok(Committed { statement_id: id.to_string(), rows });
                }
                Some(StatusString::Submitted | StatusString::Picked | StatusString::Started) => {
                    // Came back before its wait was up: the service did not hold the call.
                    if asked.elapsed() < self.api.long_poll.min(Duration::from_secs(1)) {
                        self.poll_pause(&mut early, deadline, id).await?;
                    }
                    continue;
                }
                status => {
                    let status = match status {
                        Some(StatusString::Failed) => "FAILED",
                        Some(StatusString::Aborted) => "ABORTED",
                        _ => "UNKNOWN",
                    };
                    // The failing sub-statement tells which rows to suspect.
                    let failed = output
                        .sub_statements()
                        .iter()
                        .position(|s| s.error().is_some() || s.status().is_some_and(|st| st.as_str() == "FAILED"));
                    let message = failed
                        .and_then(|i| output.sub_statements()[i].error())
                        .or(output.error())
                        .unwrap_or(if status == "ABORTED" { "aborted" } else { "" });
                    let class =
                        if status == "ABORTED" { DbErrorClass::Aborted } else { DbErrorClass::classify(message) };
                    return Err(DataApiError::Statement {
                        statement_id: id.to_string(),
                        status,
                        sub_statement: failed,
                        class,
                    });
                }
            }
        }
    }

    /// The next pause of the [`POLL`] schedule before asking about statement `id` again; at
    /// the deadline the statement is cancelled and the wait fails.
    async fn poll_pause(&self, early: &mut u32, deadline: Instant, id: &str) -> Result<(), DataApiError> {
        if let Err(e) = self.pause(self.api.poll.delay(*early), deadline, "waiting for a statement", Some(id)).await {
            self.cancel(id).await;
            return Err(e);
        }
        *early += 1;
        Ok(())
    }

    /// Best effort: stop a statement we gave up on, so it does not commit later. (If it
    /// does, the position guard makes the retried batch a no-op for those rows.)
    async fn cancel(&self, id: &str) {
        self.count();
        let request = self.api.client.cancel_statement().id(id).send();
        let _ = tokio::time::timeout(Duration::from_secs(2), request).await;
    }

    /// The rows of sub-statement `sub_statement` (0-based) of a finished batch, as
    /// `(integer, text)` pairs: the apply SQL's report of rejected rows (`GetStatementResult`,
    /// every page), with retries. Fields of other shapes are an error.
    pub async fn report_rows(
        &self,
        statement_id: &str,
        sub_statement: usize,
        deadline: Instant,
    ) -> Result<Vec<(i64, String)>, DataApiError> {
        use aws_sdk_redshiftdata::types::Field;
        let id = format!("{statement_id}:{}", sub_statement + 1);
        let mut rows = Vec::new();
        let mut next_token: Option<String> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.count();
            let request = self.api.client.get_statement_result().id(&id).set_next_token(next_token.clone()).send();
            let result = match tokio::time::timeout_at(deadline, request).await {
                Err(_) => {
                    return Err(DataApiError::Deadline { during: "reading rejected rows", statement_id: Some(id) });
                }
                Ok(result) => result.map_err(|e| api_error("GetStatementResult", e)),
            };
            match result {
                Ok(output) => {
                    for record in output.records() {
                        match record.as_slice() {
                            [Field::LongValue(row), Field::StringValue(rule)] => rows.push((*row, rule.clone())),
                            _ => {
                                return Err(DataApiError::Api {
                                    operation: "GetStatementResult",
                                    code: "UnexpectedReportShape".into(),
                                    status: None,
                                });
                            }
                        }
                    }
                    match output.next_token() {
                        Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                        _ => return Ok(rows),
                    }
                    attempt = 0;
                }
                Err(e) if is_retriable(&e) && attempt < MAX_ATTEMPTS => {
                    self.count_retry();
                    self.pause(self.api.retry.jittered(attempt - 1), deadline, "reading rejected rows", None).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The target's columns (`DescribeTable`), with retries. A table that does not exist
    /// comes back with no columns.
    pub async fn describe_table(&self, table: &TableName, deadline: Instant) -> Result<TargetTable, DataApiError> {
        let mut columns = Vec::new();
        let mut next_token: Option<String> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.count();
            let request = with_target!(self.api.client.describe_table(), &self.api.target)
                .schema(&table.schema)
                .table(&table.table)
                .set_next_token(next_token.clone());
            let result = match tokio::time::timeout_at(deadline, request.send()).await {
                Err(_) => return Err(DataApiError::Deadline { during: "describing a table", statement_id: None }),
                Ok(result) => result.map_err(|e| api_error("DescribeTable", e)),
            };
            match result {
                Ok(output) => {
                    for column in output.column_list() {
                        let Some(name) = column.name() else { continue };
                        columns.push(TargetColumn::described(
                            name,
                            column.type_name().unwrap_or_default(),
                            column.length(),
                            column.precision(),
                            column.scale(),
                            column.nullable(),
                        ));
                    }
                    match output.next_token() {
                        Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                        _ => return Ok(TargetTable::new(table.clone(), columns)),
                    }
                    attempt = 0;
                }
                Err(e) if is_retriable(&e) && attempt < MAX_ATTEMPTS => {
                    self.count_retry();
                    self.pause(self.api.retry.jittered(attempt - 1), deadline, "describing a table", None).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        assert_eq!(POLL.delay(0), Duration::from_millis(20));
        assert!(POLL.delay(1) > POLL.delay(0));
        assert_eq!(POLL.delay(50), Duration::from_millis(500));
        for attempt in 0..20 {
            assert!(RETRY.jittered(attempt) <= RETRY.delay(attempt));
        }
    }
}
