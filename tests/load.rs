//! Concurrent load: 8 partitions, each a sequence of 1,000-record batches handled by its own
//! concurrent invocation (as provisioned pollers do), all into one table through the Data
//! API emulator — once without faults and once with them. No loss (every key holds its
//! latest version), no duplicates (one row per key), and the throughput and Data API calls
//! reported (the run itself: `cdc_tests::concurrent_load`, which the COPY benchmark shares).
//! `LOAD_BATCHES` sets batches per partition (default 3; `make soak` uses 50).

use cdc_tests::concurrent_load::{Outcome, PARTITIONS, RECORDS_PER_BATCH, run};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_partitions_lose_and_duplicate_nothing() {
    let batches: i64 = std::env::var("LOAD_BATCHES").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let clean = run("", batches, false).await.unwrap();
    let locked = run("", batches, true).await.unwrap();
    let faulty =
        run("throttle=0.05,server_error=0.03,serialization=0.05,latency_ms=5,seed=3", batches, true).await.unwrap();
    let report = |o: &Outcome| {
        json!({
            "records": o.records,
            "seconds": o.seconds,
            "records_per_second": o.records_per_second(),
            "data_api_calls": o.data_api_calls,
            "data_api_calls_per_batch": o.data_api_calls as f64 / (PARTITIONS * batches) as f64,
            "transactions": o.transactions,
            "retries": o.retries,
            "conflicts": o.conflicts,
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
