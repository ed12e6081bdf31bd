//! `cdc check`: a preflight of the targets the environment points at, before the first batch
//! (or after DDL). Per routed table, one line per check, `ok` or `FAIL` with the fix:
//!
//! | check | holds when |
//! |---|---|
//! | `table` | `DescribeTable` finds the table (the loader would fail every batch) |
//! | `metadata columns` | it has every `_cdc_*` column the apply SQL writes |
//! | `column <name>` | each configured column exists (or `drift = "add"` adds it) and takes what the pipeline writes into it: the loader's own checks ([`TargetTable::misfits`]: VARCHAR bytes, numbers, CHAR, NOT NULL) on the widest value the config says it writes (the mask's output, `max_bytes`, the declared `type`), and a type of the right kind |
//! | `delete ledger` | the schema's `_cdc_deletes` exists with its columns (without it, deletes of keys the target keeps no row of are dead-lettered, `delete_ledger_missing`) |
//! | `privileges` | the identity has what the apply SQL uses: SELECT, INSERT, UPDATE (and DELETE under `delete_mode = "hard"`) on the target, SELECT, INSERT, DELETE on the ledger, TEMP on the database |
//! | `copy role` | `load = "copy"` tables: `REDSHIFT_COPY_ROLE_ARN` is set (whether Redshift can assume it shows only at the first COPY) |
//!
//! The privileges are read without changing anything: `HAS_TABLE_PRIVILEGE` and
//! `HAS_DATABASE_PRIVILEGE` ("System information functions", Amazon Redshift Database Developer
//! Guide: leader-node functions that answer for the current user; PostgreSQL, behind the
//! local emulator, has both) in one `SELECT` of constants, run through the loader's own
//! warehouse session. Nothing here writes. Exit 0 when every check holds, 1 when one fails,
//! 2 for bad settings or input.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cdc_pipeline::config::{ColumnConfig, DeleteMode, DriftPolicy, LoadPath, TableConfig, TableName};
use cdc_pipeline::debezium::ColumnType;
use cdc_pipeline::mask::Mask;
use cdc_pipeline::outcome::Column;
use cdc_pipeline::redshift::copy::FieldKind;
use cdc_pipeline::redshift::error::{DataApiError, DbErrorClass};
use cdc_pipeline::redshift::sql::{self, DELETE_LEDGER_COLUMNS};
use cdc_pipeline::redshift::target::{TargetColumn, TargetTable};
use cdc_pipeline::redshift::{Loader, Warehouse, WarehouseSession};
use cdc_pipeline::settings::Settings;
use cdc_pipeline::value::{Decimal, Value};
use cdc_pipeline::{Config, wiring};
use tokio::time::Instant;

use crate::run::{self, RunError};

/// How long the checks of one table may take (each call keeps it as its deadline).
const TABLE_DEADLINE: Duration = Duration::from_secs(60);

/// One check's verdict.
enum Verdict {
    Ok(String),
    Fail(String),
}

/// Prints one line per check and remembers whether one failed.
#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn line(&mut self, table: &TableName, check: &str, verdict: Verdict) {
        let (word, detail) = match verdict {
            Verdict::Ok(detail) => ("ok", detail),
            Verdict::Fail(detail) => {
                self.failed += 1;
                ("FAIL", detail)
            }
        };
        println!("{table}  {check}  {word}  {detail}");
    }
}

/// The tables to check: the ones `topics` route to, or every table of the config.
fn tables(config: &Config, topics: &[String]) -> Result<Vec<Arc<TableConfig>>, String> {
    let mut tables: Vec<Arc<TableConfig>> = Vec::new();
    for topic in topics {
        let table = if config.is_default_routing() {
            Arc::new(TableConfig::default_for_topic(topic).map_err(|e| format!("--topic {topic}: {e}"))?)
        } else {
            config
                .table_for_topic(topic)
                .cloned()
                .ok_or_else(|| format!("--topic {topic}: no table of the config routes it"))?
        };
        if !tables.iter().any(|t| t.target == table.target) {
            tables.push(table);
        }
    }
    if topics.is_empty() {
        if config.is_default_routing() {
            return Err("the default routing names no table (each topic goes to public.<its last segment>): give the \
                        topics to check with --topic"
                .into());
        }
        // Several `[[tables]]` may load one target: it is checked once.
        for table in &config.tables {
            if !tables.iter().any(|t: &Arc<TableConfig>| t.target == table.target) {
                tables.push(table.clone());
            }
        }
    }
    Ok(tables)
}

/// `cdc check [--config FILE] [--topic TOPIC]…`.
pub fn run(config: Option<&Path>, topics: &[String], user: Option<&str>) -> Result<(), RunError> {
    if let Some(user) = user
        && (user.trim().is_empty() || user.contains('\0'))
    {
        return Err(RunError::Setup("--user: a database user name, e.g. IAMR:<ingest role name>".into()));
    }
    let settings = run::settings(config, "check").map_err(RunError::Setup)?;
    let config = wiring::load_config(&settings.config).map_err(|e| RunError::Setup(e.to_string()))?;
    let tables = tables(&config, topics).map_err(RunError::Setup)?;
    let failed = run::runtime().map_err(RunError::Setup)?.block_on(async {
        let (loader, _) = wiring::clients(&wiring::sdk_config().await, &settings);
        let mut report = Report::default();
        for table in &tables {
            check_table(&loader, &settings, table, user, &mut report).await;
        }
        report.failed
    });
    match failed {
        0 => Ok(()),
        n => {
            Err(RunError::Failed(format!("{n} check(s) failed: fix what the FAIL lines say, then run cdc check again")))
        }
    }
}

async fn check_table(
    loader: &Loader,
    settings: &Settings,
    table: &TableConfig,
    user: Option<&str>,
    report: &mut Report,
) {
    let name = &table.target;
    let deadline = Instant::now() + TABLE_DEADLINE;
    let target = match loader.describe_target(name, deadline).await {
        Ok(target) => target,
        Err(e) => return report.line(name, "table", Verdict::Fail(format!("DescribeTable failed: {}", e.source))),
    };
    if !target.exists() {
        let fix = "does not exist: create it (`cdc ddl` prints its CREATE TABLE); every batch fails until it does";
        return report.line(name, "table", Verdict::Fail(fix.into()));
    }
    report.line(name, "table", Verdict::Ok(format!("exists, {} columns", target.columns.len())));
    let missing = target.missing_metadata_columns();
    report.line(
        name,
        "metadata columns",
        match missing.is_empty() {
            true => Verdict::Ok("all present".into()),
            false => Verdict::Fail(format!(
                "lacks {}: add them (`cdc ddl` prints the table's DDL); every batch fails until it has them",
                missing.join(", ")
            )),
        },
    );
    let mut columns: Vec<(&Arc<str>, &ColumnConfig)> = table.columns.iter().collect();
    columns.sort_by(|a, b| a.0.cmp(b.0));
    for (column, configured) in columns {
        report.line(name, &format!("column {column}"), column_verdict(&target, table, column, configured));
    }
    // A configured key column the config says nothing else of: without it every row is
    // rejected at stage drift, whatever the table's `drift` policy.
    for key in table.key.iter().flat_map(|k| k.iter()).filter(|k| !table.columns.contains_key(*k)) {
        let verdict = match target.column(key) {
            Some(column) => Verdict::Ok(format!("{} (key)", shown_type(column))),
            None => Verdict::Fail(format!(
                "key column `{key}` does not exist: add it (`cdc ddl` prints the table's DDL); every row is rejected \
                 until it does"
            )),
        };
        report.line(name, &format!("column {key}"), verdict);
    }
    let ledger_name = sql::delete_ledger(name);
    let ledger = match loader.describe_target(&ledger_name, deadline).await {
        Ok(ledger) => Some(ledger),
        Err(e) => {
            report.line(name, "delete ledger", Verdict::Fail(format!("DescribeTable failed: {}", e.source)));
            None
        }
    };
    if let Some(ledger) = &ledger {
        let lacking: Vec<&str> = DELETE_LEDGER_COLUMNS.into_iter().filter(|c| ledger.column(c).is_none()).collect();
        let verdict = if !ledger.exists() {
            Verdict::Fail(format!(
                "{ledger_name} does not exist: create it (`cdc ddl` prints it); until then {} are dead-lettered \
                 (delete_ledger_missing)",
                match table.delete_mode {
                    DeleteMode::Hard => "all deletes (delete_mode = \"hard\")",
                    DeleteMode::Soft => "deletes of keys the target keeps no row of",
                }
            ))
        } else if !lacking.is_empty() {
            Verdict::Fail(format!("{ledger_name} lacks {}: recreate it as `cdc ddl` prints it", lacking.join(", ")))
        } else {
            Verdict::Ok(format!("{ledger_name} exists"))
        };
        report.line(name, "delete ledger", verdict);
    }
    let ledger_exists = ledger.as_ref().is_some_and(|l| l.exists());
    let privileges = privileges(loader, table, ledger_exists.then_some(&ledger_name), user, deadline).await;
    report.line(name, "privileges", privileges);
    if table.load == LoadPath::Copy {
        report.line(
            name,
            "copy role",
            match &settings.copy_role {
                Some(_) => Verdict::Ok("REDSHIFT_COPY_ROLE_ARN is set (Redshift assumes it at the first COPY)".into()),
                None => Verdict::Fail(
                    "REDSHIFT_COPY_ROLE_ARN is not set: set the role Redshift assumes to COPY staged objects, or \
                     `load = \"insert\"`"
                        .into(),
                ),
            },
        );
    }
}

/// `varchar(100)`, `numeric(10,2)`, `int4`: a target column's type as described.
fn shown_type(column: &TargetColumn) -> String {
    match (column.max_bytes, column.numeric) {
        (Some(bytes), _) => format!("{}({bytes})", column.type_name),
        (None, Some((precision, scale))) => format!("{}({precision},{scale})", column.type_name),
        (None, None) => column.type_name.clone(),
    }
}

fn column_verdict(target: &TargetTable, table: &TableConfig, name: &Arc<str>, configured: &ColumnConfig) -> Verdict {
    let Some(column) = target.column(name) else {
        return match table.drift {
            DriftPolicy::Add => {
                Verdict::Ok("absent; `drift = \"add\"` adds it with the first record that has it".into())
            }
            DriftPolicy::Dlq | DriftPolicy::Ignore => Verdict::Fail(format!(
                "the target has no column {name}: add it (ALTER TABLE … ADD COLUMN; `cdc ddl` prints its type) or fix \
                 the config's name (a mask under a misspelt name guards nothing, and the functions refuse to start)"
            )),
        };
    };
    let ty = shown_type(column);
    let Some((value, what)) = written(configured) else {
        return Verdict::Ok(format!("{ty}; the config declares no type, mask or max_bytes to check it against"));
    };
    if !kind_fits(&column.type_name, &value) {
        return Verdict::Fail(format!("{ty} is not a type for {what}: change the column's type or the config"));
    }
    let reasons = target.misfits(&[Column { name: name.clone(), value }]);
    match reasons.first() {
        None => Verdict::Ok(format!("{ty} holds {what}")),
        Some(reason) => {
            Verdict::Fail(format!("{ty} cannot hold {what} ({}): widen the column or change the config", reason.rule))
        }
    }
}

/// The widest value the pipeline writes into a configured column, as far as the config says,
/// and what it is in words: the mask's output, else text of `max_bytes`, else a value of the
/// declared `type` at its widest. `None` when the config says nothing of it.
fn written(configured: &ColumnConfig) -> Option<(Value<'static>, String)> {
    let text = |text: String, what: String| Some((Value::Text(Cow::Owned(text)), what));
    match &configured.mask {
        Some(Mask::Hmac { length, .. }) => {
            let length = length.unwrap_or(64);
            return text("0".repeat(length), format!("the hmac mask's {length} hex characters"));
        }
        Some(Mask::Redact { with }) => return text(with.clone(), format!("the redact mask's {} bytes", with.len())),
        Some(Mask::Null) => return Some((Value::Null, "NULL (mask null)".into())),
        Some(Mask::Partial { mask_char, .. }) => {
            let bytes = configured.rules.max_bytes?;
            let characters = mask_char.to_string().repeat(bytes);
            let what = format!("the partial mask's output for text of up to {bytes} bytes");
            return text(characters, what);
        }
        // The year mask keeps the value's type: what the declared type says.
        Some(Mask::Year) | None => {}
    }
    if let Some(bytes) = configured.rules.max_bytes {
        return text("x".repeat(bytes), format!("text of up to {bytes} bytes (max_bytes)"));
    }
    let hint = configured.type_hint.as_ref()?;
    let value = match hint {
        ColumnType::Boolean => Value::Bool(true),
        ColumnType::Int(bits) => Value::Int(if *bits >= 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 }),
        ColumnType::Decimal { scale, precision: Some(precision) } => {
            Value::Decimal(Decimal { unscaled: 10i128.pow((*precision).min(38)) - 1, scale: *scale })
        }
        ColumnType::Decimal { scale, precision: None } | ColumnType::DecimalText { scale: Some(scale) } => {
            Value::Decimal(Decimal { unscaled: 1, scale: *scale })
        }
        ColumnType::Date => Value::Date(0),
        ColumnType::Time(_) | ColumnType::TimeText => Value::Time(0),
        ColumnType::Timestamp(_) | ColumnType::TimestampText => Value::Timestamp(0),
        ColumnType::Bytes => Value::Bytes(Cow::Borrowed(b"\x00")),
        ColumnType::Uuid => Value::Text(Cow::Borrowed("00000000-0000-0000-0000-000000000000")),
        ColumnType::String | ColumnType::Json | ColumnType::Composite => Value::Text(Cow::Borrowed("x")),
        _ => return None,
    };
    Some((value, format!("the declared type's values ({})", type_hint_name(hint))))
}

fn type_hint_name(hint: &ColumnType) -> String {
    match hint {
        ColumnType::Int(bits) => format!("int{bits}"),
        ColumnType::Decimal { scale, precision: Some(p) } => format!("decimal({p},{scale})"),
        ColumnType::Decimal { scale, .. } | ColumnType::DecimalText { scale: Some(scale) } => {
            format!("decimal scale {scale}")
        }
        ColumnType::Timestamp(_) | ColumnType::TimestampText => "timestamp".into(),
        ColumnType::Time(_) | ColumnType::TimeText => "time".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Whether a column of `type_name` is of a kind that takes `value` at all (the loader's
/// checks then say whether it fits): text goes into character and SUPER columns, numbers into
/// number columns, dates, times and timestamps into theirs. A type this does not know is
/// taken to fit.
fn kind_fits(type_name: &str, value: &Value<'_>) -> bool {
    let number = matches!(value, Value::Int(_) | Value::Decimal(_) | Value::Float(_));
    match (FieldKind::of(type_name), value) {
        (_, Value::Null) | (FieldKind::Character | FieldKind::Document, _) => true,
        (FieldKind::Bytes, value) => matches!(value, Value::Bytes(_)),
        (FieldKind::Timestamp | FieldKind::TimestampTz, value) => matches!(value, Value::Timestamp(_) | Value::Date(_)),
        (FieldKind::Integer | FieldKind::Numeric, _) => number,
        (FieldKind::TimeTz, value) => matches!(value, Value::Time(_)),
        (FieldKind::Other, value) => match type_name.to_ascii_lowercase().as_str() {
            "date" => matches!(value, Value::Date(_)),
            "time" | "time without time zone" => matches!(value, Value::Time(_)),
            "bool" | "boolean" => matches!(value, Value::Bool(_)),
            "float4" | "float8" | "real" | "double precision" | "float" => number,
            _ => true,
        },
    }
}

/// The privileges the apply SQL needs, read with `HAS_TABLE_PRIVILEGE`,
/// `HAS_SCHEMA_PRIVILEGE` and `HAS_DATABASE_PRIVILEGE` ("System information functions",
/// Amazon Redshift Database Developer Guide) for `user`, or for the identity the Data API runs
/// as; and, for a `drift = "add"` table, its ownership (only the owner may `ALTER TABLE … ADD
/// COLUMN`), from `pg_tables`.
async fn privileges(
    loader: &Loader,
    table: &TableConfig,
    ledger: Option<&TableName>,
    user: Option<&str>,
    deadline: Instant,
) -> Verdict {
    let literal = |text: &str| {
        let mut out = String::new();
        sql::push_text_literal(&mut out, text);
        out
    };
    // The functions' first argument: the user, when one is named.
    let who = user.map(literal);
    let first = who.as_ref().map_or_else(String::new, |w| format!("{w}, "));
    let mut needed: Vec<(String, String)> = Vec::new();
    let target = sql::qualified(&table.target);
    let schema = literal(&table.target.schema);
    needed.push((
        format!("HAS_SCHEMA_PRIVILEGE({first}{schema}, 'USAGE')"),
        format!("USAGE on schema {}", table.target.schema),
    ));
    let mut on_target = vec!["SELECT", "INSERT", "UPDATE"];
    if table.delete_mode == DeleteMode::Hard {
        on_target.push("DELETE");
    }
    let mut objects = vec![(target.clone(), on_target)];
    if let Some(ledger) = ledger {
        objects.push((sql::qualified(ledger), vec!["SELECT", "INSERT", "DELETE"]));
    }
    for (object, privileges) in objects {
        let name = literal(&object);
        for privilege in privileges {
            needed.push((
                format!("HAS_TABLE_PRIVILEGE({first}{name}, '{privilege}')"),
                format!("{privilege} on {object}"),
            ));
        }
    }
    // The apply SQL stages rows in a temporary table.
    needed.push((
        format!("HAS_DATABASE_PRIVILEGE({first}CURRENT_DATABASE(), 'TEMP')"),
        "TEMP on the database".to_string(),
    ));
    if table.drift == DriftPolicy::Add {
        let table_name = literal(&table.target.table);
        let owner = who.clone().unwrap_or_else(|| "CURRENT_USER".to_string());
        needed.push((
            format!(
                "EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = {schema} AND tablename = {table_name} \
                 AND tableowner = {owner})"
            ),
            format!("ownership of {target} (drift = \"add\" runs ALTER TABLE)"),
        ));
    }
    let mut select = String::new();
    for (i, (test, _)) in needed.iter().enumerate() {
        if i > 0 {
            select.push_str(" UNION ALL ");
        }
        select.push_str(&format!("SELECT {i}, CASE WHEN {test} THEN 'yes' ELSE 'no' END"));
    }
    let session = loader.warehouse().session();
    let answer = match session.run_transaction(&[select], deadline).await {
        Ok(committed) => session.report_rows(&committed.statement_id, 0, deadline).await,
        Err(e) => Err(e),
    };
    let rows = match answer {
        Ok(rows) => rows,
        // The privilege functions name a user that does not exist.
        Err(DataApiError::Statement { class: DbErrorClass::UndefinedObject, .. }) if user.is_some() => {
            return Verdict::Fail(format!(
                "`{}` does not exist in the database: check the name (the stack's IngestDatabaseUser output), or \
                 create it before granting (Redshift: CREATE USER \"…\" PASSWORD DISABLE)",
                user.unwrap_or_default()
            ));
        }
        Err(e) => return Verdict::Fail(format!("could not read them: {e}")),
    };
    let lacking: Vec<&str> = needed
        .iter()
        .enumerate()
        .filter(|(i, _)| !rows.iter().any(|(row, yes)| *row == *i as i64 && yes == "yes"))
        .map(|(_, (_, what))| what.as_str())
        .collect();
    let whose = user.map_or_else(|| "the identity".to_string(), |u| format!("`{u}`"));
    match lacking.is_empty() {
        true => Verdict::Ok(format!("{whose} holds all {} needed", needed.len())),
        false => {
            Verdict::Fail(format!("{whose} lacks {}: GRANT them as `cdc ddl --grants` prints", lacking.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(columns: &[(&str, &str, i32)]) -> TargetTable {
        let columns = columns.iter().map(|(n, t, len)| TargetColumn::described(n, t, *len, 0, 0, 1)).collect();
        TargetTable::new(TableName { schema: "public".into(), table: "t".into() }, columns)
    }

    #[test]
    fn what_the_config_writes_is_held_to_the_loaders_checks() {
        let config = Config::parse(
            "[[tables]]\ntopic = \"t\"\ntarget = \"public.t\"\nkey = [\"id\"]\n\
             [tables.columns.ssn]\nmask = \"hmac\"\n[tables.columns.name]\nmax_bytes = 100\n\
             [tables.columns.n]\ntype = \"int64\"\n[tables.columns.dob]\ntype = \"timestamp_ms\"\nmask = \"year\"\n",
            "t.toml",
        )
        .unwrap();
        let table = &config.tables[0];
        let verdict = |columns: &[(&str, &str, i32)], column: &str| {
            let name: Arc<str> = column.into();
            match column_verdict(&target(columns), table, &name, &table.columns[&name]) {
                Verdict::Ok(text) => format!("ok {text}"),
                Verdict::Fail(text) => format!("FAIL {text}"),
            }
        };
        assert!(verdict(&[("ssn", "varchar", 64)], "ssn").starts_with("ok varchar(64) holds the hmac mask's 64"));
        let short = verdict(&[("ssn", "varchar", 10)], "ssn");
        assert!(
            short.starts_with("FAIL varchar(10) cannot hold the hmac mask's 64 hex characters (varchar_length)"),
            "{short}"
        );
        assert!(verdict(&[("ssn", "int8", 0)], "ssn").starts_with("FAIL int8 is not a type for the hmac mask's"));
        assert!(verdict(&[("name", "varchar", 50)], "name").contains("(varchar_length)"));
        assert!(
            verdict(&[("n", "int4", 0)], "n")
                .contains("cannot hold the declared type's values (int64) (integer_range)")
        );
        assert!(verdict(&[("n", "int8", 0)], "n").starts_with("ok"));
        assert!(verdict(&[("dob", "timestamp", 0)], "dob").starts_with("ok"));
        assert!(verdict(&[("dob", "date", 0)], "dob").starts_with("FAIL date is not a type for"));
        assert!(verdict(&[("other", "int4", 0)], "n").starts_with("FAIL the target has no column n"));
    }

    #[test]
    fn the_default_routing_needs_topics() {
        let default = Config::default_routing();
        assert!(tables(&default, &[]).unwrap_err().contains("--topic"));
        let routed = tables(&default, &["sqlsrv.db.dbo.Patients".into()]).unwrap();
        assert_eq!(routed[0].target.to_string(), "public.patients");
    }
}
