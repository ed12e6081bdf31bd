//! The task behind every accepted statement: SUBMITTED → STARTED → (latency) → run on
//! PostgreSQL → FINISHED / FAILED / ABORTED.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::App;
use crate::executor::{self, Conn, SqlError};
use crate::faults::SERIALIZATION_ERROR;

/// What the runner needs to know about an accepted statement.
pub struct Job {
    pub id: String,
    pub database: String,
    pub sqls: Vec<String>,
    pub is_batch: bool,
    /// Fail with Redshift's serialization error instead of running (fault injection).
    pub serialization_fault: bool,
    pub latency: Duration,
    pub wake: Arc<Notify>,
}

pub async fn run(app: Arc<App>, job: Job) {
    if !app.store().start(&job.id) {
        return;
    }
    if !job.latency.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(job.latency) => {}
            () = job.wake.notified() => {}
        }
    }
    if app.store().cancel_requested(&job.id) {
        app.store().abort_from(&job.id, 0);
        return;
    }
    if job.serialization_fault {
        app.store().fail_from(&job.id, 0, SERIALIZATION_ERROR.to_owned());
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
            app.store().fail_from(&job.id, 0, error.message);
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
    let result = executor::run_statement(&conn.client, &job.sqls[0]).await;
    let mut store = app.store();
    let cancelled = store.cancel_requested(&job.id);
    let fatal = result.as_ref().is_err_and(|e| e.fatal);
    match result {
        Ok(outcome) => store.finish_part(&job.id, 0, outcome),
        Err(error) if error.cancelled && cancelled => store.abort_from(&job.id, 0),
        Err(error) => store.fail_from(&job.id, 0, error.message),
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
    let begin = format!("BEGIN ISOLATION LEVEL {}", app.isolation.postgres_level());
    if let Err(error) = client.batch_execute(&begin).await {
        let error = SqlError::from(error);
        app.store().fail_from(&job.id, 0, error.message);
        return false;
    }
    for (index, sql) in job.sqls.iter().enumerate() {
        if index > 0 && !app.store().start_part(&job.id, index, conn.pid, client.cancel_token()) {
            // Cancelled between statements: the connection is dropped below, which also ends
            // the transaction, but roll back first so locks go before the status says ABORTED.
            let _ = client.batch_execute("ROLLBACK").await;
            app.store().abort_from(&job.id, index);
            return false;
        }
        match executor::run_statement(client, sql).await {
            Ok(outcome) => app.store().finish_part(&job.id, index, outcome),
            Err(error) => {
                let rolled_back = !error.fatal && client.batch_execute("ROLLBACK").await.is_ok();
                let mut store = app.store();
                let cancelled = store.cancel_requested(&job.id);
                if error.cancelled && cancelled {
                    store.abort_from(&job.id, index);
                } else {
                    store.fail_from(&job.id, index, error.message);
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
            store.fail_from(&job.id, job.sqls.len() - 1, error.message);
            !cancelled && !error.fatal
        }
    }
}
