//! Plans in, a report out: every planned row ends loaded, stale (an equal or newer change was
//! already in the target), or rejected with a reason — or the load fails as a whole with a
//! retriable error, leaving only whole committed transactions behind (which a retry finds
//! stale).
//!
//! Per table: read the target's columns (once per cold start, and once more in a batch whose
//! rows need a column the cached description lacks), fail the load when the table or its
//! metadata columns are missing (an operator creates them; every row of the stream would
//! otherwise be dead-lettered), set aside rows the target cannot take (drift, VARCHAR
//! overflow, numbers it would round…), render the apply SQL in the warehouse's
//! [`Dialect`](super::dialect::Dialect), run it; when a transaction fails permanently, bisect
//! it until the offending rows are isolated and load the rest. Only an error a row can cause
//! ([`DbErrorClass::blames_rows`]) is bisected: any other fails the load, and no row is
//! dead-lettered for it.
//!
//! A dry run ([`Loader::dry_run`]) makes every one of those decisions that needs no write: it
//! describes the targets and checks every row against them, renders the transactions, and
//! sends none.
//!
//! The loader speaks to the database only through [`Warehouse`] and [`WarehouseSession`]:
//! the Data API in the functions, a scripted warehouse in its unit tests
//! (`redshift::loader_tests`). Rows are named by their batch index ([`LoadReject::index`]),
//! never by the record: what a record was is the caller's to look up.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::client::DataApi;
use super::copy::{self, FieldKind};
use super::error::{DataApiError, DbErrorClass};
use super::sql::{self, ApplySpec, Transaction};
use super::staging::StagedObject;
use super::target::TargetTable;
use super::warehouse::{Warehouse, WarehouseSession};
use crate::config::{DeleteMode, DriftPolicy, LoadPath, TableName};
use crate::outcome::{Change, Reason, Stage};
use crate::plan::{PlannedRow, TablePlan};
use crate::rule::Rule;

/// How long a staged object's delete may run past the load's deadline: well inside the
/// invocation's margin (`DEADLINE_MARGIN_MS`, default 5 s), where a `DeleteObject` takes tens
/// of milliseconds.
const UNSTAGE_GRACE: Duration = Duration::from_millis(500);

/// A row the loader could not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReject {
    /// The batch index of the record whose change was refused ([`crate::plan::Planned::index`]).
    pub index: usize,
    /// The target the change was for.
    pub table: TableName,
    /// Where it failed: `Drift` (the target's shape) or `Load` (a value or the database).
    pub stage: Stage,
    /// The rules that refused it: rule names with their column, never a value.
    pub reasons: Vec<Reason>,
    /// The database's error class, for rows the database refused.
    pub error_class: Option<DbErrorClass>,
}

/// What a load did: counts, and the rows it did not write.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Rows written (inserted, updated or soft-deleted, or hard-deleted).
    pub rows_loaded: usize,
    /// Rows the target already held at an equal or newer position.
    pub rows_stale: usize,
    /// The rows not written, each with its reasons.
    pub rejects: Vec<LoadReject>,
    /// Committed transactions (`BatchExecuteStatement`s) that carried rows.
    pub transactions: usize,
    /// Of [`LoadReport::transactions`], those that staged their rows with `COPY` (the others
    /// inserted `VALUES`).
    pub copy_transactions: usize,
    /// Warehouse calls of this load ([`WarehouseSession::calls`]): Data API calls, polls
    /// and retries included.
    pub data_api_calls: u64,
    /// S3 calls for staged objects ([`WarehouseSession::s3_calls`]): puts, retries, deletes.
    pub s3_calls: u64,
    /// Bytes of SQL text submitted (every transaction, retries counted once).
    pub sql_bytes: u64,
    /// Bytes of staged objects written (compressed).
    pub staged_bytes: u64,
    /// Columns added to targets under `drift = "add"`.
    pub columns_added: usize,
    /// Calls and transactions repeated after a transient failure (throttling, conflicts,
    /// server errors, failed polls).
    pub retries: u32,
    /// Superseded changes that did not end superseded: tried because the later change of
    /// their key was rejected, or rejected because the target refuses them; each ends loaded,
    /// stale or rejected itself.
    pub promoted: usize,
    /// Wall-clock time of the load.
    pub elapsed: Duration,
}

/// A warehouse call that failed: the table being read or loaded, and the Data API's error.
#[derive(Debug, thiserror::Error)]
#[error("loading into {table} did not finish: {source}")]
pub struct WarehouseError {
    /// The target being read or loaded when it failed.
    pub table: TableName,
    /// Why: a permanent warehouse error, an error no row is to blame for, or the deadline.
    #[source]
    pub source: DataApiError,
}

/// A load that did not finish: the batch must be retried. What committed before it stays
/// committed, and the retry finds those rows stale. Each variant names the table, never a
/// value.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A warehouse call failed (see [`WarehouseError`]).
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// The target table does not exist (`DescribeTable` answered no column). Every row of the
    /// stream would fail alike, so none is dead-lettered: the batch fails, loudly, until an
    /// operator creates the table.
    #[error(
        "target table {table} does not exist: create it (`cdc ddl` prints its CREATE TABLE, `cdc check` checks \
         it); the batch is retried and nothing was dead-lettered"
    )]
    TargetTableMissing {
        /// The missing table.
        table: TableName,
    },
    /// The target lacks `_cdc_*` metadata columns the apply SQL writes: as with a missing
    /// table, the batch fails rather than dead-letter every row.
    #[error(
        "target table {table} lacks the metadata columns {}: add them (`cdc ddl` prints the table's DDL, \
         `cdc check` checks it); the batch is retried and nothing was dead-lettered",
        .columns.join(", ")
    )]
    MetadataColumnsMissing {
        /// The table.
        table: TableName,
        /// The missing metadata columns, in [`METADATA_COLUMNS`](super::sql::METADATA_COLUMNS)
        /// order.
        columns: Vec<&'static str>,
    },
}

impl LoadError {
    /// The table the load failed on.
    pub fn table(&self) -> &TableName {
        match self {
            LoadError::Warehouse(e) => &e.table,
            LoadError::TargetTableMissing { table } | LoadError::MetadataColumnsMissing { table, .. } => table,
        }
    }
}

fn warehouse_error(table: &TableName) -> impl FnOnce(DataApiError) -> LoadError + '_ {
    move |source| LoadError::Warehouse(WarehouseError { table: table.clone(), source })
}

/// Whether a load writes, or only decides what it would write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Add columns (`drift = "add"`), stage objects, run transactions.
    Write,
    /// Describe targets and check rows; send no write (see [`Loader::dry_run`]).
    DryRun,
}

/// The stage and rule of a row the apply SQL's report names (`_cdc_reject`, as text): one of
/// the rules its position guard, fill check and ledger check write; `None` for any other text.
fn reported(rule: &str) -> Option<(Stage, Rule)> {
    match rule.parse().ok()? {
        rule @ (Rule::PositionRegressed | Rule::UnavailableValue | Rule::StaleFill) => Some((Stage::Load, rule)),
        Rule::DeleteLedgerMissing => Some((Stage::Drift, Rule::DeleteLedgerMissing)),
        _ => None,
    }
}

/// How one table's rows are loaded: the path, how the staged file writes each column, and
/// whether anything is sent.
struct Path<'k> {
    load: LoadPath,
    kinds: &'k [FieldKind],
    pass: Pass,
}

/// A staged object and its compressed body.
type Object = (StagedObject, Vec<u8>);

/// Rendered transactions, each with its staged object and compressed body on the COPY path,
/// plus the rows that cannot be rendered (indices into the rows given).
#[derive(Default)]
struct Staged {
    transactions: Vec<(Transaction, Option<Object>)>,
    oversized: Vec<usize>,
    too_large: Vec<usize>,
    /// Rows a staged file cannot carry, with the column: `copy_unsupported_value`.
    unfit: Vec<(usize, Arc<str>)>,
}

/// A row the loader will not write: the row, the stage and reasons, the database's class.
type Rejected<'r, 'b> = (PlannedRow<'r, 'b>, Stage, Vec<Reason>, Option<DbErrorClass>);

/// What the target says of a row before any SQL is sent (the table and its metadata columns
/// are known to exist: [`Loader::ready_target`]).
fn check_row(
    target: &TargetTable,
    unknown: &HashSet<Arc<str>>,
    drift: DriftPolicy,
    change: &Change<'_>,
) -> Result<(), (Stage, Vec<Reason>)> {
    let drifted: Vec<Reason> = change
        .columns
        .iter()
        .filter(|c| unknown.contains(&c.name))
        .map(|c| Reason::column(c.name.clone(), Rule::Drift))
        .collect();
    let key_drifted = change.key_columns.iter().any(|k| unknown.contains(k));
    if !drifted.is_empty() && (drift != DriftPolicy::Ignore || key_drifted) {
        return Err((Stage::Drift, drifted));
    }
    let reasons = target.misfits(&change.columns);
    if !reasons.is_empty() {
        return Err((Stage::Load, reasons));
    }
    Ok(())
}

/// Loads plans into a [`Warehouse`] (the Data API unless said otherwise) in its
/// [`Dialect`](super::dialect::Dialect); holds the target-schema cache of a warm function.
#[derive(Debug)]
pub struct Loader<W = DataApi> {
    warehouse: W,
    targets: Mutex<HashMap<TableName, Arc<TargetTable>>>,
}

impl<W: Warehouse> Loader<W> {
    /// A loader into `warehouse`, with an empty target-schema cache.
    pub fn new(warehouse: W) -> Loader<W> {
        Loader { warehouse, targets: Mutex::new(HashMap::new()) }
    }

    /// The warehouse it loads into.
    pub fn warehouse(&self) -> &W {
        &self.warehouse
    }

    /// Does the delete ledger of `target`'s schema exist? A missing ledger is looked up again
    /// on every call (it may be created at any time); a present one is cached.
    async fn ledger_exists(
        &self,
        session: &W::Session<'_>,
        target: &TableName,
        deadline: Instant,
    ) -> Result<bool, LoadError> {
        let ledger = sql::delete_ledger(target);
        let exists = match self.cached(&ledger) {
            Some(cached) => cached.exists(),
            None => self.describe(session, &ledger, deadline).await?.exists(),
        };
        if !exists {
            tracing::warn!(
                table = %target,
                ledger = %ledger,
                "the delete ledger is missing: deletes it would record are dead-lettered (delete_ledger_missing); create it with `cdc ddl`"
            );
        }
        Ok(exists)
    }

    /// The columns of `name` as DescribeTable reports them, kept in the target-schema cache
    /// (a cold start's check of the configured columns primes it for the first batch). A
    /// cached description is answered without a call.
    ///
    /// Errors: the Data API's, as a [`WarehouseError`] naming the table.
    pub async fn describe_target(
        &self,
        name: &TableName,
        deadline: Instant,
    ) -> Result<Arc<TargetTable>, WarehouseError> {
        if let Some(target) = self.cached(name) {
            return Ok(target);
        }
        let session = self.warehouse.session();
        let described = session.describe_table(name, deadline).await;
        let target = Arc::new(described.map_err(|source| WarehouseError { table: name.clone(), source })?);
        self.remember(&target);
        Ok(target)
    }

    /// Forget cached target schemas (after DDL made outside the pipeline).
    pub fn forget_targets(&self) {
        self.targets.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The cached description of `name`, if any.
    fn cached(&self, name: &TableName) -> Option<Arc<TargetTable>> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Cache `target`, unless it does not exist: a missing table may be created before the
    /// next invocation.
    fn remember(&self, target: &Arc<TargetTable>) {
        let mut targets = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        if target.exists() {
            targets.insert(target.name.clone(), target.clone());
        } else {
            targets.remove(&target.name);
        }
    }

    /// `DescribeTable` of `name` now, whatever the cache holds; the cache then holds the answer.
    async fn describe(
        &self,
        session: &W::Session<'_>,
        name: &TableName,
        deadline: Instant,
    ) -> Result<Arc<TargetTable>, LoadError> {
        let target = Arc::new(session.describe_table(name, deadline).await.map_err(warehouse_error(name))?);
        self.remember(&target);
        Ok(target)
    }

    /// The target as `plan` needs it. The warm cache answers unless its description lacks
    /// something the batch needs (a metadata column, or a column the batch's rows carry):
    /// then the table is described again, once per table and batch, so that an `ALTER TABLE …
    /// ADD COLUMN` made since the cold start takes effect now rather than at the next cold
    /// start. Only then does drift (a column the target really lacks) follow the table's
    /// policy.
    ///
    /// Errors: [`LoadError::TargetTableMissing`] and [`LoadError::MetadataColumnsMissing`],
    /// each with an ERROR log line naming the table and the fix: the whole stream would fail
    /// alike, so the batch fails and is retried instead of dead-lettering every row.
    async fn ready_target(
        &self,
        session: &W::Session<'_>,
        plan: &TablePlan<'_, '_>,
        deadline: Instant,
    ) -> Result<Arc<TargetTable>, LoadError> {
        let name = plan.target();
        let lacks = |t: &TargetTable| {
            !t.exists()
                || !t.missing_metadata_columns().is_empty()
                || plan.columns.iter().any(|c| t.column(c).is_none())
        };
        let target = match self.cached(name) {
            Some(cached) if !lacks(&cached) => cached,
            _ => self.describe(session, name, deadline).await?,
        };
        if !target.exists() {
            tracing::error!(
                table = %name,
                fix = "create the table: `cdc ddl` prints its CREATE TABLE, `cdc check` checks it",
                "target table missing: the batch fails and is retried until it exists; nothing is dead-lettered"
            );
            return Err(LoadError::TargetTableMissing { table: name.clone() });
        }
        let missing = target.missing_metadata_columns();
        if !missing.is_empty() {
            tracing::error!(
                table = %name,
                missing = %missing.join(","),
                fix = "add the metadata columns: `cdc ddl` prints the table's DDL, `cdc check` checks it",
                "target table lacks metadata columns: the batch fails and is retried until it has them; nothing is dead-lettered"
            );
            return Err(LoadError::MetadataColumnsMissing { table: name.clone(), columns: missing });
        }
        Ok(target)
    }

    /// Load every plan (in order, one table after the other) by `deadline`. `now_micros`
    /// (microseconds since the epoch) becomes `_cdc_loaded_at`. Every row of the plans ends
    /// loaded, stale or in [`LoadReport::rejects`]; or the load fails with a [`LoadError`]
    /// (a warehouse error that blames no row, the deadline, or a target that is missing or
    /// lacks metadata columns) and the batch is to be retried.
    pub async fn load<'r>(
        &self,
        plans: &[TablePlan<'r, '_>],
        deadline: Instant,
        now_micros: i64,
    ) -> Result<LoadReport, LoadError> {
        self.run(plans, deadline, now_micros, Pass::Write).await
    }

    /// What [`Loader::load`] would do, without a write: the same `DescribeTable`s (re-read and
    /// errors included), the same checks of every row against the target (drift, VARCHAR
    /// bytes, numbers, CHAR, NOT NULL), fall-backs to earlier changes, and the same rendering
    /// (rows too large, values a staged file cannot carry); no `ALTER TABLE`, staged object or
    /// transaction. [`LoadReport::rows_loaded`] counts the rows that would be sent. What only
    /// the apply SQL decides against the stored rows cannot be known without running it: a
    /// row the position guard finds stale or rejects (`position_regressed`,
    /// `unavailable_value`, `stale_fill`, `delete_ledger_missing`), or one the database
    /// refuses, counts as loaded here. Under `drift = "add"` the columns are taken as added.
    pub async fn dry_run<'r>(
        &self,
        plans: &[TablePlan<'r, '_>],
        deadline: Instant,
        now_micros: i64,
    ) -> Result<LoadReport, LoadError> {
        self.run(plans, deadline, now_micros, Pass::DryRun).await
    }

    async fn run<'r>(
        &self,
        plans: &[TablePlan<'r, '_>],
        deadline: Instant,
        now_micros: i64,
        pass: Pass,
    ) -> Result<LoadReport, LoadError> {
        let started = Instant::now();
        let session = self.warehouse.session();
        let mut report = LoadReport::default();
        for plan in plans {
            // Boxed (one allocation per table and batch). Unboxed, the futures below (bisection,
            // the warehouse's calls and their retry loops) nest inside the ingest binary's
            // `lambda_runtime::run` future, whose layout then needed a query depth of about 125
            // (rustc's limit is 128), and past 128 once the Data API client had its retry loop:
            // "queries overflow the depth limit". Behind the box it builds with a limit of 90.
            let table: Pin<Box<dyn Future<Output = Result<(), LoadError>> + Send + '_>> =
                Box::pin(self.load_table(&session, plan, deadline, now_micros, pass, &mut report));
            table.await?;
        }
        report.data_api_calls = session.calls();
        report.s3_calls = session.s3_calls();
        report.retries = u32::try_from(session.retries()).unwrap_or(u32::MAX);
        report.elapsed = started.elapsed();
        Ok(report)
    }

    async fn load_table<'r>(
        &self,
        session: &W::Session<'_>,
        plan: &TablePlan<'r, '_>,
        deadline: Instant,
        now_micros: i64,
        pass: Pass,
        report: &mut LoadReport,
    ) -> Result<(), LoadError> {
        let name = plan.target();
        let Some(first) = plan.rows.first() else { return Ok(()) };
        let mut target = self.ready_target(session, plan, deadline).await?;
        let unknown: Vec<Arc<str>> = plan.columns.iter().filter(|c| target.column(c).is_none()).cloned().collect();
        let mut added: HashSet<Arc<str>> = HashSet::new();
        if !unknown.is_empty() && plan.table.drift == DriftPolicy::Add {
            match pass {
                Pass::Write => {
                    report.columns_added += self.add_columns(session, plan, &unknown, deadline).await?;
                    target = self.describe(session, name, deadline).await?;
                }
                // Taken as added: their rows are checked as the real run checks them after the
                // ALTER TABLE, which only fails when a concurrent loader raced it.
                Pass::DryRun => added.extend(unknown.iter().cloned()),
            }
        }
        let unknown: HashSet<Arc<str>> =
            plan.columns.iter().filter(|c| target.column(c).is_none() && !added.contains(*c)).cloned().collect();
        // The columns the batch sends: the apply SQL leaves the target's others alone.
        let columns: Vec<Arc<str>> = plan.columns.iter().filter(|c| !unknown.contains(*c)).cloned().collect();
        let key = first.change.key_columns.clone();
        let ledger = self.ledger_exists(session, name, deadline).await?;
        let dialect = self.warehouse.dialect();
        let super_columns: Vec<bool> =
            columns.iter().map(|c| target.column(c).is_some_and(|t| dialect.is_document_type(&t.type_name))).collect();
        let spec = ApplySpec {
            target: name,
            columns: &columns,
            key: &key,
            delete_mode: plan.table.delete_mode,
            lock: plan.table.lock,
            loaded_at_micros: now_micros,
            ledger,
            super_columns: &super_columns,
        };
        let kinds: Vec<FieldKind> = columns
            .iter()
            .map(|c| target.column(c).map_or(FieldKind::Other, |t| FieldKind::of(&t.type_name)))
            .collect();
        let path = Path { load: plan.table.load, kinds: &kinds, pass };
        let storable = |c: &Change<'_>| check_row(&target, &unknown, plan.table.drift, c).is_ok();
        // An earlier change the target refuses is rejected on its own, even when a later change
        // supersedes it: nothing the source sent is dropped unseen. (Fall-backs skip it.)
        for row in &plan.rows {
            for e in &row.earlier {
                if let Err((stage, reasons)) = check_row(&target, &unknown, plan.table.drift, e.change) {
                    report.promoted += 1;
                    report.rejects.push(LoadReject {
                        index: e.index,
                        table: name.clone(),
                        stage,
                        reasons,
                        error_class: None,
                    });
                }
            }
        }
        // Rejected rows fall back to the earlier change of their key, which is checked and
        // loaded in turn: the warehouse gets the latest change that can be stored.
        let mut pending: Vec<PlannedRow<'r, '_>> = plan.rows.clone();
        while !pending.is_empty() {
            let mut loadable = Vec::with_capacity(pending.len());
            let mut rejected = Vec::new();
            for row in pending.drain(..) {
                if let Err((stage, reasons)) = check_row(&target, &unknown, plan.table.drift, row.received) {
                    rejected.push((row, stage, reasons, None));
                    continue;
                }
                let row = row.prepared(&storable);
                if row.unknown {
                    rejected.push((row, Stage::Load, vec![Reason::record(Rule::UnavailableValue)], None));
                    continue;
                }
                match check_row(&target, &unknown, plan.table.drift, &row.change) {
                    Ok(()) => loadable.push(row),
                    Err((stage, reasons)) => rejected.push((row, stage, reasons, None)),
                }
            }
            rejected.extend(self.apply_with_bisection(session, &spec, &path, loadable, deadline, report).await?);
            for (row, stage, reasons, class) in rejected {
                if let Some(earlier) = row.fall_back(&storable) {
                    report.promoted += 1;
                    pending.push(earlier);
                }
                report.rejects.push(LoadReject {
                    index: row.index,
                    table: name.clone(),
                    stage,
                    reasons,
                    error_class: class,
                });
            }
        }
        Ok(())
    }

    /// Run the rows; when a transaction fails permanently, split it — first by the insert
    /// statement the database blamed, then in halves — until single rows are left. Returns
    /// the rows the database would not take.
    async fn apply_with_bisection<'r, 'b>(
        &self,
        session: &W::Session<'_>,
        spec: &ApplySpec<'_>,
        path: &Path<'_>,
        rows: Vec<PlannedRow<'r, 'b>>,
        deadline: Instant,
        report: &mut LoadReport,
    ) -> Result<Vec<Rejected<'r, 'b>>, LoadError> {
        let mut rejected = Vec::new();
        // Each subset with the split it came from (halves of one split share an id): when both
        // halves of a split fail alike outside the stage inserts, no row is to blame.
        let mut queue: Vec<(Vec<usize>, Option<usize>)> = vec![((0..rows.len()).collect(), None)];
        let mut half_failures: HashMap<usize, (DbErrorClass, Option<usize>)> = HashMap::new();
        let mut splits = 0;
        while let Some((subset, split)) = queue.pop() {
            if subset.is_empty() {
                continue;
            }
            let changes: Vec<&Change<'_>> = subset.iter().map(|&i| rows[i].change.as_ref()).collect();
            let rendered = self.render(session, spec, path, &changes)?;
            for &j in &rendered.oversized {
                rejected.push((rows[subset[j]].clone(), Stage::Load, vec![Reason::record(Rule::RowTooLarge)], None));
            }
            for &j in &rendered.too_large {
                let reasons = vec![Reason::record(Rule::StatementTooLarge)];
                rejected.push((rows[subset[j]].clone(), Stage::Load, reasons, None));
            }
            for (j, column) in &rendered.unfit {
                let reasons = vec![Reason::column(column.clone(), Rule::CopyUnsupportedValue)];
                rejected.push((rows[subset[*j]].clone(), Stage::Load, reasons, None));
            }
            if path.pass == Pass::DryRun {
                // Every row rendered into a transaction would be sent: counted as loaded, since
                // what the apply SQL and the database decide is known only by running it —
                // except a delete under `delete_mode = "hard"` without the schema's ledger,
                // which the apply SQL rejects whatever the target holds (`delete_ledger_missing`).
                for (tx, _) in &rendered.transactions {
                    for &j in &tx.rows {
                        let row = &rows[subset[j]];
                        if row.change.deleted && spec.delete_mode == DeleteMode::Hard && !spec.ledger {
                            let reasons = vec![Reason::record(Rule::DeleteLedgerMissing)];
                            rejected.push((row.clone(), Stage::Drift, reasons, None));
                        } else {
                            report.rows_loaded += 1;
                        }
                    }
                }
                continue;
            }
            for (tx, staged) in rendered.transactions {
                let tx_rows: Vec<usize> = tx.rows.iter().map(|&j| subset[j]).collect();
                report.sql_bytes += tx.statements.iter().map(|s| s.len() as u64).sum::<u64>();
                let result = match &staged {
                    Some((object, body)) => {
                        report.staged_bytes += body.len() as u64;
                        let version = session
                            .stage(object, body.clone(), deadline)
                            .await
                            .map_err(warehouse_error(spec.target))?;
                        let result = session.run_transaction(&tx.statements, deadline).await;
                        // Committed or not, the object has served. Its delete may run a little
                        // past the load's deadline (into the invocation's margin): a commit that
                        // ends at the deadline must not leave its rows staged. Only a crash, or a
                        // delete S3 refuses, leaves it to the lifecycle rule.
                        session.unstage(object, version.as_deref(), deadline.max(Instant::now()) + UNSTAGE_GRACE).await;
                        result
                    }
                    None => session.run_transaction(&tx.statements, deadline).await,
                };
                if result.is_ok() && staged.is_some() {
                    report.copy_transactions += 1;
                }
                match result {
                    Ok(committed) => {
                        let stale = tx.stale_rows(&committed.rows).min(tx_rows.len());
                        let mut refused = 0;
                        if tx.rejected_rows(&committed.rows) > 0 {
                            // Committed without these rows; which ones is in the report. If it
                            // cannot be read the batch fails: its retry finds the committed
                            // rows stale and rejects these again.
                            let report = session
                                .report_rows(&committed.statement_id, tx.report_statement, deadline)
                                .await
                                .map_err(warehouse_error(spec.target))?;
                            for (row, rule) in report {
                                let Some(&i) = usize::try_from(row).ok().and_then(|r| subset.get(r)) else { continue };
                                let Some((stage, rule)) = reported(&rule) else {
                                    // Not a rule the apply SQL writes: nothing says what became
                                    // of the row, so the batch fails rather than guess.
                                    let source = DataApiError::Api {
                                        operation: "GetStatementResult",
                                        code: "UnexpectedReportRule".into(),
                                        status: None,
                                    };
                                    return Err(warehouse_error(spec.target)(source));
                                };
                                rejected.push((rows[i].clone(), stage, vec![Reason::record(rule)], None));
                                refused += 1;
                            }
                        }
                        report.rows_stale += stale;
                        report.rows_loaded += tx_rows.len().saturating_sub(stale + refused);
                        report.transactions += 1;
                    }
                    Err(DataApiError::Statement { class, sub_statement, statement_id, status })
                        if class.blames_rows() =>
                    {
                        let in_stage_insert = sub_statement.and_then(|s| tx.rows_of_statement(s)).is_some();
                        if let Some(split) = split.filter(|_| !in_stage_insert) {
                            let failed = (class, sub_statement.map(|s| s.saturating_sub(tx.head + tx.inserts.len())));
                            if half_failures.get(&split) == Some(&failed) {
                                tracing::warn!(table = %spec.target, class = %class, "both halves of a split failed alike: no row is to blame, the batch fails");
                                let source = DataApiError::Statement { statement_id, status, sub_statement, class };
                                return Err(warehouse_error(spec.target)(source));
                            }
                            half_failures.insert(split, failed);
                        }
                        if let [only] = tx_rows.as_slice() {
                            let reasons = vec![Reason::record(Rule::RejectedByDatabase)];
                            rejected.push((rows[*only].clone(), Stage::Load, reasons, Some(class)));
                            continue;
                        }
                        tracing::debug!(table = %spec.target, rows = tx_rows.len(), class = %class, "bisecting a failed transaction");
                        let suspects: Option<Vec<usize>> = sub_statement
                            .and_then(|s| tx.rows_of_statement(s))
                            .filter(|s| s.len() < tx.rows.len())
                            .map(|s| s.iter().map(|&j| subset[j]).collect());
                        splits += 1;
                        match suspects {
                            Some(suspects) => {
                                let suspect_set: HashSet<usize> = suspects.iter().copied().collect();
                                let rest = tx_rows.iter().copied().filter(|i| !suspect_set.contains(i)).collect();
                                queue.push((rest, Some(splits)));
                                queue.push((suspects, Some(splits)));
                            }
                            None => {
                                let (left, right) = tx_rows.split_at(tx_rows.len() / 2);
                                queue.push((right.to_vec(), Some(splits)));
                                queue.push((left.to_vec(), Some(splits)));
                            }
                        }
                    }
                    Err(source) => {
                        if matches!(source, DataApiError::Statement { class: DbErrorClass::UndefinedObject, .. }) {
                            // The cached columns are wrong: the retry reads the table again.
                            self.targets.lock().unwrap_or_else(|e| e.into_inner()).remove(spec.target);
                        }
                        return Err(warehouse_error(spec.target)(source));
                    }
                }
            }
        }
        Ok(rejected)
    }

    /// The transactions for `rows` on the table's load path: on the COPY path one transaction
    /// that `COPY`s a staged object (its body compressed), and the rows the staged file cannot
    /// carry exactly ([`copy::StagedFile::unfit`]), which are rejected rather than sent as
    /// literals.
    fn render(
        &self,
        session: &W::Session<'_>,
        spec: &ApplySpec<'_>,
        path: &Path<'_>,
        rows: &[&Change<'_>],
    ) -> Result<Staged, LoadError> {
        let dialect = self.warehouse.dialect();
        if path.load == LoadPath::Insert {
            let rendered = dialect.apply_sql(spec, rows);
            return Ok(Staged {
                transactions: rendered.transactions.into_iter().map(|t| (t, None)).collect(),
                oversized: rendered.oversized,
                too_large: rendered.too_large,
                unfit: Vec::new(),
            });
        }
        let Some(object) = session.staged_object(spec.target) else {
            let source =
                DataApiError::Staging { operation: "PutObject", code: "NoStagingLocation".into(), status: None };
            return Err(warehouse_error(spec.target)(source));
        };
        let file = copy::stage_file(spec, path.kinds, rows);
        let mut staged = Staged::default();
        match copy::transaction(spec, path.kinds, rows, &file, &object.source) {
            Ok(Some(tx)) => {
                // A dry run sends nothing: its file need not be compressed.
                let body = if path.pass == Pass::DryRun { Vec::new() } else { copy::compress(&file.csv) };
                staged.transactions.push((tx, Some((object, body))));
            }
            Ok(None) => {}
            Err(copy::TooLarge) => staged.too_large.extend(&file.rows),
        }
        staged.unfit = file.unfit.iter().map(|&(row, column)| (row, spec.columns[column].clone())).collect();
        Ok(staged)
    }

    /// `ALTER TABLE … ADD COLUMN` for columns the target lacks (`drift = "add"`). A column
    /// that appeared meanwhile (a concurrent loader added it) is not an error.
    async fn add_columns(
        &self,
        session: &W::Session<'_>,
        plan: &TablePlan<'_, '_>,
        unknown: &[Arc<str>],
        deadline: Instant,
    ) -> Result<usize, LoadError> {
        let mut added = 0;
        for column in unknown {
            let sample = plan
                .rows
                .iter()
                .find_map(|r| r.change.columns.iter().find(|c| &c.name == column && !c.value.is_null()));
            // The source field as `[tables.change_schema]` renames and casts it.
            let field = plan.rows.iter().find_map(|r| {
                r.change.row_schema.as_ref().and_then(|s| {
                    s.fields
                        .iter()
                        .filter_map(|f| super::ddl::mapped_field(&plan.table.change_schema, f))
                        .find(|f| &f.column == column)
                })
            });
            let field = field.or_else(|| super::ddl::cast_field(&plan.table.change_schema, column));
            let mask = plan.table.column(column).and_then(|c| c.mask.as_ref());
            let dialect = self.warehouse.dialect();
            let sql_type = dialect.column_type(field.as_ref(), sample.map(|c| &c.value), mask);
            let statement = dialect.add_column(plan.target(), column, &sql_type);
            match session.run_transaction(&[statement], deadline).await {
                Ok(_) => {
                    tracing::info!(table = %plan.target(), column = %column, sql_type = %sql_type, "added a column the source has");
                    added += 1;
                }
                Err(DataApiError::Statement { .. }) => {
                    let now = self.describe(session, plan.target(), deadline).await?;
                    if now.column(column).is_none() {
                        tracing::warn!(table = %plan.target(), column = %column, "could not add column; its rows are dead-lettered");
                    }
                }
                Err(source) => return Err(warehouse_error(plan.target())(source)),
            }
        }
        Ok(added)
    }
}
