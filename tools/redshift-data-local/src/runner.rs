//! The task behind every accepted statement: SUBMITTED (latency) → PICKED (waiting for a
//! running slot and a connection) → STARTED (running on PostgreSQL) → FINISHED / FAILED /
//! ABORTED.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::errors::{ErrorContext, SqlError};
use crate::executor::{self, Conn};
use crate::faults::StatementFault;
use crate::{App, Isolation};

/// What the runner needs to know about an accepted statement.
pub struct Job {
    pub id: String,
    pub database: String,
    pub sqls: Vec<String>,
    pub is_batch: bool,
    /// Fail with this fault's text instead of running (fault injection).
    pub fault: Option<StatementFault>,
    pub latency: Duration,
    pub wake: Arc<Notify>,
}

pub async fn run(app: Arc<App>, job: Job) {
    if !job.latency.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(job.latency) => {}
            () = job.wake.notified() => {}
        }
    }
    if !app.store().pick(&job.id) {
        return;
    }
    if let Some(fault) = job.fault {
        app.store().fail_from(&job.id, 0, fault.text(app.isolation).to_owned());
        return;
    }
    let permit = tokio::select! {
        permit = app.pool.running.acquire() => permit,
        () = job.wake.notified() => {
            app.store().abort_from(&job.id, 0);
            return;
        }
    };
    let Ok(_permit) = permit else {
        app.store().fail_from(&job.id, 0, "ERROR: the emulator is shutting down".to_owned());
        return;
    };
    let conn = match app.pool.get(&job.database).await {
        Ok(conn) => conn,
        Err(error) => {
            let text = error.redshift_text(&ErrorContext { isolation: app.isolation, ..Default::default() });
            app.store().fail_from(&job.id, 0, text);
            return;
        }
    };
    let reusable = if job.is_batch { run_batch(&app, &job, &conn).await } else { run_single(&app, &job, &conn).await };
    if reusable {
        app.pool.put(&job.database, conn).await;
    }
}

/// Runs an autocommit statement. Returns whether the connection may be pooled again.
async fn run_single(app: &App, job: &Job, conn: &Conn) -> bool {
    if !app.store().start_part(&job.id, 0, conn.pid, conn.client.cancel_token()) {
        app.store().abort_from(&job.id, 0);
        return true;
    }
    let result = run_statement(app, job, conn, 0).await;
    let mut store = app.store();
    let cancelled = store.cancel_requested(&job.id);
    let fatal = result.as_ref().is_err_and(|e| e.fatal);
    match result {
        Ok(outcome) => store.finish_part(&job.id, 0, outcome),
        Err(error) if error.is_cancel() && cancelled => store.abort_from(&job.id, 0),
        Err(error) => {
            let context = ErrorContext { query_id: store.query_id(&job.id, 0), ..session(app, conn) };
            store.fail_from(&job.id, 0, error.redshift_text(&context));
        }
    }
    // A cancel request may still be on its way to this backend: never hand it to another statement.
    !cancelled && !fatal
}

/// Runs all statements of a batch in one transaction at the emulator's isolation level
/// (Redshift SNAPSHOT as REPEATABLE READ, or SERIALIZABLE), so concurrent loaders conflict as
/// they would on a database of that level.
async fn run_batch(app: &App, job: &Job, conn: &Conn) -> bool {
    let client = &conn.client;
    if !app.store().start_part(&job.id, 0, conn.pid, client.cancel_token()) {
        app.store().abort_from(&job.id, 0);
        return true;
    }
    let mut context = session(app, conn);
    match begin(client, app.isolation).await {
        Ok(xid) => context.xid = xid,
        Err(error) => {
            app.store().fail_from(&job.id, 0, error.redshift_text(&context));
            return false;
        }
    }
    for index in 0..job.sqls.len() {
        if index > 0 && !app.store().start_part(&job.id, index, conn.pid, client.cancel_token()) {
            // Cancelled between statements: the connection is dropped below, which also ends
            // the transaction, but roll back first so locks go before the status says ABORTED.
            let _ = client.batch_execute("ROLLBACK").await;
            app.store().abort_from(&job.id, index);
            return false;
        }
        match run_statement(app, job, conn, index).await {
            Ok(outcome) => app.store().finish_part(&job.id, index, outcome),
            Err(error) => {
                let rolled_back = !error.fatal && client.batch_execute("ROLLBACK").await.is_ok();
                let mut store = app.store();
                let cancelled = store.cancel_requested(&job.id);
                if error.is_cancel() && cancelled {
                    store.abort_from(&job.id, index);
                } else {
                    let context = ErrorContext { query_id: store.query_id(&job.id, index), ..context };
                    store.fail_from(&job.id, index, error.redshift_text(&context));
                }
                return rolled_back && !cancelled;
            }
        }
    }
    if app.store().cancel_requested(&job.id) {
        let _ = client.batch_execute("ROLLBACK").await;
        app.store().abort_from(&job.id, job.sqls.len());
        return false;
    }
    if app.isolation == Isolation::Serializable {
        context.table_oid = written_table(client).await;
    }
    let committed = client.batch_execute("COMMIT").await;
    let mut store = app.store();
    let cancelled = store.cancel_requested(&job.id);
    match committed {
        Ok(()) => {
            store.end_record(&job.id, crate::store::Status::Finished, None);
            !cancelled
        }
        Err(error) => {
            // A failed COMMIT (e.g. a serialization failure) is charged to the last statement.
            let error = SqlError::from(error);
            let last = job.sqls.len() - 1;
            let context = ErrorContext { query_id: store.query_id(&job.id, last), ..context };
            store.fail_from(&job.id, last, error.redshift_text(&context));
            !cancelled && !error.fatal
        }
    }
}

/// Runs statement `index` of `job`: a COPY through the emulator's COPY, anything else on PostgreSQL.
async fn run_statement(app: &App, job: &Job, conn: &Conn, index: usize) -> Result<crate::store::Outcome, SqlError> {
    let sql = &job.sqls[index];
    if !crate::copy::is_copy(sql) {
        return executor::run_statement(&conn.client, sql).await;
    }
    let query_id = app.store().query_id(&job.id, index);
    let context = crate::copy::Context { app, database: &job.database, conn, query_id, in_batch: job.is_batch };
    crate::copy::run(&context, sql).await
}

/// The error context of a statement on `conn`.
fn session(app: &App, conn: &Conn) -> ErrorContext {
    ErrorContext { isolation: app.isolation, pid: conn.pid, ..Default::default() }
}

/// Opens the batch transaction. A serializable one also returns its transaction id, which
/// Redshift's `1023` text names.
async fn begin(client: &tokio_postgres::Client, isolation: Isolation) -> Result<Option<i64>, SqlError> {
    let begin = format!("BEGIN ISOLATION LEVEL {}", isolation.postgres_level());
    if isolation == Isolation::Snapshot {
        client.batch_execute(&begin).await?;
        return Ok(None);
    }
    let xid = executor::scalar(client, &format!("{begin}; SELECT txid_current()")).await?;
    Ok(xid.and_then(|x| x.parse().ok()))
}

/// The lowest OID of a user table the open transaction writes, for the `1023` text.
async fn written_table(client: &tokio_postgres::Client) -> Option<u32> {
    let sql = "SELECT min(relation::int8) FROM pg_catalog.pg_locks WHERE pid = pg_backend_pid() \
               AND locktype = 'relation' AND mode = 'RowExclusiveLock' AND relation::int8 >= 16384";
    executor::scalar(client, sql).await.ok().flatten().and_then(|oid| oid.parse().ok())
}
