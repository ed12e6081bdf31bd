//! The loader against the local Data API emulator on a real PostgreSQL: what is committed is
//! read back with SQL. Each test uses its own tables.

use std::sync::Arc;
use std::time::Duration;

use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::loader::WarehouseError;
use cdc_pipeline::redshift::{DataApiError, DbErrorClass, LoadError, Loader};
use cdc_pipeline::synth::{self, Patient, RecordSpec, SourcePosition, TOPIC};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline, Reason, Rule, Stage};
use cdc_tests::faults::emulator_faults;
use cdc_tests::hmac_hex;
use cdc_tests::stack::{create_patient_table, emulator, loader, pg, unique_table};
use serde_json::json;
use tokio::time::Instant;

const KEY: &[u8] = b"load-test-masking-key-0123456789abcdef012";

/// What a load did, with owned data (the report borrows the event).
#[derive(Debug, Default)]
struct Summary {
    loaded: usize,
    stale: usize,
    transactions: usize,
    calls: u64,
    retries: u32,
    superseded: usize,
    rejects: Vec<(i64, Stage, Vec<Reason>, Option<DbErrorClass>)>,
}

fn pipeline(tables: &[(&str, &str)], delete_mode: &str, drift: &str) -> Pipeline {
    pipeline_on(tables, delete_mode, drift, "copy")
}

/// [`pipeline`] with every table loading by `load` (`copy`, the default, or `insert`).
fn pipeline_on(tables: &[(&str, &str)], delete_mode: &str, drift: &str, load: &str) -> Pipeline {
    let mut text = String::new();
    for (topic, table) in tables {
        text.push_str(&format!(
            "[[tables]]\ntopic = \"{topic}\"\ntarget = \"public.{table}\"\nkey = [\"id\"]\ndelete_mode = \"{delete_mode}\"\n\
             drift = \"{drift}\"\nload = \"{load}\"\n[tables.columns.ssn]\nmask = \"hmac\"\n"
        ));
    }
    Pipeline::new(Arc::new(Config::parse(&text, "test.toml").unwrap()), Some(KEY)).unwrap()
}

async fn ingest(
    loader: &Loader,
    pipeline: &Pipeline,
    records: &[RecordSpec],
    deadline: Duration,
) -> Result<Summary, LoadError> {
    let text = synth::msk_event_text(records);
    let event = MskEvent::parse(text.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_795_521_600_000_000);
    for (record, outcome) in batch.records().iter().zip(&outcomes) {
        if let cdc_pipeline::Outcome::Reject(r) = outcome {
            panic!("unexpected transform reject at offset {}: {:?}", record.offset, r.reasons);
        }
    }
    let plans = plan(&outcomes);
    let report = loader.load(&plans, Instant::now() + deadline, 1_795_521_600_000_000).await?;
    Ok(Summary {
        loaded: report.rows_loaded,
        stale: report.rows_stale,
        transactions: report.transactions,
        calls: report.data_api_calls,
        retries: report.retries,
        superseded: plans.iter().map(|p| p.superseded()).sum::<usize>() - report.promoted,
        rejects: report
            .rejects
            .iter()
            .map(|r| (batch.records()[r.index].offset, r.stage, r.reasons.clone(), r.error_class))
            .collect(),
    })
}

const LONG: Duration = Duration::from_secs(60);

fn patient(id: i32) -> Patient {
    synth::bulk_patient(id)
}

fn pos(n: u128) -> SourcePosition {
    SourcePosition::streamed(
        synth::lsn_number(0x40, 0, 0) + (n << 8),
        synth::lsn_number(0x40, 0, 0) + (n << 8) - 1,
        1,
        1_795_000_000_000 + n as i64,
    )
}

fn record(topic: &str, offset: i64, id: i32, value: Option<String>) -> RecordSpec {
    RecordSpec::new(topic, 0, offset, 1_795_000_000_000, Some(&synth::key_json(id, true)), value.as_deref())
}

fn create(offset: i64, p: &Patient, n: u128) -> RecordSpec {
    record(TOPIC, offset, p.id, Some(synth::value_json("c", None, Some(p), &pos(n), true)))
}

fn update(offset: i64, before: &Patient, after: &Patient, n: u128) -> RecordSpec {
    record(TOPIC, offset, after.id, Some(synth::value_json("u", Some(before), Some(after), &pos(n), true)))
}

fn delete(offset: i64, p: &Patient, n: u128) -> RecordSpec {
    record(TOPIC, offset, p.id, Some(synth::value_json("d", Some(p), None, &pos(n), true)))
}

type Row = (i32, Option<String>, Option<String>, Option<String>, bool, String, String, String);

/// id, lastname, ssn, dob, deleted, op, position, loaded_at — ordered by id.
async fn rows(table: &str) -> Vec<Row> {
    pg().await
        .query(
            &format!(
                "SELECT id, lastname, ssn, dob::text, _cdc_deleted, _cdc_op, _cdc_position, _cdc_loaded_at::text \
                 FROM public.{table} ORDER BY id"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)))
        .collect()
}

#[tokio::test]
async fn upsert_update_soft_delete_and_redelivery() {
    let emulator = emulator("").await;
    let table = unique_table("soft");
    create_patient_table(&pg().await, &table, "").await;
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "dlq");
    let (p1, p2, p3) = (patient(1), patient(2), patient(3));

    let first = [create(0, &p1, 1), create(1, &p2, 2), create(2, &p3, 3)];
    let s = ingest(&loader, &pipeline, &first, LONG).await.unwrap();
    assert_eq!((s.loaded, s.stale, s.transactions), (3, 0, 1));
    // Cold start: DescribeTable of the target and of its delete ledger; then the batch itself:
    // BatchExecuteStatement and one DescribeStatement, both long-polling (WaitTimeSeconds).
    assert_eq!(s.calls, 4, "two DescribeTable, one BatchExecuteStatement, one DescribeStatement");
    let after_first = rows(&table).await;
    assert_eq!(after_first.len(), 3);
    assert_eq!(
        after_first[0].2.as_deref(),
        Some(hmac_hex(KEY, p1.ssn.as_ref().unwrap().as_bytes()).as_str()),
        "masked"
    );
    let mut dob = String::new();
    cdc_pipeline::temporal::write_timestamp(&mut dob, p1.dob_ms.unwrap() * 1_000, ' ');
    assert_eq!(after_first[0].3.as_deref(), Some(dob.trim_end_matches(".000000")), "dob stored as a timestamp");

    let mut p1_moved = p1.clone();
    p1_moved.last_name = Some("Moved".into());
    let second = [update(3, &p1, &p1_moved, 4), delete(4, &p2, 5), record(TOPIC, 5, p2.id, None)];
    let s = ingest(&loader, &pipeline, &second, LONG).await.unwrap();
    assert_eq!((s.loaded, s.stale), (2, 0));
    let after_second = rows(&table).await;
    assert_eq!(after_second[0].1.as_deref(), Some("Moved"));
    assert_eq!((after_second[1].4, after_second[1].5.as_str()), (true, "d"), "soft delete keeps the row, flagged");
    assert_eq!(after_second[1].1, after_first[1].1, "with its last values");
    assert_eq!(after_second[2], after_first[2], "untouched rows stay as they were");

    // The first batch again (an ESM redelivery) and the second: nothing changes.
    let s = ingest(&loader, &pipeline, &first, LONG).await.unwrap();
    assert_eq!((s.loaded, s.stale), (0, 3), "older or equal positions are stale");
    let s = ingest(&loader, &pipeline, &second, LONG).await.unwrap();
    assert_eq!((s.loaded, s.stale), (0, 2));
    assert_eq!(rows(&table).await, after_second, "redelivery and late replays change nothing, not even _cdc_loaded_at");
}

#[tokio::test]
async fn hard_delete_removes_the_row_and_the_delete_ledger_stops_a_late_replay() {
    let emulator = emulator("").await;
    let table = unique_table("hard");
    create_patient_table(&pg().await, &table, "").await;
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "hard", "dlq");
    let (p1, p2) = (patient(1), patient(2));
    ingest(&loader, &pipeline, &[create(0, &p1, 1), create(1, &p2, 2)], LONG).await.unwrap();
    let s = ingest(&loader, &pipeline, &[delete(2, &p1, 3)], LONG).await.unwrap();
    assert_eq!(s.loaded, 1);
    let ids: Vec<i32> = rows(&table).await.iter().map(|r| r.0).collect();
    assert_eq!(ids, vec![2], "the deleted row is gone");
    // The delete ledger remembers the delete's position: the older create, replayed late, is
    // stale and does not bring the row back.
    let s = ingest(&loader, &pipeline, &[create(0, &p1, 1)], LONG).await.unwrap();
    assert_eq!((s.loaded, s.stale), (0, 1));
    assert_eq!(rows(&table).await.len(), 1, "the hard-deleted row stays deleted");
    let ledger: i64 = pg()
        .await
        .query_one(&format!("SELECT count(*) FROM public._cdc_deletes WHERE _cdc_table = 'public.{table}'"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ledger, 1, "one ledger entry per deleted key");
    // A later create of the key is newer than the delete: it lands.
    let s = ingest(&loader, &pipeline, &[create(3, &p1, 4)], LONG).await.unwrap();
    assert_eq!(s.loaded, 1);
    assert_eq!(rows(&table).await.len(), 2);
}

#[tokio::test]
async fn two_tables_in_one_batch_and_a_delete_in_the_same_batch_as_its_create() {
    let emulator = emulator("").await;
    let (a, b) = (unique_table("two_a"), unique_table("two_b"));
    let pg = pg().await;
    create_patient_table(&pg, &a, "").await;
    create_patient_table(&pg, &b, "").await;
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.patientinfo", &a), ("*.visits", &b)], "soft", "dlq");
    let (p1, p2, p3) = (patient(1), patient(2), patient(3));
    let visit = |offset, p: &Patient, n| {
        record("sqlsrv.sampledb.dbo.visits", offset, p.id, Some(synth::value_json("c", None, Some(p), &pos(n), true)))
    };
    let batch = [create(0, &p1, 1), visit(0, &p2, 2), visit(1, &p3, 3), create(1, &p2, 4), delete(2, &p2, 5)];
    let s = ingest(&loader, &pipeline, &batch, LONG).await.unwrap();
    assert_eq!(
        (s.loaded, s.transactions, s.superseded),
        (4, 2, 1),
        "one transaction per table; create superseded by delete"
    );
    let a_rows = rows(&a).await;
    assert_eq!(a_rows.iter().map(|r| (r.0, r.4)).collect::<Vec<_>>(), vec![(1, false), (2, true)]);
    assert_eq!(rows(&b).await.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3]);
}

#[tokio::test]
async fn ten_thousand_rows_cross_statement_and_call_boundaries() {
    let emulator = emulator("").await;
    let table = unique_table("big");
    let pg = pg().await;
    // Wide rows (a 300-byte last name) so that 10,000 of them need more than one call.
    pg.batch_execute(&format!(
        "CREATE TABLE public.{table} (id INTEGER NOT NULL, firstname VARCHAR(100), lastname VARCHAR(400), state CHAR(2), \
         ssn VARCHAR(64), dob TIMESTAMP, {})",
        cdc_tests::stack::METADATA_DDL
    ))
    .await
    .unwrap();
    let loader = loader(&emulator.endpoint_url).await;
    // The INSERT path, whose statements (90 KB) and transactions (40 statements) the rows cross;
    // the COPY path stages them all in one object.
    let pipeline = pipeline_on(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "dlq", "insert");
    let patients: Vec<Patient> = (1..=10_000)
        .map(|i| {
            let mut p = patient(i);
            p.last_name = Some(format!("{}-{i:0>300}", p.last_name.unwrap()));
            p
        })
        .collect();
    let records: Vec<RecordSpec> =
        patients.iter().enumerate().map(|(i, p)| create(i as i64, p, i as u128 + 1)).collect();
    let s = ingest(&loader, &pipeline, &records, LONG).await.unwrap();
    assert_eq!(s.loaded, 10_000);
    assert!(s.transactions >= 2, "the plan needs several transactions: {}", s.transactions);
    let stats = pg
        .query_one(
            &format!("SELECT count(*), sum(id), sum(length(lastname)), count(DISTINCT id) FROM public.{table}"),
            &[],
        )
        .await
        .unwrap();
    let expected_len: i64 = patients.iter().map(|p| p.last_name.as_ref().unwrap().len() as i64).sum();
    assert_eq!(stats.get::<_, i64>(0), 10_000);
    assert_eq!(stats.get::<_, i64>(1), (1..=10_000i64).sum::<i64>());
    assert_eq!(stats.get::<_, i64>(2), expected_len);
    assert_eq!(stats.get::<_, i64>(3), 10_000);
    for probe in [1, 5_000, 10_000] {
        let lastname: String = pg
            .query_one(&format!("SELECT lastname FROM public.{table} WHERE id = $1"), &[&probe])
            .await
            .unwrap()
            .get(0);
        assert_eq!(Some(lastname), patients[probe as usize - 1].last_name);
    }
}

/// A schemaless change carrying a `score` column.
fn scored(offset: i64, id: i32, score: serde_json::Value, n: u128) -> RecordSpec {
    let value = json!({
        "before": null,
        "after": {"ID": id, "LastName": "L", "SSN": null, "score": score},
        "source": {"connector": "sqlserver", "ts_ms": 1, "commit_lsn": synth::lsn(n << 8), "change_lsn": synth::lsn((n << 8) - 1), "event_serial_no": 1},
        "op": "c",
        "ts_ms": 2
    });
    RecordSpec::new(TOPIC, 0, offset, 1, Some(&json!({"ID": id}).to_string()), Some(&value.to_string()))
}

#[tokio::test]
async fn a_poison_row_is_isolated_by_bisection_and_the_rest_commits() {
    for load in ["insert", "copy"] {
        poison_row(load).await;
    }
}

/// 100 rows, one of which holds text the INTEGER column cannot read: the INSERT path finds it
/// by bisection (the database refuses it); the COPY path before any SQL (its file has no form
/// for it: `copy_unsupported_value`). Either way the other 99 commit.
async fn poison_row(load: &str) {
    let emulator = emulator("").await;
    let table = unique_table("poison");
    create_patient_table(&pg().await, &table, "score INTEGER").await;
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline_on(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "dlq", load);
    let records: Vec<RecordSpec> = (1..=100)
        .map(|i| scored(i64::from(i), i, if i == 37 { json!("not a number") } else { json!(i * 10) }, i as u128))
        .collect();
    let s = ingest(&loader, &pipeline, &records, LONG).await.unwrap();
    assert_eq!(s.loaded, 99);
    assert_eq!(s.rejects.len(), 1);
    let (offset, stage, reasons, class) = &s.rejects[0];
    if load == "insert" {
        assert_eq!((*offset, *stage, *class), (37, Stage::Load, Some(DbErrorClass::InvalidValue)));
        assert_eq!(reasons, &vec![Reason::record(Rule::RejectedByDatabase)]);
    } else {
        assert_eq!((*offset, *stage, *class), (37, Stage::Load, None));
        assert_eq!(reasons, &vec![Reason::column("score".into(), Rule::CopyUnsupportedValue)]);
    }
    let count: i64 = pg().await.query_one(&format!("SELECT count(*) FROM public.{table}"), &[]).await.unwrap().get(0);
    assert_eq!(count, 99);
}

#[tokio::test]
async fn throttling_server_errors_and_serialization_failures_end_committed() {
    let emulator = emulator("throttle=0.25,server_error=0.15,serialization=0.3,seed=11").await;
    let table = unique_table("faults");
    create_patient_table(&pg().await, &table, "").await;
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "dlq");
    let mut retries = 0;
    for batch in 0..8 {
        let records: Vec<RecordSpec> = (0..25)
            .map(|i| {
                let n = batch * 25 + i + 1;
                create(i64::from(n), &patient(n), n as u128)
            })
            .collect();
        let s = ingest(&loader, &pipeline, &records, LONG).await.expect("faults are retried until committed");
        assert_eq!(s.loaded, 25);
        retries += s.retries;
    }
    assert!(retries > 0, "the fault spec made some calls fail");
    assert_eq!(rows(&table).await.len(), 200);
}

#[tokio::test]
async fn a_deadline_too_short_is_a_retriable_error_and_commits_nothing() {
    let emulator = emulator("latency_ms=1500").await;
    let table = unique_table("deadline");
    let pg = pg().await;
    create_patient_table(&pg, &table, "").await;
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "dlq");
    let err = ingest(&loader, &pipeline, &[create(0, &patient(1), 1)], Duration::from_millis(400)).await.unwrap_err();
    assert!(matches!(err, LoadError::Warehouse(WarehouseError { source: DataApiError::Deadline { .. }, .. })), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let count: i64 = pg.query_one(&format!("SELECT count(*) FROM public.{table}"), &[]).await.unwrap().get(0);
    assert_eq!(count, 0, "the cancelled transaction committed nothing");
}

fn with_email(offset: i64, id: i32, n: u128) -> RecordSpec {
    let value = json!({
        "before": null,
        "after": {"ID": id, "LastName": "L", "SSN": null, "Email": format!("p{id}@example.org")},
        "source": {"connector": "sqlserver", "ts_ms": 1, "commit_lsn": synth::lsn(n << 8), "change_lsn": null, "event_serial_no": 1},
        "op": "c"
    });
    RecordSpec::new(TOPIC, 0, offset, 1, Some(&json!({"ID": id}).to_string()), Some(&value.to_string()))
}

#[tokio::test]
async fn drift_policies() {
    let emulator = emulator("").await;
    let loader = loader(&emulator.endpoint_url).await;
    let pg = pg().await;
    for (drift, loaded, rejected) in [("dlq", 0, 2), ("ignore", 2, 0), ("add", 2, 0)] {
        let table = unique_table(&format!("drift_{drift}"));
        create_patient_table(&pg, &table, "").await;
        let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", drift);
        let s = ingest(&loader, &pipeline, &[with_email(0, 1, 1), with_email(1, 2, 2)], LONG).await.unwrap();
        assert_eq!((s.loaded, s.rejects.len()), (loaded, rejected), "drift = {drift}");
        let has_email = pg
            .query_opt(
                "SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = 'email'",
                &[&table],
            )
            .await
            .unwrap()
            .is_some();
        match drift {
            "dlq" => {
                assert_eq!(s.rejects[0].1, Stage::Drift);
                assert_eq!(s.rejects[0].2, vec![Reason::column("email".into(), Rule::Drift)]);
                assert!(!has_email);
            }
            "ignore" => assert!(!has_email),
            _ => {
                assert!(has_email, "drift = add created the column");
                let email: String =
                    pg.query_one(&format!("SELECT email FROM public.{table} WHERE id = 2"), &[]).await.unwrap().get(0);
                assert_eq!(email, "p2@example.org");
            }
        }
    }
}

#[tokio::test]
async fn values_longer_than_their_varchar_in_bytes_are_rejected_before_any_sql() {
    let emulator = emulator("").await;
    let table = unique_table("varchar");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE public.{table} (id INTEGER NOT NULL, lastname VARCHAR(4), {})",
            cdc_tests::stack::METADATA_DDL
        ))
        .await
        .unwrap();
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "ignore");
    let named = |offset, id, name: &str| {
        let mut p = patient(id);
        p.last_name = Some(name.into());
        create(offset, &p, offset as u128 + 1)
    };
    // "Zoë!" is 4 characters but 5 bytes: PostgreSQL would take it, Redshift would not.
    let s = ingest(&loader, &pipeline, &[named(0, 1, "Ok"), named(1, 2, "Zoë!"), named(2, 3, "Smith-Jones")], LONG)
        .await
        .unwrap();
    assert_eq!(s.loaded, 1);
    let mut rejected: Vec<(i64, Vec<Reason>)> = s.rejects.iter().map(|r| (r.0, r.2.clone())).collect();
    rejected.sort_by_key(|r| r.0);
    assert_eq!(
        rejected,
        vec![
            (1, vec![Reason::column("lastname".into(), Rule::VarcharLength)]),
            (2, vec![Reason::column("lastname".into(), Rule::VarcharLength)]),
        ]
    );
    assert_eq!(s.transactions, 1, "the rejected rows never reached the database");
}

#[tokio::test]
async fn a_missing_target_table_fails_the_load_naming_it() {
    let emulator = emulator("").await;
    let loader = loader(&emulator.endpoint_url).await;
    let table = unique_table("absent");
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "dlq");
    let err = ingest(&loader, &pipeline, &[create(0, &patient(1), 1)], LONG).await.unwrap_err();
    assert!(matches!(&err, LoadError::TargetTableMissing { table: t } if t.table == table), "{err}");
    let calls = &emulator_faults(&emulator.endpoint_url).await["calls"];
    assert_eq!(calls["BatchExecuteStatement"], serde_json::Value::Null, "no SQL for a table that does not exist");
}

#[tokio::test]
async fn a_rejected_latest_change_falls_back_to_the_earlier_change_of_its_key() {
    let emulator = emulator("").await;
    let table = unique_table("fallback");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE public.{table} (id INTEGER NOT NULL, lastname VARCHAR(10), score INTEGER, {})",
            cdc_tests::stack::METADATA_DDL
        ))
        .await
        .unwrap();
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "ignore");
    // Key 1: a good create, then an update too long for VARCHAR(10) (refused before any SQL).
    // Key 2: a good create, then an update the database refuses (found by bisection).
    let named = |offset, id, name: &str, n| {
        let mut p = patient(id);
        p.last_name = Some(name.into());
        create(offset, &p, n)
    };
    let records = [
        named(0, 1, "Short", 1),
        named(1, 1, "Much-too-long-for-ten", 2),
        scored(2, 2, json!(7), 3),
        scored(3, 2, json!("not a number"), 4),
        scored(4, 3, json!(9), 5),
    ];
    let s = ingest(&loader, &pipeline, &records, LONG).await.unwrap();
    let mut rejected: Vec<i64> = s.rejects.iter().map(|r| r.0).collect();
    rejected.sort();
    assert_eq!(rejected, vec![1, 3], "the two bad updates are dead-lettered");
    assert_eq!((s.loaded, s.superseded), (3, 0), "both earlier creates load in their place");
    let rows: Vec<(i32, Option<String>, Option<i32>)> = pg()
        .await
        .query(&format!("SELECT id, lastname, score FROM public.{table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![(1, Some("Short".into()), None), (2, Some("L".into()), Some(7)), (3, Some("L".into()), Some(9))]
    );
}

#[tokio::test]
async fn missing_privileges_fail_the_batch_instead_of_dead_lettering_every_row() {
    let emulator = emulator("").await;
    let table = unique_table("denied");
    let pg = pg().await;
    create_patient_table(&pg, &table, "").await;
    // The emulator connects as a superuser, so a trigger stands in for a revoked grant.
    pg.batch_execute(&format!(
        "CREATE FUNCTION public.{table}_deny() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'permission denied for table' USING ERRCODE = '42501'; END $$; \
         CREATE TRIGGER deny BEFORE INSERT ON public.{table} FOR EACH ROW EXECUTE FUNCTION public.{table}_deny()"
    ))
    .await
    .unwrap();
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "dlq");
    let records: Vec<RecordSpec> = (0..64).map(|i| create(i, &patient(i as i32 + 1), i as u128 + 1)).collect();
    let err = ingest(&loader, &pipeline, &records, LONG).await.unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Warehouse(WarehouseError {
                source: DataApiError::Statement { class: DbErrorClass::Permission, .. },
                ..
            })
        ),
        "a permission error fails the batch: {err}"
    );
    let calls = &emulator_faults(&emulator.endpoint_url).await["calls"]["BatchExecuteStatement"];
    assert_eq!(calls, 1, "no bisection: one transaction tried, not one per row");
    assert!(rows(&table).await.is_empty());
}

#[tokio::test]
async fn a_table_dropped_after_it_was_read_fails_the_batch_and_its_retry_names_the_table() {
    let emulator = emulator("").await;
    let table = unique_table("dropped");
    create_patient_table(&pg().await, &table, "").await;
    let loader = loader(&emulator.endpoint_url).await;
    let pipeline = pipeline(&[("*.sampledb.dbo.patientinfo", &table)], "soft", "dlq");
    assert_eq!(ingest(&loader, &pipeline, &[create(0, &patient(1), 1)], LONG).await.unwrap().loaded, 1);
    pg().await.batch_execute(&format!("DROP TABLE public.{table}")).await.unwrap();
    let second = [create(1, &patient(2), 2)];
    let err = ingest(&loader, &pipeline, &second, LONG).await.unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Warehouse(WarehouseError {
                source: DataApiError::Statement { class: DbErrorClass::UndefinedObject, .. },
                ..
            })
        ),
        "{err}"
    );
    // The retry reads the table again, finds it gone, and fails naming it: nothing is
    // dead-lettered for a table an operator must create.
    let err = ingest(&loader, &pipeline, &second, LONG).await.unwrap_err();
    assert!(matches!(&err, LoadError::TargetTableMissing { table: t } if t.table == table), "{err}");
}
