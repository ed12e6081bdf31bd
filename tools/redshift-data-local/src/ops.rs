//! The Data API operations: request validation (as AWS validates), statement records and the
//! response bodies.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::NoTls;

use crate::App;
use crate::runner::{self, Job};
use crate::store::{Idempotency, Part, Record, Status, Target, TokenLookup};
use crate::wire::{
    self, ApiError, CancelOutput, DescribeOutput, DescribeTableInput, DescribeTableOutput, ErrorCode, GetResultOutput,
    IdInput, ListStatementsInput, ListStatementsOutput, StatementData, SubStatementData, SubmitInput, SubmitOutput,
};

/// Largest SQL text per statement (AWS: 100 KB, not adjustable).
pub const MAX_SQL_BYTES: usize = 102_400;
/// Most statements in one BatchExecuteStatement.
pub const MAX_BATCH_STATEMENTS: usize = 40;
/// Rows per GetStatementResult page.
pub const RESULT_PAGE_ROWS: usize = 1_000;
/// Statements SUBMITTED, PICKED or STARTED at once; one more gets
/// ActiveStatementsExceededException (the Management Guide's quota).
pub const MAX_ACTIVE_STATEMENTS: usize = 200;
/// The largest `WaitTimeSeconds`.
pub const MAX_WAIT_SECONDS: i64 = 30;
const LIST_DEFAULT_RESULTS: usize = 100;
const DESCRIBE_TABLE_MAX_RESULTS: i64 = 1_000;

/// The operations this emulator implements (`X-Amz-Target: RedshiftData.<Op>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ExecuteStatement,
    BatchExecuteStatement,
    DescribeStatement,
    GetStatementResult,
    DescribeTable,
    CancelStatement,
    ListStatements,
}

impl Operation {
    pub fn from_target(target: &str) -> Option<Operation> {
        let name = target.strip_prefix("RedshiftData.")?;
        [
            Operation::ExecuteStatement,
            Operation::BatchExecuteStatement,
            Operation::DescribeStatement,
            Operation::GetStatementResult,
            Operation::DescribeTable,
            Operation::CancelStatement,
            Operation::ListStatements,
        ]
        .into_iter()
        .find(|op| op.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::ExecuteStatement => "ExecuteStatement",
            Operation::BatchExecuteStatement => "BatchExecuteStatement",
            Operation::DescribeStatement => "DescribeStatement",
            Operation::GetStatementResult => "GetStatementResult",
            Operation::DescribeTable => "DescribeTable",
            Operation::CancelStatement => "CancelStatement",
            Operation::ListStatements => "ListStatements",
        }
    }
}

/// A successful answer plus what the request log may show (never SQL text or values).
pub struct Reply {
    pub body: Vec<u8>,
    pub statement_id: Option<String>,
    pub sql_bytes: usize,
}

impl Reply {
    fn new(output: &impl Serialize, statement_id: Option<String>) -> Result<Reply, ApiError> {
        let body = serde_json::to_vec(output).map_err(|e| ApiError::new(ErrorCode::InternalServer, e.to_string()))?;
        Ok(Reply { body, statement_id, sql_bytes: 0 })
    }
}

pub async fn dispatch(app: &Arc<App>, op: Operation, body: &[u8]) -> Result<Reply, ApiError> {
    match op {
        Operation::ExecuteStatement | Operation::BatchExecuteStatement => submit(app, op, body).await,
        Operation::DescribeStatement => describe_statement(app, body).await,
        Operation::GetStatementResult => get_statement_result(app, body).await,
        Operation::DescribeTable => describe_table(app, body).await,
        Operation::CancelStatement => cancel_statement(app, body).await,
        Operation::ListStatements => list_statements(app, body),
    }
}

/// Parses a JSON object body; an empty body counts as `{}`.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<(T, serde_json::Value), ApiError> {
    let serialization = |e: serde_json::Error| ApiError::new(ErrorCode::Serialization, e.to_string());
    let value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(body).map_err(serialization)?
    };
    if !value.is_object() {
        return Err(ApiError::new(ErrorCode::Serialization, "the request body must be a JSON object"));
    }
    Ok((serde_json::from_value(value.clone()).map_err(serialization)?, value))
}

fn constraint(member: &str, value: &str, rule: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}"
    ))
}

fn validate_target(target: wire::Target) -> Result<Target, ApiError> {
    let database = target
        .database
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ApiError::validation("Database is required: specify the name of the database to connect to."))?;
    if target.cluster_identifier.is_none() && target.workgroup_name.is_none() && target.secret_arn.is_none() {
        return Err(ApiError::validation("Either ClusterIdentifier, WorkgroupName or SecretArn must be specified."));
    }
    if target.cluster_identifier.is_some() && target.workgroup_name.is_some() {
        return Err(ApiError::validation("Specify either ClusterIdentifier or WorkgroupName, not both."));
    }
    if let Some(cluster) = &target.cluster_identifier {
        let bytes = cluster.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes[0].is_ascii_lowercase()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && !cluster.ends_with('-')
            && !cluster.contains("--");
        if !valid {
            return Err(constraint(
                "clusterIdentifier",
                cluster,
                "Member must satisfy regular expression pattern: ^[a-z]([a-z0-9]|-[a-z0-9])*$",
            ));
        }
    }
    Ok(Target {
        database,
        cluster_identifier: target.cluster_identifier,
        workgroup_name: target.workgroup_name,
        secret_arn: target.secret_arn,
        db_user: target.db_user,
    })
}

fn validate_sql(sql: &str, member: &str) -> Result<(), ApiError> {
    if sql.trim().is_empty() {
        return Err(constraint(member, sql, "Member must have length greater than or equal to 1"));
    }
    if sql.len() > MAX_SQL_BYTES {
        return Err(ApiError::validation("Cannot process query string larger than 100kB"));
    }
    Ok(())
}

/// The SQL list of an Execute/BatchExecute request, validated.
fn statements(op: Operation, input: &SubmitInput) -> Result<Vec<String>, ApiError> {
    if op == Operation::ExecuteStatement {
        let sql = input.sql.as_deref().ok_or_else(|| {
            ApiError::validation(
                "1 validation error detected: Value null at 'sql' failed to satisfy constraint: Member must not be null",
            )
        })?;
        validate_sql(sql, "sql")?;
        return Ok(vec![sql.to_owned()]);
    }
    let sqls = input.sqls.as_deref().ok_or_else(|| {
        ApiError::validation(
            "1 validation error detected: Value null at 'sqls' failed to satisfy constraint: Member must not be null",
        )
    })?;
    if sqls.is_empty() || sqls.len() > MAX_BATCH_STATEMENTS {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'sqls' failed to satisfy constraint: Member must have length \
             between 1 and {MAX_BATCH_STATEMENTS} (got {})",
            sqls.len()
        )));
    }
    for sql in sqls {
        validate_sql(sql, "sqls")?;
    }
    Ok(sqls.to_vec())
}

/// Request members we do not emulate are refused rather than silently ignored.
fn refuse_unsupported(input: &SubmitInput) -> Result<(), ApiError> {
    if input.parameters.is_some() {
        return Err(ApiError::validation("parameters are not supported by redshift-data-local"));
    }
    if input.session_id.is_some() || input.session_keep_alive_seconds.is_some() {
        return Err(ApiError::validation(
            "sessions (SessionId, SessionKeepAliveSeconds) are not supported by redshift-data-local",
        ));
    }
    if input.result_format.as_deref().is_some_and(|f| f != "JSON") {
        return Err(ApiError::validation("only ResultFormat JSON is supported by redshift-data-local"));
    }
    if input.execution_mode.as_deref().is_some_and(|m| m != "TRANSACTION") {
        return Err(ApiError::validation("only ExecutionMode TRANSACTION is supported by redshift-data-local"));
    }
    Ok(())
}

fn idempotency(
    op: Operation,
    token: Option<&str>,
    mut raw: serde_json::Value,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(token) = token else { return Ok(None) };
    if token.is_empty() || token.chars().count() > 64 {
        return Err(constraint("clientToken", token, "Member must have length between 1 and 64"));
    }
    if let Some(object) = raw.as_object_mut() {
        object.remove("ClientToken");
    }
    let mut hasher = DefaultHasher::new();
    (op.name(), raw.to_string()).hash(&mut hasher);
    Ok(Some(Idempotency { token: token.to_owned(), fingerprint: hasher.finish() }))
}

/// `WaitTimeSeconds`, validated (0 to 30).
fn wait_seconds(value: Option<i64>) -> Result<Option<u64>, ApiError> {
    match value {
        None => Ok(None),
        Some(n) if n < 0 => {
            Err(constraint("waitTimeSeconds", &n.to_string(), "Member must have value greater than or equal to 0"))
        }
        Some(n) if n > MAX_WAIT_SECONDS => Err(constraint(
            "waitTimeSeconds",
            &n.to_string(),
            &format!("Member must have value less than or equal to {MAX_WAIT_SECONDS}"),
        )),
        Some(n) => Ok(Some(n.unsigned_abs())),
    }
}

/// Waits up to `seconds` for statement `uuid` (or its sub-statement `sub`) to end.
async fn wait_for(app: &Arc<App>, uuid: &str, sub: Option<usize>, seconds: Option<u64>) {
    let Some(seconds) = seconds.filter(|&s| s > 0) else { return };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let Some(mut progress) = app.store().get(uuid).map(|r| r.progress.subscribe()) else { return };
    loop {
        {
            let store = app.store();
            let Some(record) = store.get(uuid) else { return };
            let status = sub.and_then(|i| record.parts.get(i)).map_or(record.status, |part| part.status);
            if status.is_done() {
                return;
            }
        }
        // A timeout, or the record was evicted.
        if !matches!(tokio::time::timeout_at(deadline, progress.changed()).await, Ok(Ok(()))) {
            return;
        }
    }
}

fn submit_output(record: &Record, waited: bool) -> SubmitOutput {
    SubmitOutput {
        id: record.id.clone(),
        status: record.status.as_str(),
        redshift_pid: waited.then_some(record.redshift_pid),
        has_result_set: waited.then(|| record.has_result_set()),
        created_at: record.created_at,
        database: record.target.database.clone(),
        db_user: record.target.db_user.clone(),
        cluster_identifier: record.target.cluster_identifier.clone(),
        workgroup_name: record.target.workgroup_name.clone(),
        secret_arn: record.target.secret_arn.clone(),
    }
}

/// ExecuteStatement and BatchExecuteStatement: validate, record, start the runner, wait
/// (`WaitTimeSeconds`), answer.
async fn submit(app: &Arc<App>, op: Operation, body: &[u8]) -> Result<Reply, ApiError> {
    let (input, raw): (SubmitInput, _) = parse(body)?;
    refuse_unsupported(&input)?;
    let sqls = statements(op, &input)?;
    let sql_bytes = sqls.iter().map(String::len).sum();
    if let Some(name) = &input.statement_name
        && name.chars().count() > 500
    {
        return Err(constraint("statementName", name, "Member must have length less than or equal to 500"));
    }
    let wait = wait_seconds(input.wait_time_seconds)?;
    let idempotency = idempotency(op, input.client_token.as_deref(), raw)?;
    let target = validate_target(input.target)?;
    let id = accept(app, op, target, sqls, input.statement_name, idempotency)?;
    wait_for(app, &id, None, wait).await;
    let store = app.store();
    let record = store.get(&id).ok_or_else(|| ApiError::new(ErrorCode::InternalServer, "statement vanished"))?;
    let mut reply = Reply::new(&submit_output(record, wait.is_some()), Some(id.clone()))?;
    reply.sql_bytes = sql_bytes;
    Ok(reply)
}

/// Records a new statement and starts its runner, or finds the statement of a repeated
/// ClientToken. Returns the statement id.
fn accept(
    app: &Arc<App>,
    op: Operation,
    target: Target,
    sqls: Vec<String>,
    statement_name: Option<String>,
    idempotency: Option<Idempotency>,
) -> Result<String, ApiError> {
    let database = target.database.clone();
    let is_batch = op == Operation::BatchExecuteStatement;
    let mut store = app.store();
    if let Some(idempotency) = &idempotency {
        match store.lookup_token(idempotency) {
            TokenLookup::Seen(id) if store.get(&id).is_some() => return Ok(id),
            TokenLookup::Mismatch => {
                return Err(ApiError::validation(
                    "ClientToken was already used with a different request; use a new ClientToken",
                ));
            }
            TokenLookup::Seen(_) | TokenLookup::New => {}
        }
    }
    if store.active() >= MAX_ACTIVE_STATEMENTS {
        return Err(ApiError::new(
            ErrorCode::ActiveStatementsExceeded,
            format!("Active statements exceeded the allowed quota ({MAX_ACTIVE_STATEMENTS})."),
        ));
    }
    let fault = app.faults.statement();
    let id = store.insert(target, sqls.clone(), is_batch, statement_name, idempotency);
    let wake = store.get(&id).map(|r| r.cancel.wake.clone()).unwrap_or_default();
    drop(store);
    if let Some(recorder) = &app.recorder {
        recorder.record(&sqls);
    }
    let job = Job { id: id.clone(), database, sqls, is_batch, fault, latency: app.faults.latency(), wake };
    tokio::spawn(runner::run(Arc::clone(app), job));
    Ok(id)
}

/// Splits `<uuid>` or `<uuid>:<n>` (n 1-based) after checking AWS's id pattern.
fn parse_id(id: Option<&str>) -> Result<(String, Option<usize>), ApiError> {
    let id = id.ok_or_else(|| {
        ApiError::validation(
            "1 validation error detected: Value null at 'id' failed to satisfy constraint: Member must not be null",
        )
    })?;
    let (uuid, sub) = match id.split_once(':') {
        Some((uuid, n)) => (uuid, Some(n)),
        None => (id, None),
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    let uuid_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && uuid.bytes().all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit());
    let sub = match sub {
        None => None,
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Some(n.parse::<usize>().unwrap_or(0)),
        Some(_) => return Err(id_pattern_error(id)),
    };
    if !uuid_ok {
        return Err(id_pattern_error(id));
    }
    Ok((uuid.to_owned(), sub))
}

fn id_pattern_error(id: &str) -> ApiError {
    constraint(
        "id",
        id,
        "Member must satisfy regular expression pattern: ^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\\d+)?$",
    )
}

/// The record and, for `<uuid>:<n>`, the index of the sub-statement.
fn find<'a>(store: &'a crate::store::Store, id: &str) -> Result<(&'a Record, Option<usize>), ApiError> {
    let (uuid, sub) = parse_id(Some(id))?;
    let record = store.get(&uuid).ok_or_else(|| ApiError::not_found(id))?;
    match sub {
        None => Ok((record, None)),
        Some(n) if record.is_batch && n >= 1 && n <= record.parts.len() => Ok((record, Some(n - 1))),
        Some(_) => Err(ApiError::not_found(id)),
    }
}

fn sub_data(record: &Record, index: usize, part: &Part) -> SubStatementData {
    SubStatementData {
        id: format!("{}:{}", record.id, index + 1),
        status: part.status.as_str(),
        error: part.error.clone(),
        query_string: part.sql.clone(),
        duration: part.duration,
        result_rows: part.result_rows,
        result_size: part.result_size,
        has_result_set: part.has_result_set,
        created_at: part.created_at,
        updated_at: part.updated_at,
        redshift_query_id: part.query_id,
    }
}

async fn describe_statement(app: &Arc<App>, body: &[u8]) -> Result<Reply, ApiError> {
    let (input, _): (IdInput, _) = parse(body)?;
    let (uuid, sub) = parse_id(input.id.as_deref())?;
    let wait = wait_seconds(input.wait_time_seconds)?;
    wait_for(app, &uuid, sub.map(|n| n.saturating_sub(1)), wait).await;
    let id = input.id.unwrap_or_default();
    let store = app.store();
    let (record, sub) = find(&store, &id)?;
    let target = &record.target;
    let mut output = DescribeOutput {
        id: id.clone(),
        status: record.status.as_str(),
        error: record.error.clone(),
        created_at: record.created_at,
        updated_at: record.updated_at,
        duration: record.duration,
        query_string: None,
        has_result_set: record.has_result_set(),
        result_rows: record.result_rows(),
        result_size: record.result_size(),
        redshift_pid: record.redshift_pid,
        redshift_query_id: record.query_id(),
        database: target.database.clone(),
        db_user: target.db_user.clone(),
        cluster_identifier: target.cluster_identifier.clone(),
        workgroup_name: target.workgroup_name.clone(),
        secret_arn: target.secret_arn.clone(),
        sub_statements: None,
    };
    match sub {
        // A sub-statement id describes that sub-statement as a statement of its own.
        Some(index) => {
            let part = &record.parts[index];
            output.status = part.status.as_str();
            output.error = part.error.clone();
            output.created_at = part.created_at;
            output.updated_at = part.updated_at;
            output.duration = part.duration;
            output.query_string = Some(part.sql.clone());
            output.has_result_set = part.has_result_set;
            output.result_rows = part.result_rows;
            output.result_size = part.result_size;
            output.redshift_query_id = part.query_id;
        }
        None if record.is_batch => {
            output.sub_statements =
                Some(record.parts.iter().enumerate().map(|(i, part)| sub_data(record, i, part)).collect());
        }
        None => output.query_string = Some(record.parts[0].sql.clone()),
    }
    Reply::new(&output, Some(id))
}

fn encode_token(kind: &str, position: u64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}|{position}|{id}"))
}

fn decode_token(token: Option<&str>, kind: &str, id: &str) -> Result<u64, ApiError> {
    let Some(token) = token else { return Ok(0) };
    let invalid = || ApiError::validation("Invalid NextToken.");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut fields = text.splitn(3, '|');
    match (fields.next(), fields.next().and_then(|p| p.parse().ok()), fields.next()) {
        (Some(k), Some(position), Some(i)) if k == kind && i == id => Ok(position),
        _ => Err(invalid()),
    }
}

async fn get_statement_result(app: &Arc<App>, body: &[u8]) -> Result<Reply, ApiError> {
    let (input, _): (IdInput, _) = parse(body)?;
    let (uuid, sub) = parse_id(input.id.as_deref())?;
    let wait = wait_seconds(input.wait_time_seconds)?;
    wait_for(app, &uuid, sub.map(|n| n.saturating_sub(1)), wait).await;
    let id = input.id.unwrap_or_default();
    let result = {
        let store = app.store();
        let (record, sub) = find(&store, &id)?;
        if record.is_batch && sub.is_none() {
            return Err(ApiError::validation(
                "BatchExecuteStatement result can only be retrieved with sub-statement id.",
            ));
        }
        let part = &record.parts[sub.unwrap_or(0)];
        match part.status {
            Status::Finished => {}
            Status::Failed | Status::Aborted => {
                return Err(ApiError::validation(format!(
                    "Query does not have result: its status is {}. Please check query status with DescribeStatement.",
                    part.status.as_str()
                )));
            }
            status => {
                return Err(ApiError::validation(format!(
                    "Query has not finished. Current status is {}.",
                    status.as_str()
                )));
            }
        }
        part.result.clone().ok_or_else(|| {
            ApiError::validation("Query does not have result. Please check query status with DescribeStatement.")
        })?
    };
    let total = result.records.len();
    let start = usize::try_from(decode_token(input.next_token.as_deref(), "r", &id)?).unwrap_or(usize::MAX);
    if start > total {
        return Err(ApiError::validation("Invalid NextToken."));
    }
    let end = total.min(start + RESULT_PAGE_ROWS);
    let output = GetResultOutput {
        records: &result.records[start..end],
        column_metadata: &result.columns,
        total_num_rows: total as i64,
        next_token: (end < total).then(|| encode_token("r", end as u64, &id)),
    };
    Reply::new(&output, Some(id))
}

async fn describe_table(app: &Arc<App>, body: &[u8]) -> Result<Reply, ApiError> {
    let (input, _): (DescribeTableInput, _) = parse(body)?;
    let target = validate_target(input.target)?;
    let limit = match input.max_results {
        None | Some(0) => i64::from(i32::MAX),
        Some(n @ 1..=DESCRIBE_TABLE_MAX_RESULTS) => n,
        Some(n) => {
            return Err(constraint("maxResults", &n.to_string(), "Member must have value between 0 and 1000"));
        }
    };
    let schema = input.schema.unwrap_or_else(|| "public".to_owned());
    let key = format!("{}.{}.{}", target.database, schema, input.table.as_deref().unwrap_or(""));
    let offset = i64::try_from(decode_token(input.next_token.as_deref(), "t", &key)?).unwrap_or(i64::MAX);
    let database_error = |e: crate::errors::SqlError| {
        let text = e.redshift_text(&crate::errors::ErrorContext { isolation: app.isolation, ..Default::default() });
        if e.fatal { ApiError::new(ErrorCode::DatabaseConnection, text) } else { ApiError::validation(text) }
    };
    let _permit = app
        .pool
        .running
        .acquire()
        .await
        .map_err(|_| ApiError::new(ErrorCode::InternalServer, "the emulator is shutting down"))?;
    let conn = app.pool.get(&target.database).await.map_err(database_error)?;
    let described = crate::executor::describe_table(&conn.client, &schema, input.table.as_deref(), offset, limit).await;
    let reusable = described.as_ref().map_or_else(|e| !e.fatal, |_| true);
    if reusable {
        app.pool.put(&target.database, conn).await;
    }
    let (columns, more) = described.map_err(database_error)?;
    let next = offset + columns.len() as i64;
    let output = DescribeTableOutput {
        table_name: input.table,
        column_list: columns,
        next_token: more.then(|| encode_token("t", next as u64, &key)),
    };
    Reply::new(&output, None)
}

async fn cancel_statement(app: &Arc<App>, body: &[u8]) -> Result<Reply, ApiError> {
    let (input, _): (IdInput, _) = parse(body)?;
    let (uuid, sub) = parse_id(input.id.as_deref())?;
    if sub.is_some() {
        return Err(ApiError::validation("Cancel the batch with its statement id, not a sub-statement id."));
    }
    let token = {
        let mut store = app.store();
        let record = store.get_mut(&uuid).ok_or_else(|| ApiError::not_found(&uuid))?;
        if record.status.is_done() {
            return Err(ApiError::validation(format!(
                "Could not cancel a query that is already in {} status.",
                record.status.as_str()
            )));
        }
        record.cancel.requested = true;
        record.cancel.wake.notify_one();
        record.cancel.token.clone()
    };
    if let Some(token) = token
        && let Err(error) = token.cancel_query(NoTls).await
    {
        tracing::warn!(%error, statement_id = %uuid, "could not send the cancel request to PostgreSQL");
    }
    Reply::new(&CancelOutput { status: true }, Some(uuid))
}

fn list_statements(app: &Arc<App>, body: &[u8]) -> Result<Reply, ApiError> {
    let (input, _): (ListStatementsInput, _) = parse(body)?;
    let max = match input.max_results {
        None | Some(0) => LIST_DEFAULT_RESULTS,
        Some(n @ 1..=100) => n as usize,
        Some(n) => return Err(constraint("maxResults", &n.to_string(), "Member must have value between 0 and 100")),
    };
    // AWS lists only FINISHED statements when Status is absent; we list every status so a test
    // sees its statements whatever state they are in. `ALL` is accepted too.
    let status = match input.status.as_deref() {
        None | Some("ALL") => None,
        Some(text) => Some(Status::parse(text).ok_or_else(|| {
            constraint(
                "status",
                text,
                "Member must satisfy enum value set: [SUBMITTED, PICKED, STARTED, FINISHED, ABORTED, FAILED, ALL]",
            )
        })?),
    };
    let before = match input.next_token.as_deref() {
        None => None,
        Some(_) => Some(decode_token(input.next_token.as_deref(), "l", "")?),
    };
    let store = app.store();
    let matches = |record: &Record| {
        status.is_none_or(|s| record.status == s)
            && input
                .statement_name
                .as_deref()
                .is_none_or(|prefix| record.statement_name.as_deref().is_some_and(|name| name.starts_with(prefix)))
            && input.database.as_deref().is_none_or(|d| record.target.database == d)
            && input
                .cluster_identifier
                .as_deref()
                .is_none_or(|c| record.target.cluster_identifier.as_deref() == Some(c))
            && input.workgroup_name.as_deref().is_none_or(|w| record.target.workgroup_name.as_deref() == Some(w))
    };
    let mut page: Vec<(u64, &Record)> =
        store.newest_first(before).filter(|(_, record)| matches(record)).take(max + 1).collect();
    let next_token = (page.len() > max).then(|| {
        page.truncate(max);
        encode_token("l", page.last().map_or(0, |(seq, _)| *seq), "")
    });
    let statements = page
        .into_iter()
        .map(|(_, record)| StatementData {
            id: record.id.clone(),
            query_string: (!record.is_batch).then(|| record.parts[0].sql.clone()),
            query_strings: record.is_batch.then(|| record.parts.iter().map(|p| p.sql.clone()).collect()),
            status: record.status.as_str(),
            statement_name: record.statement_name.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            is_batch_statement: record.is_batch,
            secret_arn: record.target.secret_arn.clone(),
        })
        .collect::<Vec<_>>();
    Reply::new(&ListStatementsOutput { statements, next_token }, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip_through_the_target_header() {
        for name in ["ExecuteStatement", "BatchExecuteStatement", "DescribeStatement", "ListStatements"] {
            let op = Operation::from_target(&format!("RedshiftData.{name}")).unwrap();
            assert_eq!(op.name(), name);
        }
        assert_eq!(Operation::from_target("RedshiftData.ListSessions"), None);
        assert_eq!(Operation::from_target("ExecuteStatement"), None);
    }

    #[test]
    fn ids_follow_the_aws_pattern() {
        let id = "0b5e6b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c";
        assert_eq!(parse_id(Some(id)).unwrap(), (id.to_owned(), None));
        assert_eq!(parse_id(Some(&format!("{id}:12"))).unwrap(), (id.to_owned(), Some(12)));
        for bad in ["", "x", "0B5E6B7C-1D2E-4F3A-8B9C-0D1E2F3A4B5C", &format!("{id}:"), &format!("{id}:a")] {
            let error = parse_id(Some(bad)).unwrap_err();
            assert_eq!(error.code, ErrorCode::Validation, "{bad}");
        }
        assert_eq!(parse_id(None).unwrap_err().code, ErrorCode::Validation);
    }

    #[test]
    fn tokens_are_bound_to_their_kind_and_id() {
        let token = encode_token("r", 1000, "abc");
        assert_eq!(decode_token(Some(&token), "r", "abc").unwrap(), 1000);
        assert!(decode_token(Some(&token), "r", "abd").is_err());
        assert!(decode_token(Some(&token), "l", "abc").is_err());
        assert!(decode_token(Some("!!"), "r", "abc").is_err());
        assert_eq!(decode_token(None, "r", "abc").unwrap(), 0);
    }

    #[test]
    fn submit_validation_matches_aws_rules() {
        let input = |json: &str| parse::<SubmitInput>(json.as_bytes()).unwrap().0;
        let big = "x".repeat(MAX_SQL_BYTES + 1);
        let error = statements(Operation::ExecuteStatement, &input(&format!(r#"{{"Sql":"{big}"}}"#))).unwrap_err();
        assert_eq!(error.message, "Cannot process query string larger than 100kB");
        let exact = "x".repeat(MAX_SQL_BYTES);
        assert!(statements(Operation::ExecuteStatement, &input(&format!(r#"{{"Sql":"{exact}"}}"#))).is_ok());
        assert!(statements(Operation::ExecuteStatement, &input(r#"{"Sql":"  "}"#)).is_err());
        assert!(statements(Operation::BatchExecuteStatement, &input(r#"{"Sqls":[]}"#)).is_err());
        let target = |json: &str| validate_target(input(json).target);
        assert!(target(r#"{"Database":"dev","ClusterIdentifier":"my-cluster-1"}"#).is_ok());
        assert!(target(r#"{"Database":"dev","SecretArn":"arn:x"}"#).is_ok());
        assert!(target(r#"{"ClusterIdentifier":"c"}"#).is_err());
        assert!(target(r#"{"Database":"dev"}"#).is_err());
        assert!(target(r#"{"Database":"dev","ClusterIdentifier":"Bad_Name"}"#).is_err());
        assert!(target(r#"{"Database":"dev","ClusterIdentifier":"c","WorkgroupName":"w"}"#).is_err());
    }

    #[test]
    fn wait_time_seconds_is_between_0_and_30() {
        assert_eq!(wait_seconds(None).unwrap(), None);
        assert_eq!(wait_seconds(Some(0)).unwrap(), Some(0));
        assert_eq!(wait_seconds(Some(30)).unwrap(), Some(30));
        let error = wait_seconds(Some(31)).unwrap_err();
        assert_eq!(error.code, ErrorCode::Validation);
        assert!(error.message.contains("'31' at 'waitTimeSeconds'"), "{}", error.message);
        assert!(wait_seconds(Some(-1)).unwrap_err().message.contains("greater than or equal to 0"));
    }

    #[test]
    fn malformed_or_mistyped_bodies_are_serialization_errors() {
        assert_eq!(parse::<IdInput>(b"{").unwrap_err().code, ErrorCode::Serialization);
        assert_eq!(parse::<IdInput>(b"[1]").unwrap_err().code, ErrorCode::Serialization);
        assert_eq!(parse::<IdInput>(br#"{"Id":1}"#).unwrap_err().code, ErrorCode::Serialization);
        assert!(parse::<IdInput>(b"").unwrap().0.id.is_none());
    }
}
