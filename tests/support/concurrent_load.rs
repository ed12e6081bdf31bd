//! The concurrent load: 8 partitions, each a sequence of 1,000-record batches handled by its
//! own concurrent invocation (as provisioned pollers do), all into one table through the Data
//! API emulator. [`run`] fails loudly on loss or duplication (every key must hold its latest
//! version, in one row) and reports throughput, Data API and S3 calls, transactions, retries
//! and conflicts. The load test (`tests/load.rs`) and the COPY benchmark
//! (`tests/benches/copy.rs`) run it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::types::StatusString;
use cdc_pipeline::Config;
use cdc_pipeline::ingest::{Ingestor, Invocation, Processed};
use cdc_pipeline::synth::{RecordSpec, lsn, msk_event_text};
use serde_json::json;

use crate::faults::{emulator_faults, set_emulator_faults};
use crate::harness::{Harness, KEY};
use crate::stack::{METADATA_DDL, sdk_client};

pub const PARTITIONS: i64 = 8;
pub const RECORDS_PER_BATCH: i64 = 1_000;
/// Keys per partition: batches revisit keys, so later batches update earlier rows.
const KEYS_PER_PARTITION: i64 = 1_500;
const TOPIC: &str = "src.db.dbo.load";
/// Failed invocations of one batch in a row before the run gives up. The event source mapping
/// retries a failed batch until it succeeds; a batch that keeps failing (a load path that
/// cannot work) would hang the run instead of failing it.
const MAX_ATTEMPTS: u32 = 20;

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

/// What a run did, summed over its invocations.
#[derive(Debug, Default)]
pub struct Outcome {
    pub records: i64,
    pub seconds: f64,
    pub data_api_calls: u64,
    pub s3_calls: u64,
    pub transactions: usize,
    /// Of `transactions`, those that `COPY`ed a staged object.
    pub copy_transactions: usize,
    /// Calls and transactions the loader repeated ([`Processed::retries`]).
    pub retries: u32,
    /// Invocations that failed and were run again (as the event source mapping does).
    pub failed_invocations: u64,
    /// Faults the emulator injected (its `GET /__faults` counters, summed).
    pub faults_injected: u64,
    /// Transactions the emulator failed for a conflict with a concurrent one (SNAPSHOT's
    /// "conflict with concurrent transaction", SERIALIZABLE's `1023`), injected ones included.
    pub conflicts: u64,
}

impl Outcome {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    fn add_invocation(&mut self, p: &Processed) {
        self.data_api_calls += p.data_api_calls;
        self.s3_calls += p.s3_calls;
        self.transactions += p.transactions;
        self.copy_transactions += p.copy_transactions;
        self.retries += p.retries;
    }
}

/// `batches` batches per partition into a fresh `public.load` (`lock` as given, the default
/// load path), through an emulator injecting `faults` ("" for none). Panics when a key was
/// lost, duplicated or left at an older version; an error when a batch failed
/// [`MAX_ATTEMPTS`] times in a row.
pub async fn run(faults: &str, batches: i64, lock: bool) -> Result<Outcome, String> {
    let h = Harness::new(faults).await;
    let sql = h.sql().await;
    sql.batch_execute(&format!(
        "CREATE TABLE public.load (id BIGINT NOT NULL, version BIGINT, name VARCHAR(64), {METADATA_DDL})"
    ))
    .await
    .unwrap();
    crate::stack::ensure_delete_ledger(&sql, "public").await;
    let config = Config::parse(
        &format!("[[tables]]\ntopic = \"{TOPIC}\"\ntarget = \"public.load\"\nkey = [\"id\"]\nlock = {lock}\n[tables.columns.id]\ntype = \"int64\"\n[tables.columns.version]\ntype = \"int64\"\n"),
        "load.toml",
    )
    .unwrap();
    let ingestor: Arc<Ingestor> = Arc::new(h.ingestor(config, KEY));
    let events: Vec<Vec<String>> = (0..PARTITIONS).map(|p| (0..batches).map(|b| batch_event(p, b)).collect()).collect();
    let started = Instant::now();
    let pollers: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(partition, batches)| tokio::spawn(poll_partition(ingestor.clone(), partition, batches)))
        .collect();
    let mut outcome = Outcome { records: PARTITIONS * batches * RECORDS_PER_BATCH, ..Outcome::default() };
    let mut failure = None;
    for poller in pollers {
        match poller.await.expect("poller") {
            Ok((invocations, failed)) => {
                invocations.iter().for_each(|p| outcome.add_invocation(p));
                outcome.failed_invocations += failed;
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    if let Some(e) = failure {
        return Err(e);
    }
    let counters = emulator_faults(&h.emulator.endpoint_url).await;
    outcome.faults_injected =
        counters["injected"].as_object().expect("injected counters").values().filter_map(|n| n.as_u64()).sum();
    // The injected faults would throttle the listing itself: off first (counters read above).
    set_emulator_faults(&h.emulator.endpoint_url, "").await;
    outcome.conflicts = conflicts(&h.emulator.endpoint_url).await;
    assert_every_key_holds_its_latest_version(&h, batches).await;
    Ok(outcome)
}

/// One partition's batches in order, each invoked until it succeeds: what the successful
/// invocations reported, and how many invocations failed.
async fn poll_partition(
    ingestor: Arc<Ingestor>,
    partition: usize,
    batches: Vec<String>,
) -> Result<(Vec<Processed>, u64), String> {
    let (mut invocations, mut failed) = (Vec::new(), 0);
    for event in batches {
        let mut attempts = 0;
        loop {
            match ingestor.ingest(event.as_bytes(), &Invocation::local(Duration::from_secs(300))).await {
                Ok(summary) => {
                    let p = summary.processed;
                    assert!(p.is_balanced(), "partition {partition}: {p:?}");
                    assert_eq!(p.dead_lettered_total(), 0, "partition {partition}: nothing to reject here");
                    invocations.push(p);
                    break;
                }
                Err(e) => {
                    failed += 1;
                    attempts += 1;
                    if attempts == MAX_ATTEMPTS {
                        return Err(format!("partition {partition}: a batch failed {attempts} times in a row: {e}"));
                    }
                }
            }
        }
    }
    Ok((invocations, failed))
}

/// No loss: every key holds the version of its last change. No duplicates: one row per key.
async fn assert_every_key_holds_its_latest_version(h: &Harness, batches: i64) {
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
}

/// Statements the emulator at `endpoint` failed for a conflict with a concurrent transaction:
/// its FAILED statements (ListStatements) whose error (DescribeStatement) says so.
async fn conflicts(endpoint: &str) -> u64 {
    let client = sdk_client(endpoint);
    let (mut count, mut token) = (0, None);
    loop {
        let page = client
            .list_statements()
            .status(StatusString::Failed)
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .expect("ListStatements");
        for statement in page.statements() {
            let described = client.describe_statement().id(statement.id()).send().await.expect("DescribeStatement");
            let error = described.error().unwrap_or_default();
            if error.contains("conflict with concurrent transaction")
                || error.contains("Serializable isolation violation")
            {
                count += 1;
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return count;
        }
    }
}
