//! The Redshift Data API as this pipeline uses it: submit a transaction, poll it to its end,
//! retry what [`is_retriable`] allows, never past the caller's deadline.
//!
//! The SDK's own retries are off ([`sdk_client`] builds the client with
//! `RetryConfig::disabled()`): its standard mode knows nothing of our deadline, does not
//! retry `ActiveStatementsExceededException`, and cannot retry a statement that failed on a
//! serialization conflict. Every retry decision is [`RetryPolicy::run`]'s instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::config::retry::RetryConfig;
use aws_sdk_redshiftdata::config::timeout::TimeoutConfig;
use aws_sdk_redshiftdata::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_redshiftdata::types::{StatementStatusString, StatusString};
use tokio::time::Instant;

use super::dialect::{Dialect, Redshift};
use super::error::{DataApiError, DbErrorClass, StatementEnd, is_retriable};
use super::retry::{Backoff, RETRY, RetryPolicy, pause};
use super::staging::{StagedObject, Staging};
use super::target::{TargetColumn, TargetTable};
use super::warehouse::{Committed, Warehouse, WarehouseSession};
use crate::config::TableName;

/// How to reach the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Redshift Serverless (`redshift-serverless:GetCredentials`), optionally with a secret.
    Workgroup {
        /// The workgroup's name.
        name: String,
        /// A Secrets Manager secret with the database user's credentials.
        secret_arn: Option<String>,
    },
    /// A provisioned cluster as a database user (`GetClusterCredentials`), with a Secrets
    /// Manager secret, or (neither) as the IAM identity (`GetClusterCredentialsWithIAM`).
    Cluster {
        /// The cluster identifier.
        id: String,
        /// The database user to get temporary credentials for.
        db_user: Option<String>,
        /// A Secrets Manager secret with the database user's credentials.
        secret_arn: Option<String>,
    },
}

/// The database the pipeline loads into, and how it signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Workgroup or cluster, and the credentials to use.
    pub auth: Auth,
    /// The database name (`REDSHIFT_DATABASE`).
    pub database: String,
}

/// Polling starts at 20 ms: most micro-batches finish within a few hundred milliseconds.
pub const POLL: Backoff = Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(500), factor: 1.6 };
/// `WaitTimeSeconds` of `BatchExecuteStatement` and `DescribeStatement`: the call returns when
/// the statement ends or this much later (the Data API allows up to 30 s; "The number of seconds
/// to wait for all SQL statements in the batch to complete execution before returning the
/// response", Data API reference). It must stay below [`ATTEMPT_TIMEOUT`], and it never runs
/// past the caller's deadline.
pub const LONG_POLL: Duration = Duration::from_secs(10);
/// The SDK's timeout of one Data API call ([`sdk_client`]): a long poll ([`LONG_POLL`], 10 s)
/// plus 5 s for the connection, TLS, signing and the answer, so that a call the service holds
/// for its whole wait is not cut off, while a connection that hangs is given up after 15 s and
/// retried ([`DataApiError::Transport`] `timeout` is retriable). The caller's deadline still
/// cuts every call shorter when it comes first.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// The SDK client for the Data API, from `config` (region, credentials, endpoint: the
/// functions pass the SDK's environment configuration, the tests a local emulator's) with
/// the SDK's retries off and each attempt cut at [`ATTEMPT_TIMEOUT`]. The one place either is
/// set: the functions, `cdc`, the contract suite and the integration tests all build their
/// client here.
pub fn sdk_client(config: aws_sdk_redshiftdata::config::Builder) -> Client {
    let config = config
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(ATTEMPT_TIMEOUT).build())
        .build();
    Client::from_conf(config)
}

/// The client, the target and the backoff schedules; built once per cold start.
#[derive(Debug)]
pub struct DataApi {
    client: Client,
    target: Target,
    calls: AtomicU64,
    poll: Backoff,
    retry: RetryPolicy,
    long_poll: Duration,
    staging: Option<Staging>,
}

/// One unit of work (a load) against the Data API, counting its own calls so that
/// concurrent invocations sharing a [`DataApi`] report their own numbers.
#[derive(Debug)]
pub struct Session<'a> {
    api: &'a DataApi,
    calls: AtomicU64,
    retries: AtomicU64,
    s3_calls: AtomicU64,
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
    /// A client for `target` through `client` (build it with [`sdk_client`]), with the
    /// [`POLL`] and [`RETRY`] schedules and the [`LONG_POLL`] wait.
    pub fn new(client: Client, target: Target) -> DataApi {
        DataApi {
            client,
            target,
            calls: AtomicU64::new(0),
            poll: POLL,
            retry: RetryPolicy::new(RETRY),
            long_poll: LONG_POLL,
            staging: None,
        }
    }

    /// Stage `load = "copy"` tables' rows at `staging` (without it, such a load fails: the
    /// functions refuse to start instead).
    pub fn with_staging(mut self, staging: Staging) -> DataApi {
        self.staging = Some(staging);
        self
    }

    /// The staging location, if any.
    pub fn staging(&self) -> Option<&Staging> {
        self.staging.as_ref()
    }

    /// Override [`LONG_POLL`] (tests whose client times out sooner use a shorter one); at most
    /// 30 s, the Data API's limit.
    pub fn with_long_poll(mut self, long_poll: Duration) -> DataApi {
        self.long_poll = long_poll.min(Duration::from_secs(30));
        self
    }

    /// Override the backoff schedules (tests use short ones): `poll` between polls of a
    /// running statement, `retry` between attempts of a failed call (still jittered, still
    /// [`super::retry::MAX_ATTEMPTS`] at most).
    pub fn with_backoff(mut self, poll: Backoff, retry: Backoff) -> DataApi {
        self.poll = poll;
        self.retry = RetryPolicy::new(retry);
        self
    }

    /// The database this client loads into.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Data API calls made so far by every session (every attempt counts).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// The Data API is a warehouse in Redshift's dialect.
impl Warehouse for DataApi {
    type Session<'a> = Session<'a>;

    fn session(&self) -> Session<'_> {
        Session { api: self, calls: AtomicU64::new(0), retries: AtomicU64::new(0), s3_calls: AtomicU64::new(0) }
    }

    fn dialect(&self) -> &dyn Dialect {
        &Redshift
    }
}

impl Session<'_> {
    fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.api.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Make one Data API call (`operation`, for errors) by `deadline`, counting it: its
    /// answer, its error as a [`DataApiError`], or `Deadline` (`during`, `statement_id`) when
    /// the deadline came first.
    async fn call<O, E: ProvideErrorMetadata>(
        &self,
        operation: &'static str,
        during: &'static str,
        statement_id: Option<&str>,
        deadline: Instant,
        request: impl Future<Output = Result<O, SdkError<E, aws_sdk_redshiftdata::config::http::HttpResponse>>>,
    ) -> Result<O, DataApiError> {
        self.count();
        match tokio::time::timeout_at(deadline, request).await {
            Err(_) => Err(DataApiError::Deadline { during, statement_id: statement_id.map(str::to_string) }),
            Ok(result) => result.map_err(|e| api_error(operation, e)),
        }
    }

    /// Submit, retrying errors that mean "not accepted yet" with the same client token, so
    /// that a submission whose response was lost is not run twice.
    async fn submit(&self, sqls: &[String], deadline: Instant) -> Result<String, DataApiError> {
        const DURING: &str = "submitting a transaction";
        let token = uuid::Uuid::new_v4().to_string();
        let token = token.as_str();
        let attempt = move || async move {
            let request = with_target!(self.api.client.batch_execute_statement(), &self.api.target)
                .set_sqls(Some(sqls.to_vec()))
                .client_token(token)
                .statement_name("msk-redshift-cdc")
                .wait_time_seconds(self.wait_seconds(deadline));
            let output = self.call("BatchExecuteStatement", DURING, None, deadline, request.send()).await?;
            output.id().map(str::to_string).ok_or(DataApiError::Api {
                operation: "BatchExecuteStatement",
                code: "MissingStatementId".into(),
                status: None,
            })
        };
        self.api.retry.run(deadline, DURING, |_, _| self.count_retry(), attempt).await
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
        const DURING: &str = "waiting for a statement";
        let mut early = 0;
        loop {
            let asked = Instant::now();
            let request = self.api.client.describe_statement().id(id).wait_time_seconds(self.wait_seconds(deadline));
            let output = match self.call("DescribeStatement", DURING, Some(id), deadline, request.send()).await {
                Ok(output) => output,
                Err(e @ DataApiError::Deadline { .. }) => {
                    self.cancel(id).await;
                    return Err(e);
                }
                // A failed poll does not fail the statement: keep polling if it may pass.
                Err(error) if is_retriable(&error) => {
                    self.count_retry();
                    self.poll_pause(&mut early, deadline, id).await?;
                    continue;
                }
                Err(error) => return Err(error),
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
                        Some(StatusString::Failed) => StatementEnd::Failed,
                        Some(StatusString::Aborted) => StatementEnd::Aborted,
                        _ => StatementEnd::Unknown,
                    };
                    // The failing sub-statement tells which rows to suspect.
                    let failed = output.sub_statements().iter().position(|s| {
                        s.error().is_some() || s.status().is_some_and(|st| *st == StatementStatusString::Failed)
                    });
                    let message = failed
                        .and_then(|i| output.sub_statements()[i].error())
                        .or(output.error())
                        .unwrap_or(if status == StatementEnd::Aborted { "aborted" } else { "" });
                    let class = if status == StatementEnd::Aborted {
                        DbErrorClass::Aborted
                    } else {
                        Redshift.classify_error(message)
                    };
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
        if let Err(e) = pause(self.api.poll.delay(*early), deadline, "waiting for a statement", Some(id)).await {
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
}

/// The Data API calls of one load. Every operation retries with [`RetryPolicy::run`] within
/// the deadline; see [`WarehouseSession`] for the contract.
impl WarehouseSession for Session<'_> {
    /// Run `sqls` as one transaction (`BatchExecuteStatement`) and wait for its end.
    /// Transient failures — throttling, capacity, lost responses, serialization conflicts —
    /// are retried with jittered backoff; the result is `Committed` or the first permanent
    /// error, or `Deadline` if time ran out (the statement is then cancelled, best-effort).
    async fn run_transaction(&self, sqls: &[String], deadline: Instant) -> Result<Committed, DataApiError> {
        let on_retry = |attempt: u32, error: &DataApiError| {
            tracing::debug!(attempt, error = %error, "retrying transaction");
            self.count_retry();
        };
        let attempt = move || async move {
            let id = self.submit(sqls, deadline).await?;
            self.wait(&id, deadline).await
        };
        self.api.retry.run(deadline, "retrying a transaction", on_retry, attempt).await
    }

    /// The rows of sub-statement `sub_statement` (0-based) of a finished batch, as
    /// `(integer, text)` pairs: the apply SQL's report of rejected rows (`GetStatementResult`,
    /// every page), each page with retries. Fields of other shapes are an error.
    async fn report_rows(
        &self,
        statement_id: &str,
        sub_statement: usize,
        deadline: Instant,
    ) -> Result<Vec<(i64, String)>, DataApiError> {
        use aws_sdk_redshiftdata::types::Field;
        const DURING: &str = "reading rejected rows";
        let id = format!("{statement_id}:{}", sub_statement + 1);
        let id = id.as_str();
        let mut rows = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = |next_token: Option<String>| async move {
                let request = self.api.client.get_statement_result().id(id).set_next_token(next_token).send();
                self.call("GetStatementResult", DURING, Some(id), deadline, request).await
            };
            let output =
                self.api.retry.run(deadline, DURING, |_, _| self.count_retry(), || page(next_token.clone())).await?;
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
        }
    }

    /// The target's columns (`DescribeTable`), each page with retries. A table that does not
    /// exist comes back with no columns.
    async fn describe_table(&self, table: &TableName, deadline: Instant) -> Result<TargetTable, DataApiError> {
        const DURING: &str = "describing a table";
        let mut columns = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = |next_token: Option<String>| async move {
                let request = with_target!(self.api.client.describe_table(), &self.api.target)
                    .schema(&table.schema)
                    .table(&table.table)
                    .set_next_token(next_token);
                self.call("DescribeTable", DURING, None, deadline, request.send()).await
            };
            let output =
                self.api.retry.run(deadline, DURING, |_, _| self.count_retry(), || page(next_token.clone())).await?;
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
        }
    }

    /// Data API calls made in this session.
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn staged_object(&self, table: &TableName) -> Option<StagedObject> {
        self.api.staging.as_ref().map(|staging| staging.object(table))
    }

    /// `PutObject`, retried like the Data API's calls (throttling, server errors, no answer).
    async fn stage(
        &self,
        object: &StagedObject,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<Option<String>, DataApiError> {
        let Some(staging) = &self.api.staging else {
            return Err(DataApiError::Staging {
                operation: "PutObject",
                code: "NoStagingLocation".into(),
                status: None,
            });
        };
        let on_retry = |_: u32, error: &DataApiError| {
            tracing::debug!(error = %error, "retrying a staged object's upload");
            self.count_retry();
        };
        let attempt = || {
            self.s3_calls.fetch_add(1, Ordering::Relaxed);
            staging.put(object, body.clone(), deadline)
        };
        self.api.retry.run(deadline, "staging an object", on_retry, attempt).await
    }

    async fn unstage(&self, object: &StagedObject, version: Option<&str>, deadline: Instant) {
        let Some(staging) = &self.api.staging else { return };
        self.s3_calls.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = staging.delete(object, version, deadline).await {
            tracing::warn!(key = %object.key, error = %error, "could not delete a staged object; the staging prefix's lifecycle rule removes it");
        }
    }

    fn s3_calls(&self) -> u64 {
        self.s3_calls.load(Ordering::Relaxed)
    }

    /// Calls and transactions this session repeated after a transient failure: resubmits,
    /// failed polls and retried transactions alike.
    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
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
