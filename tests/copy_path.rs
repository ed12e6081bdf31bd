//! The staged-COPY load path (`load = "copy"`) through the real parts: the loader writes gzip
//! CSV objects to the local S3 server (moto) and sends `COPY … FROM 's3://…'` through the real
//! AWS SDK to the Data API emulator, which reads the object from S3 and loads it with
//! PostgreSQL's own COPY.
//!
//! - Every value round-trips exactly: a property test loads the same random rows by COPY and
//!   by INSERT into twin tables and compares them, and compares the text columns with what was
//!   sent (NULL vs empty, quotes, backslashes, delimiters, newlines, control characters,
//!   non-ASCII, the null string itself, microsecond timestamps, exact decimals, bytes, SUPER documents).
//! - No row value is in any statement the emulator received during a COPY-path ingest of the
//!   sample events (and the same check finds them on the INSERT path: it can fail).
//! - A warm batch costs at most 3 Data API calls and 2 S3 calls (PUT, DELETE).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cdc_pipeline::Config;
use cdc_pipeline::config::{LoadPath, TableConfig};
use cdc_pipeline::debezium::{Op, Position};
use cdc_pipeline::outcome::{Change, Column, KafkaOrigin, Outcome};
use cdc_pipeline::plan::plan;
use cdc_pipeline::value::{Decimal, Value};
use cdc_tests::harness::{Harness, KEY, config};
use cdc_tests::leaks::{find_leaks, sample_sensitive_values};
use cdc_tests::stack::{METADATA_DDL, emulator, ensure_delete_ledger, loader, pg, unique_table};
use cdc_tests::{event_files, hmac_hex};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use redshift_data_local::EmulatorConfig;

const NOW: i64 = 1_795_521_600_000_000;

/// One row of the twin tables.
#[derive(Debug, Clone)]
struct Row {
    text: Option<String>,
    fixed: Option<String>,
    amount: Option<(i128, u32)>,
    ratio: Option<f64>,
    flag: Option<bool>,
    day: Option<i32>,
    seen: Option<i64>,
    seen_tz: Option<i64>,
    blob: Option<Vec<u8>>,
    doc: Option<String>,
}

const COLUMNS: &str = "id INTEGER NOT NULL, text VARCHAR(65535), fixed CHAR(8), amount NUMERIC(38,6), ratio FLOAT8, \
     flag BOOLEAN, day DATE, seen TIMESTAMP, seen_tz TIMESTAMPTZ, blob VARBYTE, doc SUPER";

/// Text as CDC sources send it: anything but NUL, with the characters CSV and SQL treat
/// specially drawn often, and the null string itself.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\\N".to_owned()),
        Just("\\N1".to_owned()),
        Just("_cdc_null_".to_owned()),
        Just("_cdc_null_1".to_owned()),
        Just(" padded ".to_owned()),
        "[a-z\"',\\\\\n\r\t|;é漢🎉\u{1}\u{1f}\u{7f}\u{a0}\u{2028} ]{0,24}",
        "\\PC{0,12}".prop_map(|s| s.replace('\0', "")),
    ]
}

fn any_row() -> impl Strategy<Value = Row> {
    let micros = -2_208_988_800_000_000i64..4_102_444_800_000_000i64;
    (
        proptest::option::of(any_text()),
        proptest::option::of("[ -~]{0,8}"),
        proptest::option::of((-(10i128.pow(32))..10i128.pow(32), 0u32..=6)),
        proptest::option::of(prop_oneof![Just(0.1), Just(-2.5e-300), Just(1e300), any::<f64>()]),
        proptest::option::of(any::<bool>()),
        proptest::option::of(-25_567i32..2_932_896),
        (proptest::option::of(micros.clone()), proptest::option::of(micros)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
        // SUPER documents (JSON objects and arrays; the emulator, stricter than Redshift, takes
        // no SUPER string from a literal, so the INSERT twin could not hold one).
        proptest::option::of(prop_oneof![
            Just("{\"a\": [1, 2.50, \"x\\\"y\"], \"b\": null}".to_owned()),
            Just("[]".to_owned()),
            proptest::collection::vec(any_text(), 0..3).prop_map(|v| serde_json::to_string(&v).unwrap()),
        ]),
    )
        .prop_map(|(text, fixed, amount, ratio, flag, day, (seen, seen_tz), blob, doc)| Row {
            text,
            fixed,
            amount,
            ratio,
            flag,
            day,
            seen,
            seen_tz,
            blob,
            doc,
        })
}

/// A row with only its text column set.
fn text_only(text: &str) -> Row {
    Row {
        text: Some(text.into()),
        fixed: None,
        amount: None,
        ratio: None,
        flag: None,
        day: None,
        seen: None,
        seen_tz: None,
        blob: None,
        doc: None,
    }
}

fn change(table: &Arc<TableConfig>, id: i64, row: &Row) -> Change<'static> {
    let value = |v: Option<Value<'static>>| v.unwrap_or(Value::Null);
    let text = |s: &Option<String>| value(s.clone().map(|s| Value::Text(Cow::Owned(s))));
    let columns = vec![
        ("id", Value::Int(id)),
        ("text", text(&row.text)),
        ("fixed", text(&row.fixed)),
        ("amount", value(row.amount.map(|(unscaled, scale)| Value::Decimal(Decimal { unscaled, scale })))),
        ("ratio", value(row.ratio.map(Value::Float))),
        ("flag", value(row.flag.map(Value::Bool))),
        ("day", value(row.day.map(Value::Date))),
        ("seen", value(row.seen.map(Value::Timestamp))),
        ("seen_tz", value(row.seen_tz.map(Value::Timestamp))),
        ("blob", value(row.blob.clone().map(|b| Value::Bytes(Cow::Owned(b))))),
        ("doc", text(&row.doc)),
    ];
    Change {
        table: table.clone(),
        op: Op::Create,
        deleted: false,
        tombstone: false,
        position: Position::from_stored(format!("{id:020}")),
        source_ts_ms: Some(1_795_000_000_000),
        kafka: KafkaOrigin { topic: "src.db.dbo.values".into(), partition: 0, offset: id },
        key: vec![Value::Int(id)],
        key_columns: Arc::from(vec![Arc::from("id")]),
        columns: columns.into_iter().map(|(name, value)| Column { name: name.into(), value }).collect(),
        masked: Vec::new(),
        detected: Vec::new(),
        row_schema: None,
        filled_from: None,
    }
}

fn table_config(table: &str, load: &str) -> Arc<TableConfig> {
    let text = format!(
        "[[tables]]\ntopic = \"src.db.dbo.values\"\ntarget = \"public.{table}\"\nkey = [\"id\"]\nload = \"{load}\"\n"
    );
    Config::parse(&text, "copy.toml").unwrap().tables[0].clone()
}

/// Let the emulator connect to the database first: its first connection installs the
/// Redshift types (VARBYTE, SUPER) the tables use.
async fn connect_emulator(loader: &cdc_pipeline::redshift::Loader) {
    let nothing = cdc_pipeline::config::TableName { schema: "public".into(), table: "no_such_table".into() };
    loader.describe_target(&nothing, tokio::time::Instant::now() + Duration::from_secs(30)).await.unwrap();
}

/// Every data column as PostgreSQL's text, by id.
async fn contents(pg: &tokio_postgres::Client, table: &str) -> Vec<Vec<Option<String>>> {
    let sql = format!(
        "SELECT id::text, text, fixed::text, amount::text, ratio::text, flag::text, day::text, seen::text, \
         (seen_tz AT TIME ZONE 'UTC')::text, encode(blob::bytea, 'hex'), doc::text FROM public.{table} t ORDER BY t.id"
    );
    pg.query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (0..11).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect()
}

#[test]
fn every_value_round_trips_through_copy_exactly_as_through_insert() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (emulator, pg) = runtime.block_on(async { (emulator("").await, pg().await) });
    let cases: u32 = std::env::var("COPY_ROUND_TRIP_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
    let mut runner = TestRunner::new(ProptestConfig { cases, ..ProptestConfig::default() });
    let strategy = proptest::collection::vec(any_row(), 1..40);
    let copied_cases = AtomicUsize::new(0);
    runner
        .run(&strategy, |rows| {
            runtime.block_on(async {
                let loader = loader(&emulator.endpoint_url).await;
                connect_emulator(&loader).await;
                let tables = [unique_table("via_copy"), unique_table("via_insert")];
                for table in &tables {
                    pg.batch_execute(&format!("CREATE TABLE public.{table} ({COLUMNS}, {METADATA_DDL})"))
                        .await
                        .unwrap();
                }
                ensure_delete_ledger(&pg, "public").await;
                for (table, load) in tables.iter().zip(["copy", "insert"]) {
                    let config = table_config(table, load);
                    let outcomes: Vec<Outcome<'static>> = rows
                        .iter()
                        .enumerate()
                        .map(|(i, row)| Outcome::Change(change(&config, i as i64 + 1, row)))
                        .collect();
                    let plans = plan(&outcomes);
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    let report = loader.load(&plans, deadline, NOW).await.unwrap();
                    assert!(report.rejects.is_empty(), "{load}: {:?}", report.rejects);
                    assert_eq!(report.rows_loaded, rows.len(), "{load}");
                    if load == "copy" {
                        // (Every row of a case may hold a value only INSERT carries.)
                        copied_cases.fetch_add(usize::from(report.copy_transactions > 0), Ordering::Relaxed);
                    }
                }
                let (copied, inserted) = (contents(&pg, &tables[0]).await, contents(&pg, &tables[1]).await);
                assert_eq!(copied, inserted, "COPY and INSERT stored different values");
                for (row, stored) in rows.iter().zip(&copied) {
                    assert_eq!(stored[1], row.text, "text round trip of {:?}", stored[0]);
                }
                for table in &tables {
                    pg.batch_execute(&format!("DROP TABLE public.{table}")).await.unwrap();
                }
            });
            Ok(())
        })
        .unwrap();
    let copied_cases = copied_cases.into_inner();
    assert!(copied_cases * 2 > cases as usize, "the COPY path ran in only {copied_cases} of {cases} cases");
}

/// Every value the sample events loaded (as text, 5 characters or more) and the raw sensitive
/// values of the events.
async fn loaded_values(h: &Harness) -> Vec<String> {
    let mut values = sample_sensitive_values();
    for table in ["patients", "orders", "visits"] {
        let Ok(rows) = h.sql().await.query(&format!("SELECT * FROM public.{table}"), &[]).await else { continue };
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(text)) = row.try_get::<_, Option<String>>(i)
                    && text.len() >= 5
                    && !row.columns()[i].name().starts_with("_cdc_")
                {
                    values.push(text);
                }
            }
        }
    }
    values.sort();
    values.dedup();
    values
}

/// Ingest the sample events with the example config, its tables loading by `load`, through an
/// emulator that records every statement it receives; the recorded statements and the values.
async fn recorded_ingest(load: &str) -> (String, Vec<String>) {
    let path = std::env::temp_dir().join(format!("copy-path-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let mut h = Harness::new("").await;
    h.emulator = redshift_data_local::spawn(
        EmulatorConfig::new(cdc_tests::stack::database_url())
            .with_s3_endpoint(test_services::s3_endpoint())
            .with_record(Some(path.clone())),
    )
    .await
    .unwrap();
    let mut config = config();
    for table in &mut config.tables {
        let path = if load == "copy" { LoadPath::Copy } else { LoadPath::Insert };
        Arc::make_mut(table).load = path;
    }
    h.create_targets(&config, &event_files()).await;
    let ingestor = h.ingestor(config, KEY);
    let mut copies = 0;
    for file in event_files() {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        copies += cdc_tests::harness::ingest(&ingestor, &text).await.copy_transactions;
    }
    assert_eq!(copies > 0, load == "copy", "{load}: COPY transactions {copies}");
    let recorded = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let statements: Vec<String> = recorded
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["sql"].as_str().unwrap().to_owned())
        .collect();
    (statements.join("\n"), loaded_values(&h).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_row_value_is_in_any_statement_the_emulator_received_on_the_copy_path() {
    let (statements, values) = recorded_ingest("copy").await;
    assert!(statements.contains("COPY \"_cdc_stage\""), "the COPY path ran");
    assert!(values.len() > 20, "the premise: the samples loaded values ({})", values.len());
    let leaks = find_leaks(&statements, &values);
    // Sample data only (synthetic patients): the failure may show where.
    assert!(leaks.is_empty(), "row values in statements: {leaks:?}");
    // The masked SSN as stored (an HMAC) is a value too, and not in the SQL either.
    assert!(!statements.contains(&hmac_hex(KEY, b"123-45-6789")[..16]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leak_check_finds_the_values_the_insert_path_sends() {
    let (statements, values) = recorded_ingest("insert").await;
    assert!(!find_leaks(&statements, &values).is_empty(), "the INSERT path writes literals: the check must see them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_batch_costs_at_most_three_data_api_calls_and_two_s3_calls() {
    let emulator = emulator("").await;
    let pg = pg().await;
    let table = unique_table("calls");
    connect_emulator(&*loader(&emulator.endpoint_url).await).await;
    pg.batch_execute(&format!("CREATE TABLE public.{table} ({COLUMNS}, {METADATA_DDL})")).await.unwrap();
    ensure_delete_ledger(&pg, "public").await;
    let loader = loader(&emulator.endpoint_url).await;
    let config = table_config(&table, "copy");
    let row = text_only("x");
    for batch in 0..3 {
        let outcomes: Vec<Outcome<'static>> =
            (1..=200).map(|id| Outcome::Change(change(&config, batch * 1_000 + id, &row))).collect();
        let plans = plan(&outcomes);
        let report = loader.load(&plans, tokio::time::Instant::now() + Duration::from_secs(60), NOW).await.unwrap();
        assert_eq!((report.rows_loaded, report.copy_transactions), (200, 1));
        if batch > 0 {
            // BatchExecuteStatement with WaitTimeSeconds, and at most one DescribeStatement.
            assert!(report.data_api_calls <= 3, "batch {batch}: {} Data API calls", report.data_api_calls);
            assert_eq!(report.s3_calls, 2, "batch {batch}: PUT and DELETE of the staged object");
        }
    }
    let left = cdc_tests::harness::s3_client()
        .list_objects_v2()
        .bucket("cdc-test-staging")
        .prefix(format!("staging/public.{table}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(left.key_count(), Some(0), "staged objects are deleted after their transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_versioned_bucket_no_version_of_a_staged_object_stays() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let emulator = emulator("").await;
    let pg = pg().await;
    let s3 = cdc_tests::harness::s3_client();
    let bucket = format!("versioned-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(&bucket).versioning_configuration(enabled).send().await.unwrap();
    let api = cdc_pipeline::redshift::DataApi::new(
        cdc_tests::stack::sdk_client(&emulator.endpoint_url),
        cdc_tests::stack::target(),
    );
    let loader = cdc_pipeline::redshift::Loader::new(api.with_staging(cdc_tests::stack::staging_at(
        s3.clone(),
        &bucket,
        "staging",
    )));
    connect_emulator(&loader).await;
    let table = unique_table("versioned");
    pg.batch_execute(&format!("CREATE TABLE public.{table} ({COLUMNS}, {METADATA_DDL})")).await.unwrap();
    ensure_delete_ledger(&pg, "public").await;
    let config = table_config(&table, "copy");
    let row = text_only("kept only in the table");
    let outcomes: Vec<Outcome<'static>> = (1..=3).map(|id| Outcome::Change(change(&config, id, &row))).collect();
    let report =
        loader.load(&plan(&outcomes), tokio::time::Instant::now() + Duration::from_secs(60), NOW).await.unwrap();
    assert_eq!((report.rows_loaded, report.copy_transactions), (3, 1));
    // The premise: in this bucket a delete without the version keeps the data.
    s3.put_object().bucket(&bucket).key("probe/x").body(b"x".to_vec().into()).send().await.unwrap();
    s3.delete_object().bucket(&bucket).key("probe/x").send().await.unwrap();
    let probe = s3.list_object_versions().bucket(&bucket).prefix("probe/").send().await.unwrap();
    assert_eq!(probe.versions().len(), 1, "the premise: a plain delete leaves a noncurrent version");
    let versions = s3.list_object_versions().bucket(&bucket).prefix("staging/").send().await.unwrap();
    assert!(versions.versions().is_empty(), "a version of the staged object stays: {:?}", versions.versions());
    assert!(versions.delete_markers().is_empty(), "the delete was a marker, not the version");
}
