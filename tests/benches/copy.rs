//! The load paths side by side (issue 14): whole ingest invocations — decode, transform, plan,
//! load, dead letters — of a 1,000-row and a 5,000-row batch on the INSERT path
//! (`load = "insert"`, multi-row `VALUES` literals) and on the staged-COPY path
//! (`load = "copy"`), each run into a freshly created table, against the floor: PostgreSQL's
//! own `COPY … FROM STDIN` (CSV) of the same rows into an identical fresh table. Then the
//! concurrent load (8 partitions into one table, `cdc_tests::concurrent_load`) on the COPY
//! path with `lock` on and off.
//!
//! Everything runs through the Data API emulator on PostgreSQL, with staged objects in the
//! local S3 server (moto). The function is warm: one untimed invocation first, so the timed
//! ones make no DescribeTable calls. Medians of [`RUNS`] runs. Prints a table and writes
//! `load-paths.json` beside criterion's output, which `scripts/bench-report.py` turns into
//! BENCHMARKS.md's tables. A path that fails (an ingest error, a row missing or different)
//! makes the bench exit with an error after the others ran.

use std::time::{Duration, Instant};

use cdc_pipeline::Config;
use cdc_pipeline::ingest::{Invocation, Processed};
use cdc_pipeline::synth::{RecordSpec, bulk_patient, lsn, msk_event_text};
use cdc_tests::concurrent_load::{self, PARTITIONS, RECORDS_PER_BATCH};
use cdc_tests::harness::{Harness, KEY};
use cdc_tests::stack::create_patient_table;
use futures_util::{SinkExt, TryStreamExt};
use serde_json::{Value, json};

const SIZES: [usize; 2] = [1_000, 5_000];
const RUNS: usize = 5;
/// Lambda's limit on a synchronous invocation's payload (6 MB), in bytes.
const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// Bytes of each row's `note`: sized so the 5,000-row event is just under [`LAMBDA_PAYLOAD_LIMIT`].
const NOTE_BYTES: usize = 298;
/// Batches per partition of the concurrent load.
const CONCURRENT_BATCHES: i64 = 5;
const TOPIC: &str = "src.clinic.dbo.patient";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let failures = runtime.block_on(run());
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("FAILED: {failure}");
        }
        std::process::exit(1);
    }
}

async fn run() -> Vec<String> {
    let h = Harness::new("").await;
    let mut failures = Vec::new();
    let mut batches = Vec::new();
    for rows in SIZES {
        let event = patient_event(rows);
        println!("{rows}-row event: {} bytes (Lambda's limit: {LAMBDA_PAYLOAD_LIMIT})", event.len());
        assert!(event.len() < LAMBDA_PAYLOAD_LIMIT, "the {rows}-row event must fit one invocation");
        let insert = time_ingest(&h, &event, rows, "insert").await.unwrap_or_else(|e| panic!("INSERT path: {e}"));
        let csv = table_as_csv(&h, "patient_insert").await;
        let floor = time_copy_from_stdin(&h, &csv, rows).await;
        let copy = match time_ingest(&h, &event, rows, "copy").await {
            Ok(copy) => same_rows(&h, "patient_copy", "patient_insert").await.map(|()| copy),
            Err(e) => Err(e),
        };
        if let Err(e) = &copy {
            failures.push(format!("COPY path, {rows} rows: {e}"));
        }
        batches.push(json!({
            "rows": rows,
            "event_bytes": event.len(),
            "floor_median_s": floor,
            "paths": [path_summary("insert", &Ok(insert), floor), path_summary("copy", &copy, floor)],
        }));
    }
    let mut concurrent = Vec::new();
    for lock in [true, false] {
        let outcome = concurrent_load::run("", CONCURRENT_BATCHES, lock).await;
        if let Err(e) = &outcome {
            failures.push(format!("concurrent load (COPY path), lock = {lock}: {e}"));
        }
        concurrent.push(concurrent_summary(lock, &outcome));
    }
    let summary = json!({
        "runs": RUNS,
        "lambda_payload_limit": LAMBDA_PAYLOAD_LIMIT,
        "batches": batches,
        "concurrent": {"partitions": PARTITIONS, "batches_per_partition": CONCURRENT_BATCHES,
                       "records_per_batch": RECORDS_PER_BATCH, "runs": concurrent},
    });
    print_tables(&summary);
    write_summary(&summary);
    failures
}

/// `rows` create events of distinct patients on 4 partitions, payload only (no Connect
/// schema), each with a [`NOTE_BYTES`] text beside the `patientinfo` columns.
fn patient_event(rows: usize) -> String {
    let records: Vec<RecordSpec> = (0..rows)
        .map(|i| {
            let patient = bulk_patient(i as i32 + 1);
            let commit = 0x2c_0000_10c8_0000 + i as u128 * 16;
            let ts_ms = 1_764_000_000_000 + i as i64;
            let value = json!({
                "before": null,
                "after": {"ID": patient.id, "FirstName": patient.first_name, "LastName": patient.last_name,
                          "State": patient.state, "SSN": patient.ssn, "DOB": patient.dob_ms, "Note": note(i)},
                "source": {"version": "3.3.1.Final", "connector": "sqlserver", "name": "src", "ts_ms": ts_ms,
                           "snapshot": "false", "db": "clinic", "sequence": null, "ts_us": ts_ms * 1_000,
                           "ts_ns": ts_ms * 1_000_000, "schema": "dbo", "table": "patient",
                           "change_lsn": lsn(commit + 2), "commit_lsn": lsn(commit), "event_serial_no": 1},
                "transaction": null,
                "op": "c",
                "ts_ms": ts_ms + 250,
            });
            let partition = i as i64 % 4;
            let key = json!({"ID": patient.id}).to_string();
            RecordSpec::new(TOPIC, partition, i as i64, ts_ms, Some(&key), Some(&value.to_string()))
        })
        .collect();
    msk_event_text(&records)
}

/// A free-text note of [`NOTE_BYTES`] bytes, with what CSV and SQL literals must escape.
fn note(i: usize) -> String {
    let sentence = format!("Visit {i}: follow-up in 6 weeks, \"routine\"; patient's café order noted. ");
    let mut note = sentence.repeat(NOTE_BYTES / sentence.len() + 1);
    while note.len() > NOTE_BYTES {
        note.pop();
    }
    note
}

fn table_config(load: &str) -> Config {
    let toml = format!(
        "[[tables]]\ntopic = \"{TOPIC}\"\ntarget = \"public.patient_{load}\"\nkey = [\"id\"]\nload = \"{load}\"\n\
         [tables.columns.ssn]\nmask = \"hmac\"\n[tables.columns.dob]\ntype = \"timestamp_ms\"\nmask = \"year\"\n"
    );
    Config::parse(&toml, "bench.toml").unwrap()
}

/// `public.<name>` dropped and created again: the `patientinfo` shape plus the note.
async fn create_fresh_table(h: &Harness, name: &str) {
    let sql = h.sql().await;
    sql.batch_execute(&format!("DROP TABLE IF EXISTS public.{name}")).await.unwrap();
    create_patient_table(&sql, name, &format!("note VARCHAR({NOTE_BYTES})")).await;
}

/// One timed invocation: its time and what it reports.
struct Run {
    seconds: f64,
    processed: Processed,
}

/// [`RUNS`] timed invocations of `event` on the `load` path, after an untimed one that warms
/// the function, each into a freshly created `public.patient_<load>`. The table of the last
/// run stays. An error when an invocation failed or did not load every row.
async fn time_ingest(h: &Harness, event: &str, rows: usize, load: &str) -> Result<Vec<Run>, String> {
    let ingestor = h.ingestor(table_config(load), KEY);
    let table = format!("patient_{load}");
    let mut runs = Vec::new();
    for run in 0..=RUNS {
        create_fresh_table(h, &table).await;
        let started = Instant::now();
        let summary = ingestor
            .ingest(event.as_bytes(), &Invocation::local(Duration::from_secs(300)))
            .await
            .map_err(|e| e.to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        let processed = summary.processed;
        if processed.loaded != rows || processed.dead_lettered_total() != 0 || !processed.is_balanced() {
            return Err(format!("{rows} rows sent, not all loaded: {processed:?}"));
        }
        let count = row_count(h, &table).await;
        if count != rows as i64 {
            return Err(format!("{rows} rows loaded, {count} in the table"));
        }
        if run > 0 {
            runs.push(Run { seconds, processed });
        }
    }
    Ok(runs)
}

async fn row_count(h: &Harness, table: &str) -> i64 {
    h.sql().await.query_one(&format!("SELECT count(*) FROM public.{table}"), &[]).await.unwrap().get(0)
}

/// Every row of `public.<table>` as PostgreSQL's CSV (`COPY … TO STDOUT`).
async fn table_as_csv(h: &Harness, table: &str) -> Vec<u8> {
    let sql = h.sql().await;
    let stream = sql.copy_out(&format!("COPY public.{table} TO STDOUT (FORMAT csv)")).await.unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

/// The floor: the median time of PostgreSQL's `COPY … FROM STDIN` of `csv` into a freshly
/// created table like the targets, over [`RUNS`] runs (only the COPY timed).
async fn time_copy_from_stdin(h: &Harness, csv: &[u8], rows: usize) -> f64 {
    let sql = h.sql().await;
    let mut times = Vec::new();
    for _ in 0..RUNS {
        create_fresh_table(h, "patient_floor").await;
        let started = Instant::now();
        let sink = sql.copy_in("COPY public.patient_floor FROM STDIN (FORMAT csv)").await.unwrap();
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::copy_from_slice(csv)).await.unwrap();
        let copied = sink.finish().await.unwrap();
        times.push(started.elapsed().as_secs_f64());
        assert_eq!(copied, rows as u64, "the floor copies every row");
    }
    median(&mut times)
}

/// The rows of `public.<loaded>` equal those of `public.<reference>` (but their load times).
async fn same_rows(h: &Harness, loaded: &str, reference: &str) -> Result<(), String> {
    let columns = "id, firstname, lastname, state, ssn, dob, note, _cdc_position, _cdc_op, _cdc_deleted, \
                   _cdc_source_ts, _cdc_kafka_topic, _cdc_kafka_partition, _cdc_kafka_offset";
    let query = format!(
        "SELECT count(*) FROM ((SELECT {columns} FROM public.{loaded} EXCEPT ALL SELECT {columns} FROM public.{reference}) \
         UNION ALL (SELECT {columns} FROM public.{reference} EXCEPT ALL SELECT {columns} FROM public.{loaded})) AS differing"
    );
    let differing: i64 = h.sql().await.query_one(&query, &[]).await.unwrap().get(0);
    if differing == 0 { Ok(()) } else { Err(format!("{differing} rows differ from the INSERT path's")) }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A path's figures: the median time, its ratio to the floor, and the counts of the median run.
fn path_summary(path: &str, runs: &Result<Vec<Run>, String>, floor: f64) -> Value {
    let runs = match runs {
        Ok(runs) => runs,
        Err(e) => return json!({"path": path, "error": e}),
    };
    let mut order: Vec<&Run> = runs.iter().collect();
    order.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let middle = order[order.len() / 2];
    let p = &middle.processed;
    json!({
        "path": path,
        "median_s": middle.seconds,
        "ratio_to_floor": middle.seconds / floor,
        "data_api_calls": p.data_api_calls,
        "s3_calls": p.s3_calls,
        "sql_bytes": p.sql_bytes,
        "staged_bytes": p.staged_bytes,
        "transactions": p.transactions,
        "copy_transactions": p.copy_transactions,
        "retries": p.retries,
    })
}

fn concurrent_summary(lock: bool, outcome: &Result<concurrent_load::Outcome, String>) -> Value {
    match outcome {
        Ok(o) => json!({
            "lock": lock,
            "records": o.records,
            "seconds": o.seconds,
            "records_per_second": o.records_per_second(),
            "data_api_calls": o.data_api_calls,
            "s3_calls": o.s3_calls,
            "transactions": o.transactions,
            "copy_transactions": o.copy_transactions,
            "retries": o.retries,
            "conflicts": o.conflicts,
            "failed_invocations_retried": o.failed_invocations,
        }),
        Err(e) => json!({"lock": lock, "error": e}),
    }
}

fn print_tables(summary: &Value) {
    let n = |v: &Value| v.as_u64().unwrap_or_default();
    let f = |v: &Value| v.as_f64().unwrap_or_default();
    println!(
        "\n{:>6} {:>11} {:<7} {:>10} {:>8} {:>9} {:>4} {:>10} {:>12} {:>3}",
        "rows", "event bytes", "path", "median", "÷ floor", "Data API", "S3", "SQL bytes", "staged bytes", "tx"
    );
    for batch in summary["batches"].as_array().unwrap() {
        let (rows, event_bytes) = (n(&batch["rows"]), n(&batch["event_bytes"]));
        println!(
            "{rows:>6} {event_bytes:>11} {:<7} {:>8.1}ms {:>7.1}×",
            "floor",
            f(&batch["floor_median_s"]) * 1e3,
            1.0
        );
        for p in batch["paths"].as_array().unwrap() {
            let path = p["path"].as_str().unwrap();
            if let Some(e) = p["error"].as_str() {
                println!("{rows:>6} {event_bytes:>11} {path:<7} FAILED: {e}");
                continue;
            }
            println!(
                "{rows:>6} {event_bytes:>11} {path:<7} {:>8.1}ms {:>7.1}× {:>9} {:>4} {:>10} {:>12} {:>3}",
                f(&p["median_s"]) * 1e3,
                f(&p["ratio_to_floor"]),
                n(&p["data_api_calls"]),
                n(&p["s3_calls"]),
                n(&p["sql_bytes"]),
                n(&p["staged_bytes"]),
                n(&p["transactions"])
            );
        }
    }
    let concurrent = &summary["concurrent"];
    println!(
        "\nconcurrent load, COPY path: {} partitions × {} batches × {} records into one table",
        concurrent["partitions"], concurrent["batches_per_partition"], concurrent["records_per_batch"]
    );
    for c in concurrent["runs"].as_array().unwrap() {
        let lock = if c["lock"] == true { "lock on " } else { "lock off" };
        match c["error"].as_str() {
            Some(e) => println!("  {lock}: FAILED: {e}"),
            None => println!(
                "  {lock}: {:.0} records/s, {} transactions ({} COPY), {} retries, {} conflicts, {} Data API calls, {} S3 calls",
                f(&c["records_per_second"]),
                n(&c["transactions"]),
                n(&c["copy_transactions"]),
                n(&c["retries"]),
                n(&c["conflicts"]),
                n(&c["data_api_calls"]),
                n(&c["s3_calls"])
            ),
        }
    }
}

fn write_summary(summary: &Value) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| cdc_tests::repo_root().join("target"), std::path::PathBuf::from);
    let dir = target.join("criterion");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("load-paths.json"), summary.to_string()).unwrap();
}
