//! A scripted [`Warehouse`] for the loader's unit tests: no database, no network, answers in
//! microseconds. A script decides each transaction's fate from its statements (commit with
//! row counts and a report of rejected rows, fail statement k with an error class, or run
//! out of time); the warehouse records every transaction it got, and describes the tables it
//! was given (an `ALTER TABLE … ADD COLUMN` it commits adds the column). It stages objects
//! in memory; a script sees a `COPY` statement followed by the staged file's CSV text, so that
//! it can decide by the rows as it does for `INSERT … VALUES`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::copy::CopySource;
use super::dialect::{Dialect, Redshift};
use super::error::{DataApiError, DbErrorClass, StatementEnd};
use super::sql::{METADATA_COLUMNS, STAGE_TABLE};
use super::staging::StagedObject;
use super::target::{TargetColumn, TargetTable};
use super::warehouse::{Committed, Warehouse, WarehouseSession};
use crate::config::TableName;

/// What the warehouse does with one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// It commits. `stale` is the row count of the first position-guard statement (rows the
    /// target held a newer change of); `report` the rows the apply SQL rejected, as `(_cdc_row,
    /// rule)`, which the report statement (the last) counts and `report_rows` returns.
    Commit { stale: i64, report: Vec<(i64, &'static str)> },
    /// Statement `sub_statement` (0-based) fails with `class`; nothing commits.
    Fail { sub_statement: usize, class: DbErrorClass },
    /// The caller's deadline runs out while the statement runs.
    Deadline,
}

impl Answer {
    /// A plain commit: nothing stale, nothing rejected.
    pub fn commit() -> Answer {
        Answer::Commit { stale: 0, report: Vec::new() }
    }
}

/// Decides each transaction's [`Answer`] from its statements.
pub type Script = Box<dyn FnMut(&[String]) -> Answer + Send>;

/// A transaction the warehouse got, and what it answered.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The statements, as the loader rendered them.
    pub statements: Vec<String>,
    /// The script's answer.
    pub answer: Answer,
}

/// The scripted warehouse; see the module docs.
pub struct Scripted {
    script: Mutex<Script>,
    tables: Mutex<HashMap<TableName, Vec<TargetColumn>>>,
    reports: Mutex<HashMap<String, Vec<(i64, String)>>>,
    sent: Mutex<Vec<Sent>>,
    described: Mutex<Vec<TableName>>,
    /// Staged objects not deleted yet, by key (the compressed body).
    objects: Mutex<HashMap<String, Vec<u8>>>,
    /// Keys staged so far, in order.
    staged: Mutex<Vec<String>>,
}

/// One load's session: the warehouse, and this load's count of calls.
#[derive(Debug)]
pub struct ScriptedSession<'a> {
    warehouse: &'a Scripted,
    calls: AtomicU64,
    s3_calls: AtomicU64,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted").field("sent", &self.sent.lock().unwrap().len()).finish()
    }
}

/// Is `statement` a stage insert or a stage `COPY` (the statements that carry the rows)?
pub fn is_stage_insert(statement: &str) -> bool {
    statement.starts_with(&format!("INSERT INTO \"{STAGE_TABLE}\"")) || is_stage_copy(statement)
}

/// Is `statement` the `COPY` of a staged object into the stage?
pub fn is_stage_copy(statement: &str) -> bool {
    statement.starts_with(&format!("COPY \"{STAGE_TABLE}\""))
}

impl Scripted {
    /// A warehouse answering by `script`, with no tables.
    pub fn new(script: impl FnMut(&[String]) -> Answer + Send + 'static) -> Scripted {
        Scripted {
            script: Mutex::new(Box::new(script)),
            tables: Mutex::new(HashMap::new()),
            reports: Mutex::new(HashMap::new()),
            sent: Mutex::new(Vec::new()),
            described: Mutex::new(Vec::new()),
            objects: Mutex::new(HashMap::new()),
            staged: Mutex::new(Vec::new()),
        }
    }

    /// A warehouse that commits everything.
    pub fn committing() -> Scripted {
        Scripted::new(|_| Answer::commit())
    }

    /// Add table `name` with `columns` (`name`, described type, length, NOT NULL) and the
    /// metadata columns every target has.
    pub fn with_table(self, name: &TableName, columns: &[(&str, &str, i32, bool)]) -> Scripted {
        let mut described: Vec<TargetColumn> = columns
            .iter()
            .map(|(column, ty, length, not_null)| {
                TargetColumn::described(column, ty, *length, 0, 0, if *not_null { 0 } else { 1 })
            })
            .collect();
        described.extend(METADATA_COLUMNS.iter().map(|c| TargetColumn::described(c, "varchar", 256, 0, 0, 1)));
        self.tables.lock().unwrap().insert(name.clone(), described);
        self
    }

    /// `ALTER TABLE … ADD COLUMN` made outside the loader (by an operator): `column` of
    /// `type_name`, `length` bytes for character types.
    pub fn add_column(&self, table: &TableName, column: &str, type_name: &str, length: i32) {
        let mut tables = self.tables.lock().unwrap();
        let columns = tables.get_mut(table).expect("a table the warehouse has");
        columns.push(TargetColumn::described(column, type_name, length, 0, 0, 1));
    }

    /// `ALTER TABLE … DROP COLUMN` made outside the loader.
    pub fn drop_column(&self, table: &TableName, column: &str) {
        let mut tables = self.tables.lock().unwrap();
        tables.get_mut(table).expect("a table the warehouse has").retain(|c| c.name != column);
    }

    /// Every transaction sent so far, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// The transactions that committed and carried rows (stage inserts), in order.
    pub fn committed_loads(&self) -> Vec<Vec<String>> {
        self.sent()
            .into_iter()
            .filter(|t| matches!(t.answer, Answer::Commit { .. }) && t.statements.iter().any(|s| is_stage_insert(s)))
            .map(|t| t.statements)
            .collect()
    }

    /// Keys of every object staged so far, in order.
    pub fn staged(&self) -> Vec<String> {
        self.staged.lock().unwrap().clone()
    }

    /// Staged objects not deleted.
    pub fn objects_left(&self) -> usize {
        self.objects.lock().unwrap().len()
    }

    /// A `COPY` statement followed by the CSV text of the object it reads (what a script sees).
    fn with_file(&self, statement: &str) -> String {
        let Some(key) = statement.split("FROM 's3://scripted/").nth(1).and_then(|rest| rest.split('\'').next()) else {
            return statement.to_owned();
        };
        let Some(body) = self.objects.lock().unwrap().get(key).cloned() else {
            return format!("{statement}\n-- no such object");
        };
        let mut csv = String::new();
        let _ = std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body.as_slice()), &mut csv);
        format!("{statement}\n{csv}")
    }

    /// The tables described so far, in order.
    pub fn described(&self) -> Vec<TableName> {
        self.described.lock().unwrap().clone()
    }

    /// `ALTER TABLE "schema"."table" ADD COLUMN "name" type`, applied to the described table.
    fn apply_ddl(&self, statement: &str) {
        let Some(rest) = statement.strip_prefix("ALTER TABLE ") else { return };
        let Some((table, column)) = rest.split_once(" ADD COLUMN ") else { return };
        let unquote = |s: &str| s.trim_matches('"').to_string();
        let Some((schema, table)) = table.split_once('.') else { return };
        let name = TableName { schema: unquote(schema), table: unquote(table) };
        let Some((column, ty)) = column.split_once(' ') else { return };
        if let Some(columns) = self.tables.lock().unwrap().get_mut(&name) {
            columns.push(TargetColumn::described(&unquote(column), ty, 0, 0, 0, 1));
        }
    }
}

impl Warehouse for Scripted {
    type Session<'a> = ScriptedSession<'a>;

    fn session(&self) -> ScriptedSession<'_> {
        ScriptedSession { warehouse: self, calls: AtomicU64::new(0), s3_calls: AtomicU64::new(0) }
    }

    fn dialect(&self) -> &dyn Dialect {
        &Redshift
    }
}

impl WarehouseSession for ScriptedSession<'_> {
    async fn run_transaction(&self, statements: &[String], _deadline: Instant) -> Result<Committed, DataApiError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let warehouse = self.warehouse;
        let statements: Vec<String> =
            statements.iter().map(|s| if is_stage_copy(s) { warehouse.with_file(s) } else { s.clone() }).collect();
        let statements = statements.as_slice();
        let answer = (warehouse.script.lock().unwrap())(statements);
        let mut sent = warehouse.sent.lock().unwrap();
        let statement_id = format!("scripted-{}", sent.len());
        sent.push(Sent { statements: statements.to_vec(), answer: answer.clone() });
        drop(sent);
        match answer {
            Answer::Commit { stale, report } => {
                statements.iter().for_each(|s| warehouse.apply_ddl(s));
                let mut rows = vec![0; statements.len()];
                let guard = format!("DELETE FROM \"{STAGE_TABLE}\" USING ");
                if let Some(first_guard) = statements.iter().position(|s| s.starts_with(&guard)) {
                    rows[first_guard] = stale;
                }
                if let Some(last) = rows.last_mut().filter(|_| !report.is_empty()) {
                    *last = report.len() as i64;
                }
                let report = report.into_iter().map(|(row, rule)| (row, rule.to_string())).collect();
                warehouse.reports.lock().unwrap().insert(statement_id.clone(), report);
                Ok(Committed { statement_id, rows })
            }
            Answer::Fail { sub_statement, class } => Err(DataApiError::Statement {
                statement_id,
                status: StatementEnd::Failed,
                sub_statement: Some(sub_statement),
                class,
            }),
            Answer::Deadline => {
                Err(DataApiError::Deadline { during: "waiting for a statement", statement_id: Some(statement_id) })
            }
        }
    }

    async fn report_rows(
        &self,
        statement_id: &str,
        _sub_statement: usize,
        _deadline: Instant,
    ) -> Result<Vec<(i64, String)>, DataApiError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.warehouse.reports.lock().unwrap().get(statement_id).cloned().unwrap_or_default())
    }

    async fn describe_table(&self, table: &TableName, _deadline: Instant) -> Result<TargetTable, DataApiError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.warehouse.described.lock().unwrap().push(table.clone());
        let columns = self.warehouse.tables.lock().unwrap().get(table).cloned().unwrap_or_default();
        Ok(TargetTable::new(table.clone(), columns))
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn retries(&self) -> u64 {
        0
    }

    fn staged_object(&self, table: &TableName) -> Option<StagedObject> {
        let n = self.warehouse.staged.lock().unwrap().len();
        let key = format!("staging/{}.{}/{n}.csv.gz", table.schema, table.table);
        let source = CopySource {
            url: format!("s3://scripted/{key}"),
            iam_role: "arn:aws:iam::123456789012:role/scripted-copy".into(),
        };
        Some(StagedObject { key, source })
    }

    async fn stage(
        &self,
        object: &StagedObject,
        body: Vec<u8>,
        _deadline: Instant,
    ) -> Result<Option<String>, DataApiError> {
        self.s3_calls.fetch_add(1, Ordering::Relaxed);
        self.warehouse.staged.lock().unwrap().push(object.key.clone());
        self.warehouse.objects.lock().unwrap().insert(object.key.clone(), body);
        Ok(None)
    }

    async fn unstage(&self, object: &StagedObject, _version: Option<&str>, _deadline: Instant) {
        self.s3_calls.fetch_add(1, Ordering::Relaxed);
        self.warehouse.objects.lock().unwrap().remove(&object.key);
    }

    fn s3_calls(&self) -> u64 {
        self.s3_calls.load(Ordering::Relaxed)
    }
}
