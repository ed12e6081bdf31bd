//! Plans in, a report out: every planned row ends loaded, stale (an equal or newer change was
//! already in the target), or rejected with a reason — or the load fails as a whole with a
//! retriable error, leaving only whole committed transactions behind (which a retry finds
//! stale).
//!
//! Per table: read the target's columns (once per cold start), set aside rows the target
//! cannot take (missing table or metadata columns, drift, VARCHAR overflow), render the apply
//! SQL, run it; when a transaction fails permanently, bisect it until the offending rows are
//! isolated and load the rest.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::client::{DataApi, Session};
use super::error::{DataApiError, DbErrorClass};
use super::sql::{self, ApplySpec};
use super::target::TargetTable;
use super::types::{Dialect, column_type};
use crate::config::{DriftPolicy, TableName};
use crate::event::KafkaRecord;
use crate::outcome::{Reason, Stage};
use crate::plan::{PlannedRow, TablePlan};

/// A row the loader could not write.
#[derive(Debug, Clone)]
pub struct LoadReject<'r> {
    pub record: &'r KafkaRecord<'r>,
    pub table: TableName,
    pub stage: Stage,
    pub reasons: Vec<Reason>,
    /// The database's error class, for rows the database refused.
    pub error_class: Option<DbErrorClass>,
}

#[derive(Debug, Default)]
pub struct LoadReport<'r> {
    /// Rows written (inserted, updated or soft-deleted, or hard-deleted).
    pub rows_loaded: usize,
    /// Rows the target already held at an equal or newer position.
    pub rows_stale: usize,
    pub rejects: Vec<LoadReject<'r>>,
    /// Committed `BatchExecuteStatement` transactions.
    pub transactions: usize,
    /// Data API calls of this load, including polls and retries.
    pub data_api_calls: u64,
    /// Columns added to targets under `drift = "add"`.
    pub columns_added: usize,
    /// Extra attempts committed transactions needed (throttling, conflicts…).
    pub retries: u32,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("loading into {table} did not finish: {source}")]
pub struct LoadError {
    pub table: TableName,
    #[source]
    pub source: DataApiError,
}

/// Loads plans through the Data API; holds the target-schema cache of a warm function.
#[derive(Debug)]
pub struct Loader {
    api: DataApi,
    targets: Mutex<HashMap<TableName, Arc<TargetTable>>>,
}

impl Loader {
    pub fn new(api: DataApi) -> Loader {
        Loader { api, targets: Mutex::new(HashMap::new()) }
    }

    pub fn api(&self) -> &DataApi {
        &self.api
    }

    /// Forget cached target schemas (after DDL made outside the pipeline).
    pub fn forget_targets(&self) {
        self.targets.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    async fn target(
        &self,
        session: &Session<'_>,
        name: &TableName,
        deadline: Instant,
        refresh: bool,
    ) -> Result<Arc<TargetTable>, LoadError> {
        if !refresh && let Some(target) = self.targets.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(target.clone());
        }
        let target = Arc::new(
            session.describe_table(name, deadline).await.map_err(|source| LoadError { table: name.clone(), source })?,
        );
        // A missing table is not cached: it may be created before the next invocation.
        if target.exists() {
            self.targets.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), target.clone());
        }
        Ok(target)
    }

    /// Load every plan. `now_micros` becomes `_cdc_loaded_at`.
    pub async fn load<'r>(
        &self,
        plans: &[TablePlan<'r, '_>],
        deadline: Instant,
        now_micros: i64,
    ) -> Result<LoadReport<'r>, LoadError> {
        let started = Instant::now();
        let session = self.api.session();
        let mut report = LoadReport::default();
        for plan in plans {
            self.load_table(&session, plan, deadline, now_micros, &mut report).await?;
        }
        report.data_api_calls = session.calls();
        report.elapsed = started.elapsed();
        Ok(report)
    }

    async fn load_table<'r>(
        &self,
        session: &Session<'_>,
        plan: &TablePlan<'r, '_>,
        deadline: Instant,
        now_micros: i64,
        report: &mut LoadReport<'r>,
    ) -> Result<(), LoadError> {
        let name = plan.target();
        let reject = |report: &mut LoadReport<'r>, row: &PlannedRow<'r, '_>, stage, reasons, class| {
            report.rejects.push(LoadReject {
                record: row.record,
                table: name.clone(),
                stage,
                reasons,
                error_class: class,
            });
        };
        let mut target = self.target(session, name, deadline, false).await?;
        if !target.exists() {
            for row in &plan.rows {
                reject(report, row, Stage::Drift, vec![Reason::record("target_table_missing")], None);
            }
            return Ok(());
        }
        let missing = target.missing_metadata_columns();
        if !missing.is_empty() {
            let reasons: Vec<Reason> =
                missing.iter().map(|c| Reason::column(Arc::from(*c), "missing_metadata_column")).collect();
            for row in &plan.rows {
                reject(report, row, Stage::Drift, reasons.clone(), None);
            }
            return Ok(());
        }
        let unknown: Vec<Arc<str>> = plan.columns.iter().filter(|c| target.column(c).is_none()).cloned().collect();
        if !unknown.is_empty() && plan.table.drift == DriftPolicy::Add {
            report.columns_added += self.add_columns(session, plan, &unknown, deadline).await?;
            target = self.target(session, name, deadline, true).await?;
        }
        let unknown: HashSet<Arc<str>> = plan.columns.iter().filter(|c| target.column(c).is_none()).cloned().collect();
        let mut loadable = Vec::with_capacity(plan.rows.len());
        for (i, row) in plan.rows.iter().enumerate() {
            let drifted: Vec<Reason> = row
                .change
                .columns
                .iter()
                .chain(std::iter::empty())
                .filter(|c| unknown.contains(&c.name))
                .map(|c| Reason::column(c.name.clone(), "drift"))
                .collect();
            let key_drifted = row.change.key_columns.iter().any(|k| unknown.contains(k));
            if !drifted.is_empty() && (plan.table.drift != DriftPolicy::Ignore || key_drifted) {
                reject(report, row, Stage::Drift, drifted, None);
                continue;
            }
            let too_long = target.too_long(row.change);
            if !too_long.is_empty() {
                let reasons = too_long.into_iter().map(|c| Reason::column(Arc::from(c), "varchar_length")).collect();
                reject(report, row, Stage::Load, reasons, None);
                continue;
            }
            loadable.push(i);
        }
        let columns: Vec<Arc<str>> = plan.columns.iter().filter(|c| !unknown.contains(*c)).cloned().collect();
        let key = match plan.rows.first() {
            Some(row) => row.change.key_columns.clone(),
            None => return Ok(()),
        };
        let spec = ApplySpec {
            target: name,
            columns: &columns,
            key: &key,
            delete_mode: plan.table.delete_mode,
            loaded_at_micros: now_micros,
        };
        self.apply_with_bisection(session, plan, &spec, loadable, deadline, report).await
    }

    /// Run the rows; when a transaction fails permanently, split it — first by the insert
    /// statement the database blamed, then in halves — until single rows are left to reject.
    async fn apply_with_bisection<'r>(
        &self,
        session: &Session<'_>,
        plan: &TablePlan<'r, '_>,
        spec: &ApplySpec<'_>,
        rows: Vec<usize>,
        deadline: Instant,
        report: &mut LoadReport<'r>,
    ) -> Result<(), LoadError> {
        let table = spec.target;
        let mut pending = vec![rows];
        while let Some(rows) = pending.pop() {
            if rows.is_empty() {
                continue;
            }
            let changes: Vec<_> = rows.iter().map(|&i| plan.rows[i].change).collect();
            let rendered = sql::build_transactions(spec, &changes);
            for &j in &rendered.oversized {
                let row = &plan.rows[rows[j]];
                report.rejects.push(LoadReject {
                    record: row.record,
                    table: table.clone(),
                    stage: Stage::Load,
                    reasons: vec![Reason::record("row_too_large")],
                    error_class: None,
                });
            }
            for tx in rendered.transactions {
                let tx_rows: Vec<usize> = tx.rows.iter().map(|&j| rows[j]).collect();
                match session.run_transaction(&tx.statements, deadline).await {
                    Ok(committed) => {
                        let stale = committed.rows.get(tx.guard_statement()).copied().unwrap_or(0).max(0) as usize;
                        report.rows_stale += stale.min(tx_rows.len());
                        report.rows_loaded += tx_rows.len().saturating_sub(stale);
                        report.transactions += 1;
                        report.retries += committed.attempts.saturating_sub(1);
                    }
                    Err(DataApiError::Statement { class, sub_statement, .. })
                        if !class.is_transient() && class != DbErrorClass::Aborted =>
                    {
                        if let [only] = tx_rows.as_slice() {
                            let row = &plan.rows[*only];
                            report.rejects.push(LoadReject {
                                record: row.record,
                                table: table.clone(),
                                stage: Stage::Load,
                                reasons: vec![Reason::record("rejected_by_database")],
                                error_class: Some(class),
                            });
                            continue;
                        }
                        tracing::debug!(table = %table, rows = tx_rows.len(), class = %class, "bisecting a failed transaction");
                        let suspects: Option<Vec<usize>> = sub_statement
                            .and_then(|s| tx.rows_of_statement(s))
                            .filter(|s| s.len() < tx.rows.len())
                            .map(|s| s.iter().map(|&j| rows[j]).collect());
                        match suspects {
                            Some(suspects) => {
                                let suspect_set: HashSet<usize> = suspects.iter().copied().collect();
                                pending.push(tx_rows.iter().copied().filter(|i| !suspect_set.contains(i)).collect());
                                pending.push(suspects);
                            }
                            None => {
                                let (left, right) = tx_rows.split_at(tx_rows.len() / 2);
                                pending.push(right.to_vec());
                                pending.push(left.to_vec());
                            }
                        }
                    }
                    Err(source) => return Err(LoadError { table: table.clone(), source }),
                }
            }
        }
        Ok(())
    }

    /// `ALTER TABLE … ADD COLUMN` for columns the target lacks (`drift = "add"`). A column
    /// that appeared meanwhile (a concurrent loader added it) is not an error.
    async fn add_columns(
        &self,
        session: &Session<'_>,
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
            let field = plan.rows.iter().find_map(|r| {
                r.change.row_schema.as_ref().and_then(|s| s.fields.iter().find(|f| &f.column == column).cloned())
            });
            let mask = plan.table.column(column).and_then(|c| c.mask.as_ref());
            let sql_type = column_type(field.as_ref(), sample.map(|c| &c.value), mask, Dialect::Redshift);
            let statement = sql::add_column(plan.target(), column, &sql_type);
            match session.run_transaction(&[statement], deadline).await {
                Ok(_) => {
                    tracing::info!(table = %plan.target(), column = %column, sql_type = %sql_type, "added a column the source has");
                    added += 1;
                }
                Err(DataApiError::Statement { .. }) => {
                    let now = self.target(session, plan.target(), deadline, true).await?;
                    if now.column(column).is_none() {
                        tracing::warn!(table = %plan.target(), column = %column, "could not add column; its rows are dead-lettered");
                    }
                }
                Err(source) => return Err(LoadError { table: plan.target().clone(), source }),
            }
        }
        Ok(added)
    }
}
