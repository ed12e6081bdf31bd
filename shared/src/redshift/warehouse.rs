//! The seam between the [`Loader`](super::Loader) and the database it loads into: what the
//! loader asks of a warehouse, and nothing of how it is reached.
//!
//! A [`Warehouse`] is built once per cold start and shared by invocations; each load opens a
//! [`WarehouseSession`], which counts its own calls and retries (concurrent invocations of
//! one warm function share the warehouse but report their own numbers). The Data API
//! ([`DataApi`](super::DataApi), [`Session`](super::client::Session)) is the implementation
//! the functions use; the loader's unit tests script one (`redshift::scripted`).
//!
//! The session's operations are those of the Data API as the apply SQL uses it: a transaction
//! is a list of statements run as one (`BatchExecuteStatement`), each statement's row count
//! comes back with the commit, and one statement's rows can be read afterwards
//! (`GetStatementResult`). Loading through staged objects (`load = "copy"`) adds staging and
//! deleting an object next to these, and runs the `COPY` as a statement of a transaction: the
//! loader's plan-to-transactions flow stays as it is.
//!
//! Errors are [`DataApiError`]s whatever the warehouse: a service error (`Api`), no usable
//! answer (`Transport`), a statement that failed (`Statement`, with its class from the
//! warehouse's [`Dialect::classify_error`]) or the deadline (`Deadline`). Like every error of
//! the crate they carry codes and classes, never a value.

use std::future::Future;

use tokio::time::Instant;

use super::dialect::Dialect;
use super::error::DataApiError;
use super::staging::StagedObject;
use super::target::TargetTable;
use crate::config::TableName;

/// A committed transaction: its id and the row count of every statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The warehouse's id of the whole transaction (the Data API's `BatchExecuteStatement`
    /// id), for [`WarehouseSession::report_rows`].
    pub statement_id: String,
    /// Rows each statement affected or returned (`ResultRows`), in statement order.
    pub rows: Vec<i64>,
}

/// A database the loader can load into: a source of [`WarehouseSession`]s, and the
/// [`Dialect`] its SQL is written in.
pub trait Warehouse: Send + Sync {
    /// One load's connection to the warehouse, borrowing it.
    type Session<'a>: WarehouseSession
    where
        Self: 'a;

    /// A new session, with its own counts of calls and retries.
    fn session(&self) -> Self::Session<'_>;

    /// The SQL dialect of this warehouse: identifiers, literals, types, the apply SQL.
    fn dialect(&self) -> &dyn Dialect;
}

/// What a load asks of the warehouse. Every operation keeps `deadline` (no call or pause ends
/// past it: the result is then [`DataApiError::Deadline`]) and retries what is worth retrying
/// within it; an error it returns is final for this load.
pub trait WarehouseSession: Send + Sync {
    /// Run `statements` as one transaction and wait for its end: [`Committed`] with the row
    /// count of every statement, in order, or the error that stopped it — for a statement that
    /// failed, [`DataApiError::Statement`] with the failing statement's 0-based index
    /// (`sub_statement`) when the warehouse names it. Nothing of a failed transaction stays.
    fn run_transaction(
        &self,
        statements: &[String],
        deadline: Instant,
    ) -> impl Future<Output = Result<Committed, DataApiError>> + Send;

    /// The rows statement `sub_statement` (0-based) of the committed transaction
    /// `statement_id` returned, as `(integer, text)` pairs: the apply SQL's report of rejected
    /// rows (`_cdc_row`, rule). Rows of another shape are an error.
    fn report_rows(
        &self,
        statement_id: &str,
        sub_statement: usize,
        deadline: Instant,
    ) -> impl Future<Output = Result<Vec<(i64, String)>, DataApiError>> + Send;

    /// The columns of `table` as the warehouse describes them; a table that does not exist
    /// comes back with no columns ([`TargetTable::exists`] is false).
    fn describe_table(
        &self,
        table: &TableName,
        deadline: Instant,
    ) -> impl Future<Output = Result<TargetTable, DataApiError>> + Send;

    /// A new object to stage a `COPY` into `table` from; `None` when the warehouse has no
    /// staging location (its loads can only `INSERT`).
    fn staged_object(&self, table: &TableName) -> Option<StagedObject>;

    /// Write `body` (the compressed file) as `object`, retrying what is worth retrying: the
    /// object's version, if the store versions objects.
    fn stage(
        &self,
        object: &StagedObject,
        body: Vec<u8>,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<String>, DataApiError>> + Send;

    /// Delete `object` (the `version` [`WarehouseSession::stage`] returned), once its
    /// transaction ended (committed or not). Best effort: a failure is logged, and the staging
    /// prefix's lifecycle rule removes the object later.
    fn unstage(
        &self,
        object: &StagedObject,
        version: Option<&str>,
        deadline: Instant,
    ) -> impl Future<Output = ()> + Send;

    /// Calls made to the warehouse in this session, every attempt and poll counted.
    fn calls(&self) -> u64;

    /// S3 calls made for staged objects in this session, every attempt counted.
    fn s3_calls(&self) -> u64;

    /// Calls and transactions this session repeated after a transient failure.
    fn retries(&self) -> u64;
}
