//! Concurrent load: 8 partitions, each a sequence of 1,000-record batches handled by its own
//! concurrent invocation (as provisioned pollers do), all into one table through the Data
//! API emulator — once without faults and once with them. No loss (every key holds its
//! latest version), no duplicates (one row per key), and the throughput and Data API calls
//! reported. `LOAD_BATCHES` sets batches per partition (default 3; `make soak` uses 50).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_pipeline::Config;
use cdc_pipeline::ingest::{Ingestor, Invocation};
use cdc_pipeline::synth::{RecordSpec, lsn, msk_event_text};
use cdc_tests::faults::emulator_faults;
use cdc_tests::harness::{Harness, KEY};
use cdc_tests::stack::METADATA_DDL;
use serde_json::json;

const PARTITIONS: i64 = 8;
const RECORDS_PER_BATCH: i64 = 1_000;
/// Keys per partition: batches revisit keys, so later batches update earlier rows.
const KEYS_PER_PARTITION: i64 = 1_500;
const TOPIC: &str = "src.db.dbo.load";

fn batch_event(partition: i64, batch: i64) -> String {
    let records: Vec<RecordSpec> = (0..RECORDS_PER_BATCH)
        .map(|i| {
            let sequence = batch * RECORDS_PER_BATCH + i;
            let id = partition * KEYS_PER_PARTITION + sequence % KEYS_PER_PARTITION;
            let commit = ((sequence as u128 + 1) << 8) | partition as u128;
            let op = if sequence < KEYS_PER_PARTITION { "c" } else { "u" };
            let value = json!({
                "before": null,
                "after": {"ID": id, "Version": sequence, "Name": format!("name-{id}-{sequence}")},
                "source": {"connector": "sqlserver", "ts_ms": 1_795_000_000_000i64, "commit_lsn": lsn(commit), "change_lsn": lsn(commit - 1), "event_serial_no": 1},
                "op": op,
            });
            RecordSpec::new(TOPIC, partition, sequence, 1, Some(&json!({"ID": id}).to_string()), Some(&value.to_string()))
        })
        .collect();
    msk_event_text(&records)
}

struct Outcome {
    records: i64,
    seconds: f64,
    data_api_calls: u64,
    transactions: usize,
    retries: u32,
    failed_invocations: u64,
    /// Faults the emulator injected (its `GET /__faults` counters, summed).
    faults_injected: u64,
}

async fn run(faults: &str, batches: i64, lock: bool) -> Outcome {
    let h = Harness::new(faults).await;
    let sql = h.sql().await;
    sql.batch_execute(&format!(
        "CREATE TABLE public.load (id BIGINT NOT NULL, version BIGINT, name VARCHAR(64), {METADATA_DDL})"
    ))
    .await
    .unwrap();
    cdc_tests::stack::ensure_delete_ledger(&sql, "public").await;
    let config = Config::parse(
        &format!("[[tables]]\ntopic = \"{TOPIC}\"\ntarget = \"public.load\"\nkey = [\"id\"]\nlock = {lock}\n[tables.columns.id]\ntype = \"int64\"\n[tables.columns.version]\ntype = \"int64\"\n"),
        "load.toml",
    )
    .unwrap();
    let ingestor: Arc<Ingestor> = Arc::new(h.ingestor(config, KEY));
    let events: Vec<Vec<String>> = (0..PARTITIONS).map(|p| (0..batches).map(|b| batch_event(p, b)).collect()).collect();
    let started = Instant::now();
    let mut pollers = Vec::new();
    for (partition, batches) in events.into_iter().enumerate() {
        let ingestor = ingestor.clone();
        pollers.push(tokio::spawn(async move {
            let (mut calls, mut transactions, mut retries, mut failed) = (0u64, 0usize, 0u32, 0u64);
            for event in batches {
                // The event source mapping retries a failed batch until it succeeds.
                loop {
                    match ingestor.ingest(event.as_bytes(), &Invocation::local(Duration::from_secs(300))).await {
                        Ok(summary) => {
                            let p = summary.processed;
                            assert!(p.is_balanced(), "partition {partition}: {p:?}");
                            assert_eq!(p.dead_lettered_total(), 0, "partition {partition}: nothing to reject here");
                            calls += p.data_api_calls;
                            transactions += p.transactions;
                            retries += p.retries;
                            break;
                        }
                        Err(_) => failed += 1,
                    }
                }
            }
            (calls, transactions, retries, failed)
        }));
    }
    let mut outcome = Outcome {
        records: PARTITIONS * batches * RECORDS_PER_BATCH,
        seconds: 0.0,
        data_api_calls: 0,
        transactions: 0,
        retries: 0,
        failed_invocations: 0,
        faults_injected: 0,
    };
    for poller in pollers {
        let (calls, transactions, retries, failed) = poller.await.expect("poller");
        outcome.data_api_calls += calls;
        outcome.transactions += transactions;
        outcome.retries += retries;
        outcome.failed_invocations += failed;
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    let counters = emulator_faults(&h.emulator.endpoint_url).await;
    outcome.faults_injected =
        counters["injected"].as_object().expect("injected counters").values().filter_map(|n| n.as_u64()).sum();

    // No loss: every key holds the version of its last change. No duplicates: one row per key.
    let keys = PARTITIONS * KEYS_PER_PARTITION.min(batches * RECORDS_PER_BATCH);
    let expected_version_sum: i64 = (0..PARTITIONS)
        .map(|_| {
            let last = batches * RECORDS_PER_BATCH - 1;
            (0..KEYS_PER_PARTITION.min(batches * RECORDS_PER_BATCH))
                .map(|k| last - ((last - k) % KEYS_PER_PARTITION))
                .sum::<i64>()
        })
        .sum();
    let row = h
        .sql()
        .await
        .query_one("SELECT count(*), count(DISTINCT id), sum(version)::bigint FROM public.load", &[])
        .await
        .unwrap();
    let (rows, distinct, versions): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((rows, distinct), (keys, keys), "one row per key, no key lost");
    assert_eq!(versions, expected_version_sum, "every key holds its latest version");
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_partitions_lose_and_duplicate_nothing() {
    let batches: i64 = std::env::var("LOAD_BATCHES").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let clean = run("", batches, false).await;
    let locked = run("", batches, true).await;
    let faulty = run("throttle=0.05,server_error=0.03,serialization=0.05,latency_ms=5,seed=3", batches, true).await;
    let report = |o: &Outcome| {
        json!({
            "records": o.records,
            "seconds": o.seconds,
            "records_per_second": o.records as f64 / o.seconds,
            "data_api_calls": o.data_api_calls,
            "data_api_calls_per_batch": o.data_api_calls as f64 / (PARTITIONS * batches) as f64,
            "transactions": o.transactions,
            "retries": o.retries,
            "failed_invocations_retried": o.failed_invocations,
            "faults_injected": o.faults_injected,
        })
    };
    let summary = json!({"partitions": PARTITIONS, "batches_per_partition": batches, "records_per_batch": RECORDS_PER_BATCH,
                         "without_faults": report(&clean), "without_faults_locked": report(&locked), "with_faults_locked": report(&faulty)});
    println!("load test: {summary}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| cdc_tests::repo_root().join("target"), std::path::PathBuf::from);
    let _ = std::fs::create_dir_all(dir.join("reliability"));
    let _ = std::fs::write(dir.join("reliability/load.json"), summary.to_string());
    assert_eq!(clean.faults_injected + locked.faults_injected, 0, "runs without a fault spec saw no faults");
    assert!(faulty.faults_injected > 0, "the fault spec injected faults: {}", faulty.faults_injected);
    // Injected faults are absorbed by retried calls or retried invocations.
    assert!(
        u64::from(faulty.retries) + faulty.failed_invocations > 0,
        "{} injected faults left no retry behind",
        faulty.faults_injected
    );
}
