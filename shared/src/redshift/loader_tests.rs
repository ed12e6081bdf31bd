//! The loader against a [`Scripted`] warehouse: bisection, fall-backs, drift, missing tables,
//! the report of rejected rows and the deadline, with plans built by the real `Pipeline` and
//! `plan` from synthetic Debezium records. No database: each test runs in milliseconds.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::error::{DataApiError, DbErrorClass};
use super::loader::{LoadError, Loader, WarehouseError};
use super::scripted::{Answer, Scripted, is_stage_insert};
use crate::config::TableName;
use crate::plan::plan;
use crate::synth::{self, Patient, RecordSpec, SourcePosition, TOPIC};
use crate::{Caches, Config, DecodedBatch, MskEvent, Pipeline, Reason, Rule, Stage};

const NOW: i64 = 1_795_521_600_000_000;
const KEY: &[u8] = b"loader-unit-test-masking-key-0123456789abcdef";
/// The last name the scripted database refuses (as a value the column cannot read).
const POISON: &str = "POISON";

fn target() -> TableName {
    TableName { schema: "public".into(), table: "patients".into() }
}

/// The patients target as described: `lastname` is `VARCHAR(lastname)`; `firstname` only
/// `with_firstname`. The delete ledger exists.
fn warehouse(
    script: impl FnMut(&[String]) -> Answer + Send + 'static,
    lastname: i32,
    with_firstname: bool,
) -> Scripted {
    let mut columns = vec![("id", "int4", 0, true), ("lastname", "varchar", lastname, false)];
    if with_firstname {
        columns.push(("firstname", "varchar", 100, false));
    }
    columns.extend([("state", "bpchar", 2, false), ("ssn", "varchar", 64, false), ("dob", "timestamp", 0, false)]);
    let ledger = TableName { schema: "public".into(), table: super::sql::DELETE_LEDGER.into() };
    Scripted::new(script).with_table(&target(), &columns).with_table(&ledger, &[("_cdc_table", "varchar", 256, true)])
}

/// Commits, except a transaction whose stage inserts carry [`POISON`]: that insert fails
/// with an invalid value, as a database that cannot read the value would fail it.
fn poison_fails(statements: &[String]) -> Answer {
    match statements.iter().position(|s| is_stage_insert(s) && s.contains(POISON)) {
        Some(sub_statement) => Answer::Fail { sub_statement, class: DbErrorClass::InvalidValue },
        None => Answer::commit(),
    }
}

/// The patients table with `drift`, loading by the default path (`copy`).
fn pipeline(drift: &str) -> Pipeline {
    pipeline_on(drift, "copy")
}

/// The patients table with `drift`, loading by `load` (`copy` or `insert`).
fn pipeline_on(drift: &str, load: &str) -> Pipeline {
    let text = format!(
        "[[tables]]\ntopic = \"*.sampledb.dbo.patientinfo\"\ntarget = \"public.patients\"\nkey = [\"id\"]\n\
         delete_mode = \"soft\"\ndrift = \"{drift}\"\nload = \"{load}\"\n[tables.columns.ssn]\nmask = \"hmac\"\n"
    );
    Pipeline::new(Arc::new(Config::parse(&text, "test.toml").unwrap()), Some(KEY)).unwrap()
}

fn pos(n: u128) -> SourcePosition {
    let base = synth::lsn_number(0x40, 0, 0);
    SourcePosition::streamed(base + (n << 8), base + (n << 8) - 1, 1, 1_795_000_000_000 + n as i64)
}

/// Patient `id` named `last`.
fn named(id: i32, last: &str) -> Patient {
    Patient { last_name: Some(last.into()), ..synth::bulk_patient(id) }
}

/// A create of `p` at `offset`, at source position `n`.
fn create(offset: i64, p: &Patient, n: u128) -> RecordSpec {
    let value = synth::value_json("c", None, Some(p), &pos(n), true);
    RecordSpec::new(TOPIC, 0, offset, 1_795_000_000_000, Some(&synth::key_json(p.id, true)), Some(&value))
}

/// A row the loader did not write: offset, stage, reasons, database class.
type Rejected = (i64, Stage, Vec<Reason>, Option<DbErrorClass>);

/// What a load did, owned (the report's indexes mapped to offsets, rejects in offset order).
#[derive(Debug, Default)]
struct Loaded {
    loaded: usize,
    stale: usize,
    transactions: usize,
    superseded: usize,
    promoted: usize,
    columns_added: usize,
    calls: u64,
    rejects: Vec<Rejected>,
}

async fn load(loader: &Loader<Scripted>, pipeline: &Pipeline, records: &[RecordSpec]) -> Result<Loaded, LoadError> {
    run(loader, pipeline, records, false).await
}

/// [`load`], or the loader's dry run when `dry`.
async fn run(
    loader: &Loader<Scripted>,
    pipeline: &Pipeline,
    records: &[RecordSpec],
    dry: bool,
) -> Result<Loaded, LoadError> {
    let text = synth::msk_event_text(records);
    let event = MskEvent::parse(text.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), NOW);
    assert!(outcomes.iter().all(|o| matches!(o, crate::Outcome::Change(_))), "{outcomes:?}");
    let plans = plan(&outcomes);
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = match dry {
        false => loader.load(&plans, deadline, NOW).await?,
        true => loader.dry_run(&plans, deadline, NOW).await?,
    };
    let mut rejects: Vec<Rejected> = report
        .rejects
        .iter()
        .map(|r| (batch.records()[r.index].offset, r.stage, r.reasons.clone(), r.error_class))
        .collect();
    rejects.sort_by_key(|r| r.0);
    Ok(Loaded {
        loaded: report.rows_loaded,
        stale: report.rows_stale,
        transactions: report.transactions,
        superseded: plans.iter().map(|p| p.superseded()).sum::<usize>() - report.promoted,
        promoted: report.promoted,
        columns_added: report.columns_added,
        calls: report.data_api_calls,
        rejects,
    })
}

/// Rows the committed loads wrote (each staged row names its topic once: a SQL literal in a
/// `VALUES` tuple, a quoted field in a staged file).
fn rows_committed(warehouse: &Scripted) -> usize {
    let (literal, field) = (format!(",'{TOPIC}',"), format!(",\"{TOPIC}\","));
    let loads = warehouse.committed_loads();
    let staged = loads.iter().flatten().filter(|s| is_stage_insert(s));
    staged.map(|s| s.matches(&literal).count() + s.matches(&field).count()).sum()
}

fn committed_text(warehouse: &Scripted) -> String {
    warehouse.committed_loads().concat().join("\n")
}

#[tokio::test]
async fn a_failing_sub_statement_is_bisected_to_its_rows_and_the_rest_commits() {
    let loader = Loader::new(warehouse(poison_fails, 100, true));
    let records: Vec<RecordSpec> = (1..=16)
        .map(|id| {
            let p = if id == 7 { named(id, POISON) } else { synth::bulk_patient(id) };
            create(i64::from(id) - 1, &p, id as u128)
        })
        .collect();
    let s = load(&loader, &pipeline("dlq"), &records).await.unwrap();
    assert_eq!(
        s.rejects,
        vec![(6, Stage::Load, vec![Reason::record(Rule::RejectedByDatabase)], Some(DbErrorClass::InvalidValue))]
    );
    assert_eq!(s.loaded, 15);
    let warehouse = loader.warehouse();
    assert_eq!(rows_committed(warehouse), 15, "every other row committed once");
    assert!(!committed_text(warehouse).contains(POISON));
    // 16 rows fail; of their halves 0–7 fails and 8–15 commits; of 0–7, 0–3 commits and 4–7
    // fails; of 4–7, 4–5 commits and 6–7 fails; of 6–7, row 6 fails alone and 7 commits.
    assert_eq!((warehouse.sent().len(), s.transactions), (9, 4), "tried, and committed");
}

#[tokio::test]
async fn bisection_starts_from_the_stage_insert_the_database_blamed() {
    // Enough rows for several stage inserts in one transaction; the poisoned row is the last,
    // so it sits in the last insert, and the first row in the first.
    let rows = 600;
    let loader = Loader::new(warehouse(poison_fails, 100, true));
    let records: Vec<RecordSpec> = (1..=rows)
        .map(|id| {
            let p = match id {
                1 => named(id, "FIRSTROW"),
                _ if id == rows => named(id, POISON),
                _ => synth::bulk_patient(id),
            };
            create(i64::from(id) - 1, &p, id as u128)
        })
        .collect();
    let s = load(&loader, &pipeline_on("dlq", "insert"), &records).await.unwrap();
    assert_eq!(s.rejects.iter().map(|r| r.0).collect::<Vec<_>>(), [i64::from(rows) - 1]);
    assert_eq!(s.loaded, rows as usize - 1);
    let sent = loader.warehouse().sent();
    let inserts = |i: usize| sent[i].statements.iter().filter(|s| is_stage_insert(s)).count();
    assert!(inserts(0) >= 2, "the premise: the first transaction has {} stage inserts", inserts(0));
    // The blamed insert's rows are tried first, on their own: not a blind half of the batch.
    let second = sent[1].statements.concat();
    assert!(
        second.contains(POISON) && !second.contains("FIRSTROW"),
        "the second transaction is the blamed insert's rows"
    );
    assert!(inserts(1) < inserts(0));
}

#[tokio::test]
async fn both_halves_failing_alike_fail_the_batch_and_blame_no_row() {
    // Whatever the rows, the transaction fails after its stage inserts: no row is to blame.
    let apply_fails = |statements: &[String]| match statements.iter().any(|s| is_stage_insert(s)) {
        true => Answer::Fail { sub_statement: statements.len() - 2, class: DbErrorClass::InvalidValue },
        false => Answer::commit(),
    };
    let loader = Loader::new(warehouse(apply_fails, 100, true));
    let records: Vec<RecordSpec> =
        (1..=8).map(|id| create(i64::from(id), &synth::bulk_patient(id), id as u128)).collect();
    let err = load(&loader, &pipeline("dlq"), &records).await.unwrap_err();
    assert_eq!(err.table(), &target());
    assert!(
        matches!(
            err,
            LoadError::Warehouse(WarehouseError {
                source: DataApiError::Statement { class: DbErrorClass::InvalidValue, .. },
                ..
            })
        ),
        "{err}"
    );
    assert!(loader.warehouse().committed_loads().is_empty());
    // All 8 rows, then rows 0–3, 0–1, 0 and 1: the two halves of that split failed alike.
    assert_eq!(loader.warehouse().sent().len(), 5, "not bisected to every row");
}

#[tokio::test]
async fn a_deadline_running_out_fails_the_load_and_rejects_nothing() {
    // The first transaction fails on a poisoned row; the deadline runs out in the bisection.
    let mut sent = 0;
    let script = move |statements: &[String]| {
        sent += 1;
        if sent == 1 { poison_fails(statements) } else { Answer::Deadline }
    };
    let loader = Loader::new(warehouse(script, 100, true));
    let records = [create(0, &synth::bulk_patient(1), 1), create(1, &named(2, POISON), 2)];
    let err = load(&loader, &pipeline("dlq"), &records).await.unwrap_err();
    assert!(matches!(err, LoadError::Warehouse(WarehouseError { source: DataApiError::Deadline { .. }, .. })), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    assert_eq!(loader.warehouse().sent().len(), 2);
    assert!(loader.warehouse().committed_loads().is_empty(), "nothing committed, nothing rejected");
}

#[tokio::test]
async fn a_refused_latest_change_falls_back_to_the_earlier_change_of_its_key() {
    // Key 1: a good create, then an update too long for VARCHAR(10) (refused before any SQL).
    // Key 2: a good create, then an update the database refuses (found by bisection).
    let loader = Loader::new(warehouse(poison_fails, 10, true));
    let records = [
        create(0, &named(1, "Short"), 1),
        create(1, &named(1, "Much-too-long-for-ten"), 2),
        create(2, &named(2, "Fine"), 3),
        create(3, &named(2, POISON), 4),
        create(4, &named(3, "Other"), 5),
    ];
    let s = load(&loader, &pipeline("dlq"), &records).await.unwrap();
    assert_eq!(
        s.rejects,
        vec![
            (1, Stage::Load, vec![Reason::column("lastname".into(), Rule::VarcharLength)], None),
            (3, Stage::Load, vec![Reason::record(Rule::RejectedByDatabase)], Some(DbErrorClass::InvalidValue)),
        ]
    );
    assert_eq!((s.loaded, s.superseded, s.promoted), (3, 0, 2), "both earlier creates load in their place");
    let text = committed_text(loader.warehouse());
    for (value, committed) in [("\"Short\"", true), ("\"Fine\"", true), ("\"Other\"", true), ("Much-too-long", false)] {
        assert_eq!(text.contains(value), committed, "{value}");
    }
    assert_eq!(rows_committed(loader.warehouse()), 3);
}

#[tokio::test]
async fn drift_dead_letters_ignores_or_adds_the_column_the_target_lacks() {
    let records = [create(0, &synth::bulk_patient(1), 1), create(1, &synth::bulk_patient(2), 2)];
    for drift in ["dlq", "ignore", "add"] {
        let loader = Loader::new(warehouse(|_| Answer::commit(), 100, false));
        let s = load(&loader, &pipeline(drift), &records).await.unwrap();
        let warehouse = loader.warehouse();
        let text = committed_text(warehouse);
        match drift {
            "dlq" => {
                let reasons = vec![Reason::column("firstname".into(), Rule::Drift)];
                assert_eq!(s.rejects, vec![(0, Stage::Drift, reasons.clone(), None), (1, Stage::Drift, reasons, None)]);
                assert!(warehouse.sent().is_empty(), "no SQL for rows the target cannot take");
            }
            "ignore" => {
                assert_eq!((s.loaded, s.rejects.len()), (2, 0));
                assert!(!text.contains("\"firstname\"") && text.contains("\"lastname\""), "{text}");
            }
            _ => {
                assert_eq!((s.loaded, s.rejects.len(), s.columns_added), (2, 0, 1));
                assert_eq!(
                    warehouse.sent()[0].statements,
                    [r#"ALTER TABLE "public"."patients" ADD COLUMN "firstname" VARCHAR(65535)"#]
                );
                let described = warehouse.described().iter().filter(|t| **t == target()).count();
                assert_eq!(described, 2, "described again after ADD COLUMN");
                assert!(text.contains("\"firstname\""), "the added column is written: {text}");
            }
        }
    }
}

#[tokio::test]
async fn a_missing_target_table_fails_the_load_and_is_looked_up_again() {
    let loader = Loader::new(Scripted::committing());
    let records = [create(0, &synth::bulk_patient(1), 1)];
    for dry in [false, true, false] {
        let err = run(&loader, &pipeline("dlq"), &records, dry).await.unwrap_err();
        assert!(matches!(&err, LoadError::TargetTableMissing { table } if *table == target()), "{err}");
        let message = err.to_string();
        assert!(message.contains("public.patients") && message.contains("cdc ddl"), "{message}");
    }
    assert!(loader.warehouse().sent().is_empty(), "no SQL");
    assert_eq!(loader.warehouse().described(), [target(), target(), target()], "a missing table is not cached");
}

#[tokio::test]
async fn missing_metadata_columns_fail_the_load_naming_them() {
    let columns = [("id", "int4", 0, true), ("lastname", "varchar", 100, false), ("firstname", "varchar", 100, false)];
    let warehouse = warehouse(|_| Answer::commit(), 100, true).with_table(&target(), &columns);
    warehouse.drop_column(&target(), "_cdc_op");
    warehouse.drop_column(&target(), "_cdc_kafka_offset");
    let loader = Loader::new(warehouse);
    let records = [create(0, &synth::bulk_patient(1), 1)];
    for dry in [false, true] {
        let err = run(&loader, &pipeline("ignore"), &records, dry).await.unwrap_err();
        let LoadError::MetadataColumnsMissing { table, columns } = &err else { panic!("{err}") };
        assert_eq!((table, columns.as_slice()), (&target(), ["_cdc_op", "_cdc_kafka_offset"].as_slice()));
        assert!(err.to_string().contains("_cdc_op, _cdc_kafka_offset"), "{err}");
    }
    assert!(loader.warehouse().sent().is_empty(), "no SQL, no dead letter: the batch fails");
}

#[tokio::test]
async fn a_column_added_to_a_warm_target_is_read_again_once_per_batch() {
    // The target lacks `firstname`; drift = "dlq". A warm loader must see the column once an
    // operator adds it, without a cold start.
    let loader = Loader::new(warehouse(|_| Answer::commit(), 100, false));
    let described = || loader.warehouse().described().iter().filter(|t| **t == target()).count();
    let batch = |offset: i64| [create(offset, &synth::bulk_patient(1), offset as u128 + 1)];
    let drifted = vec![Reason::column("firstname".into(), Rule::Drift)];
    let s = load(&loader, &pipeline("dlq"), &batch(0)).await.unwrap();
    assert_eq!(s.rejects, vec![(0, Stage::Drift, drifted.clone(), None)]);
    assert_eq!(described(), 1, "a cold loader describes once");
    // Warm, the cached description lacks the column: read again, once, before drift decides.
    let s = load(&loader, &pipeline("dlq"), &batch(1)).await.unwrap();
    assert_eq!(s.rejects, vec![(1, Stage::Drift, drifted, None)]);
    assert_eq!(described(), 2, "read again once in the batch");
    loader.warehouse().add_column(&target(), "firstname", "varchar", 100);
    let s = load(&loader, &pipeline("dlq"), &batch(2)).await.unwrap();
    assert_eq!((s.loaded, s.rejects.len()), (1, 0), "the new column is written: {:?}", s.rejects);
    assert!(committed_text(loader.warehouse()).contains("\"firstname\""));
    assert_eq!(described(), 3);
    // Now the cache has every column the batch needs: no DescribeTable.
    load(&loader, &pipeline("dlq"), &batch(3)).await.unwrap();
    assert_eq!(described(), 3, "a cache that has what the batch needs is not read again");
}

#[tokio::test]
async fn a_dry_run_rejects_what_the_load_rejects_and_sends_nothing() {
    // Too long for VARCHAR(10) with an earlier change to fall back to (key 1), too long on its
    // own (key 2), a new column under `drift = "dlq"` for every row (the target lacks
    // `firstname`): the dry run finds each before any SQL, as the load does.
    let records = [
        create(0, &named(1, "Short"), 1),
        create(1, &named(1, "Much-too-long-for-ten"), 2),
        create(2, &named(2, "Also-far-too-long"), 3),
        create(3, &named(3, "Fine"), 4),
    ];
    for (drift, with_firstname) in [("dlq", true), ("dlq", false), ("ignore", false), ("add", false)] {
        let real = Loader::new(warehouse(|_| Answer::commit(), 10, with_firstname));
        let dry = Loader::new(warehouse(|_| Answer::commit(), 10, with_firstname));
        let loaded = load(&real, &pipeline(drift), &records).await.unwrap();
        let predicted = run(&dry, &pipeline(drift), &records, true).await.unwrap();
        let case = format!("drift {drift}, firstname {with_firstname}");
        assert_eq!(predicted.rejects, loaded.rejects, "{case}");
        assert_eq!(
            (predicted.loaded, predicted.superseded, predicted.promoted),
            (loaded.loaded, loaded.superseded, loaded.promoted),
            "{case}"
        );
        assert!(dry.warehouse().sent().is_empty() && dry.warehouse().staged().is_empty(), "{case}: nothing sent");
        assert_eq!(predicted.transactions, 0, "{case}");
    }
}

#[tokio::test]
async fn a_dry_run_rejects_hard_deletes_without_the_ledger_as_the_apply_sql_would() {
    // `delete_mode = "hard"` records every delete in the schema's ledger: without the ledger
    // the apply SQL rejects each (`delete_ledger_missing`), whatever the target holds, so the
    // dry run predicts it; the create beside it would load.
    let columns = [("id", "int4", 0, true), ("lastname", "varchar", 100, false), ("ssn", "varchar", 64, false)];
    let no_ledger = Scripted::new(|_: &[String]| Answer::commit()).with_table(&target(), &columns);
    let text = "[[tables]]\ntopic = \"*.sampledb.dbo.patientinfo\"\ntarget = \"public.patients\"\nkey = [\"id\"]\n\
                delete_mode = \"hard\"\ndrift = \"ignore\"\n[tables.columns.ssn]\nmask = \"hmac\"\n";
    let pipeline = Pipeline::new(Arc::new(Config::parse(text, "hard.toml").unwrap()), Some(KEY)).unwrap();
    let gone = named(2, "Gone");
    let delete = synth::value_json("d", Some(&gone), None, &pos(2), true);
    let records = [
        create(0, &named(1, "Kept"), 1),
        RecordSpec::new(TOPIC, 0, 1, 1_795_000_000_000, Some(&synth::key_json(gone.id, true)), Some(&delete)),
    ];
    let predicted = run(&Loader::new(no_ledger), &pipeline, &records, true).await.unwrap();
    assert_eq!(predicted.loaded, 1, "{predicted:?}");
    assert_eq!(predicted.rejects, vec![(1, Stage::Drift, vec![Reason::record(Rule::DeleteLedgerMissing)], None)]);
}

#[tokio::test]
async fn rows_the_apply_sql_rejects_come_back_from_its_report() {
    let report = vec![(0, "position_regressed"), (2, "delete_ledger_missing")];
    let loader = Loader::new(warehouse(move |_| Answer::Commit { stale: 1, report: report.clone() }, 100, true));
    let records: Vec<RecordSpec> =
        (1..=4).map(|id| create(i64::from(id), &synth::bulk_patient(id), id as u128)).collect();
    let s = load(&loader, &pipeline("dlq"), &records).await.unwrap();
    assert_eq!(
        s.rejects,
        vec![
            (1, Stage::Load, vec![Reason::record(Rule::PositionRegressed)], None),
            (3, Stage::Drift, vec![Reason::record(Rule::DeleteLedgerMissing)], None),
        ]
    );
    assert_eq!((s.loaded, s.stale, s.transactions), (1, 1, 1));
    // DescribeTable of the target and of its ledger, the transaction, and the report.
    assert_eq!(s.calls, 4);
}

#[tokio::test]
async fn a_report_naming_no_rule_the_apply_sql_writes_fails_the_load() {
    // A text that is no rule, and a rule the apply SQL never writes: neither says what became
    // of the row, so neither is taken for another rule.
    for text in ["retired_rule", "rejected_by_database"] {
        let report = vec![(0, text)];
        let loader = Loader::new(warehouse(move |_| Answer::Commit { stale: 0, report: report.clone() }, 100, true));
        let records = [create(0, &synth::bulk_patient(1), 1)];
        let err = load(&loader, &pipeline("dlq"), &records).await.unwrap_err();
        assert_eq!(err.table(), &target());
        assert!(
            matches!(&err, LoadError::Warehouse(WarehouseError { source: DataApiError::Api { code, .. }, .. }) if code == "UnexpectedReportRule"),
            "{text}: {err}"
        );
        assert!(!err.to_string().contains(text), "the report's text is not repeated: {err}");
    }
}

/// Every statement the warehouse got, without the staged files a script sees after a `COPY`.
fn sql_sent(warehouse: &Scripted) -> Vec<String> {
    let statements = warehouse.sent().into_iter().flat_map(|t| t.statements);
    statements.map(|s| s.split_once('\n').map_or(s.clone(), |(sql, _)| sql.to_owned())).collect()
}

#[tokio::test]
async fn both_paths_bisect_to_the_refused_row_and_the_copy_path_sends_no_value_in_sql() {
    for load_path in ["copy", "insert"] {
        let loader = Loader::new(warehouse(poison_fails, 100, true));
        let records: Vec<RecordSpec> = (1..=9)
            .map(|id| {
                let p = if id == 6 { named(id, POISON) } else { named(id, &format!("Lastname{id}")) };
                create(i64::from(id), &p, id as u128)
            })
            .collect();
        let s = load(&loader, &pipeline_on("dlq", load_path), &records).await.unwrap();
        let rejected =
            (6, Stage::Load, vec![Reason::record(Rule::RejectedByDatabase)], Some(DbErrorClass::InvalidValue));
        assert_eq!(s.rejects, vec![rejected], "{load_path}");
        assert_eq!(s.loaded, 8, "{load_path}");
        assert_eq!(rows_committed(loader.warehouse()), 8, "{load_path}");
        let sql = sql_sent(loader.warehouse()).join("\n");
        let staged = loader.warehouse().staged();
        match load_path {
            "copy" => {
                for id in 1..=9 {
                    assert!(!sql.contains(&format!("Lastname{id}")), "a value in the SQL text of the COPY path");
                }
                assert!(!sql.contains(POISON));
                assert!(sql.contains("COPY \"_cdc_stage\""));
                // One object per transaction tried (the bisection stages each subset anew),
                // every one deleted after its transaction.
                assert_eq!(staged.len(), loader.warehouse().sent().len());
                assert_eq!(loader.warehouse().objects_left(), 0, "staged objects outlive their transaction");
            }
            _ => {
                assert!(sql.contains("'Lastname1'"), "the INSERT path sends literals");
                assert!(staged.is_empty(), "the INSERT path stages nothing");
            }
        }
    }
}
