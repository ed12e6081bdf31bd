//! End to end through the loader: a 10,000-record schema-enabled `patientinfo` batch
//! transformed, planned and loaded through the local Data API emulator into PostgreSQL.
//! Reports Data API calls per batch and records/s; `scripts/bench-report.py` reads the
//! summary this writes beside criterion's output.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_pipeline::plan::plan;
use cdc_pipeline::synth::bulk_event;
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};
use cdc_tests::stack::{create_patient_table, emulator, loader, pg, unique_table};

const RECORDS: usize = 10_000;
const RUNS: usize = 5;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let emulator = emulator("").await;
    let bytes = bulk_event(RECORDS, 4, true);
    let mut fresh = Vec::new();
    let mut redelivered = Vec::new();
    for _ in 0..RUNS {
        let table = unique_table("bench");
        create_patient_table(&pg().await, &table, "").await;
        let config = Config::parse(
            &format!("[[tables]]\ntopic = \"*\"\ntarget = \"public.{table}\"\nkey = [\"id\"]\n[tables.columns.ssn]\nmask = \"hmac\"\n[tables.columns.dob]\nmask = \"year\"\n"),
            "bench.toml",
        )
        .unwrap();
        let pipeline = Pipeline::new(Arc::new(config), Some(b"bench-masking-key-0123456789abcdef0123")).unwrap();
        let loader = loader(&emulator.endpoint_url).await;
        for pass in [&mut fresh, &mut redelivered] {
            let started = Instant::now();
            let event = MskEvent::parse(&bytes).unwrap();
            let batch = DecodedBatch::from_event(&event);
            let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_795_521_600_000_000);
            let plans = plan(&outcomes);
            let report = loader.load(&plans, tokio::time::Instant::now() + Duration::from_secs(120), 0).await.unwrap();
            let elapsed = started.elapsed();
            assert_eq!(report.rows_loaded + report.rows_stale, RECORDS);
            pass.push((elapsed, report.data_api_calls, report.transactions, report.rows_loaded));
        }
    }
    let summarize = |name: &str, runs: &[(Duration, u64, usize, usize)]| {
        let mut times: Vec<f64> = runs.iter().map(|r| r.0.as_secs_f64()).collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let calls = runs.iter().map(|r| r.1).max().unwrap_or(0);
        let transactions = runs.iter().map(|r| r.2).max().unwrap_or(0);
        println!(
            "{name}: {RECORDS} records, median {:.0} ms, {:.0} records/s, {calls} Data API calls ({transactions} BatchExecuteStatement), rows loaded {}",
            median * 1e3,
            RECORDS as f64 / median,
            runs[0].3
        );
        format!(
            "{{\"case\":\"{name}\",\"records\":{RECORDS},\"median_s\":{median},\"calls\":{calls},\"transactions\":{transactions},\"loaded\":{}}}",
            runs[0].3
        )
    };
    let lines = [summarize("fresh", &fresh), summarize("redelivered", &redelivered)];
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| cdc_tests::repo_root().join("target"), std::path::PathBuf::from);
    let dir = target.join("criterion");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("input-load-10k.jsonl"), lines.join("\n") + "\n").unwrap();
}
