//! `redshift-data-local`: a local Amazon Redshift Data API emulator that runs the SQL on
//! PostgreSQL 15, so tests can prove "loads into Redshift" with real HTTP, a real AWS SDK as
//! the client and a real SQL engine.
//!
//! It speaks AWS JSON 1.1 on `POST /` (`X-Amz-Target: RedshiftData.<Op>`) and implements
//! ExecuteStatement, BatchExecuteStatement, DescribeStatement, GetStatementResult,
//! DescribeTable, CancelStatement and ListStatements. Statements run asynchronously (SUBMITTED →
//! PICKED → STARTED → FINISHED / FAILED / ABORTED); a batch runs in one transaction at the configured
//! [`Isolation`] (Redshift's SNAPSHOT by default, as PostgreSQL `REPEATABLE READ`).
//! The request's `Database` picks the database on the PostgreSQL server of `database_url`.
//! Redshift's `COPY … FROM 's3://…'` (CSV, GZIP) reads from the S3 endpoint of
//! [`EmulatorConfig::s3_endpoint`] and reports bad rows in `stl_load_errors`.
//! See the crate README for flags, the fault spec and the deliberate differences from AWS.
//!
//! # Library use
//!
//! Start an emulator inside a test's own tokio runtime and point the SDK at it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), redshift_data_local::Error> {
//! use redshift_data_local::{EmulatorConfig, spawn};
//!
//! let config = EmulatorConfig::new("postgres://postgres@127.0.0.1:5432/postgres")
//!     .with_faults("throttle=0.1,seed=7".parse()?);
//! let emulator = spawn(config).await?;
//! // e.g. AWS_ENDPOINT_URL_REDSHIFT_DATA = emulator.endpoint_url
//! println!("{}", emulator.endpoint_url);
//! # Ok(()) }
//! ```
//!
//! [`serve`] runs on a listener you bound yourself and only returns on an I/O error;
//! [`spawn`] binds `127.0.0.1:0`, runs [`serve`] on a task and returns at once.

mod copy;
mod errors;
mod executor;
mod faults;
mod literals;
mod ops;
mod record;
mod runner;
mod server;
mod shims;
mod store;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use errors::{ASCII_ONLY_ERROR, CONCURRENT_TRANSACTION_ERROR, NUMERIC_OVERFLOW_ERROR, SUPER_STRING_ERROR};
pub use executor::MAX_RUNNING;
pub use faults::{ABORT_QUERY_ERROR, DISK_FULL_ERROR, FaultSpec, FaultSpecError, RESIZE_ERROR, SERIALIZATION_ERROR};
pub use ops::{MAX_ACTIVE_STATEMENTS, MAX_BATCH_STATEMENTS, MAX_SQL_BYTES, MAX_WAIT_SECONDS, RESULT_PAGE_ROWS};
pub use record::RECORD_ENV;

/// The isolation level of the emulated database, which BatchExecuteStatement transactions run
/// at. Redshift sets it per database (`CREATE DATABASE … ISOLATION LEVEL { SERIALIZABLE |
/// SNAPSHOT }`); SNAPSHOT is the default for new clusters and workgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Redshift SNAPSHOT: PostgreSQL `REPEATABLE READ` (write skew commits, a concurrent update
    /// of the same row fails).
    #[default]
    Snapshot,
    /// Redshift SERIALIZABLE: PostgreSQL `SERIALIZABLE` (write skew fails with `1023`).
    Serializable,
}

impl Isolation {
    /// The PostgreSQL level a batch transaction is opened with.
    pub fn postgres_level(self) -> &'static str {
        match self {
            Isolation::Snapshot => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

impl FromStr for Isolation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "snapshot" => Ok(Isolation::Snapshot),
            "serializable" => Ok(Isolation::Serializable),
            other => Err(format!("unknown isolation `{other}` (expected snapshot or serializable)")),
        }
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isolation::Snapshot => "snapshot",
            Isolation::Serializable => "serializable",
        })
    }
}

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// PostgreSQL URL, e.g. `postgres://postgres@127.0.0.1:5432/postgres`. Its database name is
    /// replaced by each request's `Database`.
    pub database_url: String,
    /// Faults to inject (none by default); can be replaced at runtime with `POST /__faults`.
    pub faults: FaultSpec,
    /// The isolation level of batch transactions (SNAPSHOT by default).
    pub isolation: Isolation,
    /// Statements running on PostgreSQL at once (32 by default); others wait in PICKED.
    pub max_running: usize,
    /// A file to append every received SQL statement to, as one JSON line `{"sql": "..."}`.
    /// [`EmulatorConfig::new`] takes it from `REDSHIFT_DATA_LOCAL_RECORD` when that is set.
    pub record: Option<PathBuf>,
    /// The S3 endpoint COPY reads from, e.g. a local S3 server's `http://127.0.0.1:<port>`.
    /// `None` (the default) leaves it to the AWS SDK: `AWS_ENDPOINT_URL_S3`, then
    /// `AWS_ENDPOINT_URL`, then AWS. Requests use path-style addressing.
    pub s3_endpoint: Option<String>,
}

impl EmulatorConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        EmulatorConfig {
            database_url: database_url.into(),
            faults: FaultSpec::default(),
            isolation: Isolation::default(),
            max_running: MAX_RUNNING,
            record: std::env::var_os(RECORD_ENV).filter(|v| !v.is_empty()).map(PathBuf::from),
            s3_endpoint: None,
        }
    }

    /// The S3 endpoint COPY reads from (see [`EmulatorConfig::s3_endpoint`]).
    pub fn with_s3_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.s3_endpoint = Some(endpoint.into());
        self
    }

    pub fn with_faults(mut self, faults: FaultSpec) -> Self {
        self.faults = faults;
        self
    }

    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    pub fn with_max_running(mut self, max_running: usize) -> Self {
        self.max_running = max_running;
        self
    }

    /// Records received SQL to `path` (see [`EmulatorConfig::record`]); `None` turns it off.
    pub fn with_record(mut self, path: Option<PathBuf>) -> Self {
        self.record = path;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid database URL: {0}")]
    DatabaseUrl(String),
    #[error("invalid fault spec: {0}")]
    Faults(#[from] FaultSpecError),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A running emulator started by [`spawn`]. Dropping it leaves the server running until its
/// runtime ends; call [`RunningEmulator::shutdown`] to stop it earlier.
#[derive(Debug)]
pub struct RunningEmulator {
    /// `http://127.0.0.1:<port>`, for `endpoint_url` / `AWS_ENDPOINT_URL_REDSHIFT_DATA`.
    pub endpoint_url: String,
    pub local_addr: SocketAddr,
    pub handle: tokio::task::JoinHandle<Result<(), Error>>,
}

impl RunningEmulator {
    /// Stops accepting requests (statements still running on PostgreSQL finish on their own).
    pub fn shutdown(self) {
        self.handle.abort();
    }
}

/// State shared by all requests and statement runners.
pub(crate) struct App {
    store: Mutex<store::Store>,
    pool: executor::Pool,
    faults: faults::Faults,
    isolation: Isolation,
    recorder: Option<record::Recorder>,
    /// COPY's S3 client, built on the first COPY.
    s3: copy::s3::S3,
}

impl App {
    fn new(config: &EmulatorConfig) -> Result<App, Error> {
        let pg: tokio_postgres::Config = config.database_url.parse().map_err(|e| Error::DatabaseUrl(format!("{e}")))?;
        let recorder = match &config.record {
            Some(path) => Some(
                record::Recorder::open(path)
                    .map_err(|source| Error::Io { context: "opening the record file", source })?,
            ),
            None => None,
        };
        Ok(App {
            store: Mutex::new(store::Store::new()),
            pool: executor::Pool::new(pg, config.max_running),
            faults: faults::Faults::new(config.faults.clone()),
            isolation: config.isolation,
            recorder,
            s3: copy::s3::S3::new(config.s3_endpoint.clone()),
        })
    }

    /// The store lock. Never held across an await.
    fn store(&self) -> MutexGuard<'_, store::Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves the Data API on `listener` until an I/O error.
pub async fn serve(listener: tokio::net::TcpListener, config: EmulatorConfig) -> Result<(), Error> {
    let app = App::new(&config)?;
    serve_app(listener, std::sync::Arc::new(app), config).await
}

async fn serve_app(
    listener: tokio::net::TcpListener,
    app: std::sync::Arc<App>,
    config: EmulatorConfig,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(|source| Error::Io { context: "listener address", source })?;
    tracing::info!(
        listen = %addr,
        postgres = %executor::describe_config(app.pool.config()),
        faults = %config.faults,
        isolation = %config.isolation,
        record = %config.record.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
        s3_endpoint = %config.s3_endpoint.as_deref().unwrap_or_default(),
        "redshift-data-local listening"
    );
    axum::serve(listener, server::router(app)).await.map_err(|source| Error::Io { context: "serving HTTP", source })
}

/// Binds `127.0.0.1:0`, starts [`serve`] on a task of the current runtime and returns its URL.
pub async fn spawn(config: EmulatorConfig) -> Result<RunningEmulator, Error> {
    // Fail here, not inside the task, on a bad URL or record file.
    let app = std::sync::Arc::new(App::new(&config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| Error::Io { context: "binding 127.0.0.1:0", source })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Io { context: "listener address", source })?;
    let handle = tokio::spawn(serve_app(listener, app, config));
    Ok(RunningEmulator { endpoint_url: format!("http://{local_addr}"), local_addr, handle })
}
