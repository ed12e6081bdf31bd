//! Overlapping loads of the same keys, through the emulator in its default isolation (Redshift's
//! SNAPSHOT, PostgreSQL REPEATABLE READ), on targets without any key constraint (Redshift
//! enforces none): every key ends with one row holding its latest change.
//!
//! Under SNAPSHOT isolation two transactions that each find no row for a new key both insert
//! one ("SNAPSHOT isolation doesn't provide full serializability, because it doesn't prevent
//! write skew inserts", CREATE DATABASE, Redshift Database Developer Guide). The first test shows
//! that with the apply SQL itself, step by step, and that `LOCK` prevents it; the others race
//! real invocations.

use std::sync::Arc;

use cdc_pipeline::Config;
use cdc_pipeline::ingest::Ingestor;
use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::sql::render_plan;
use cdc_pipeline::replay::ReplayRequest;
use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::{Caches, DecodedBatch, MskEvent, Pipeline};
use cdc_tests::debezium::{Source, Table, column};
use cdc_tests::harness::{Harness, ingest, invocation};
use serde_json::json;

const KEY: &[u8] = b"concurrency-masking-key-0123456789abcdef";

fn items() -> Table {
    Table::new("pg.shop.public.items", vec![column("id", "int32"), column("status", "string")], &["id"])
}

fn pg(lsn: i64) -> Source {
    Source::Postgres { lsn, sequence: Some((Some(lsn - 1), Some(lsn))), tx_id: 1, ts_ms: 1_718_000_000_000 + lsn }
}

fn config(lock: bool) -> Config {
    Config::parse(
        &format!(
            "[[tables]]\ntopic = \"pg.shop.public.items\"\ntarget = \"public.items\"\nkey = [\"id\"]\nlock = {lock}\n"
        ),
        "concurrency.toml",
    )
    .expect("config")
}

fn update(partition: i64, offset: i64, id: i64, status: &str, lsn: i64) -> RecordSpec {
    items().record(partition, offset, "u", None, Some(json!({"id": id, "status": status})), &pg(lsn), true)
}

/// `(id, rows, status of the latest row)` for every key with more or fewer than one row, or
/// whose row does not hold `expected(id)`.
async fn wrong_rows(h: &Harness, expected: impl Fn(i64) -> String) -> Vec<(String, String, String)> {
    h.text_rows("SELECT id::text, count(*)::text, max(status) FROM public.items GROUP BY id ORDER BY id")
        .await
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap(), r[2].clone().unwrap_or_default()))
        .filter(|(id, n, status)| n != "1" || *status != expected(id.parse().unwrap()))
        .collect()
}

/// The apply transaction of `event` (one table), as `BatchExecuteStatement` would send it.
fn apply_sql(config: &Config, event: &str) -> Vec<String> {
    let pipeline = Pipeline::new(Arc::new(config.clone()), Some(KEY)).unwrap();
    let event = MskEvent::parse(event.as_bytes()).unwrap();
    let batch = DecodedBatch::from_records(event.records_in_order());
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_795_000_000_000_000);
    let plans = plan(&outcomes);
    let [tx] = render_plan(&plans[0], 1_795_000_000_000_000).transactions.try_into().expect("one transaction");
    tx.statements
}

#[tokio::test]
async fn two_transactions_inserting_one_new_key_make_two_rows_under_snapshot_isolation_unless_locked() {
    for lock in [false, true] {
        let h = Harness::new("").await;
        let first = msk_event_text(&[update(0, 0, 1, "A", 10)]);
        h.create_from_event(&config(lock), first.as_bytes()).await;
        let statements_a = apply_sql(&config(lock), &first);
        let statements_b = apply_sql(&config(lock), &msk_event_text(&[update(1, 0, 1, "B", 20)]));
        let (a, b) = (h.sql().await, h.sql().await);
        a.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").await.unwrap();
        for s in &statements_a {
            a.simple_query(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        // B runs while A is still open: without a lock it sees no row for key 1 and inserts
        // one; with the lock it waits for A's commit.
        let b_runs = tokio::spawn(async move {
            b.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").await.unwrap();
            for s in &statements_b {
                b.simple_query(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            b.batch_execute("COMMIT").await.unwrap();
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(b_runs.is_finished(), !lock, "lock = {lock}: B waits only behind the lock");
        a.batch_execute("COMMIT").await.unwrap();
        b_runs.await.unwrap();
        let rows = h.text_rows("SELECT status FROM public.items WHERE id = 1 ORDER BY status").await;
        if lock {
            assert_eq!(rows, vec![vec![Some("B".to_string())]], "one row, the latest change");
        } else {
            assert_eq!(rows.len(), 2, "the duplicate LOCK prevents: {rows:?}");
        }
    }
}

/// Run `events` through `ingestor` concurrently (each retried until it succeeds, as the event
/// source mapping does).
async fn race(ingestor: &Arc<Ingestor>, events: Vec<String>) {
    let tasks: Vec<_> = events
        .into_iter()
        .map(|event| {
            let ingestor = ingestor.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    if ingestor.ingest(event.as_bytes(), &invocation()).await.is_ok() {
                        return;
                    }
                }
                panic!("a batch failed 20 times");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn the_same_new_keys_on_two_partitions_at_once_end_with_one_row_each() {
    let h = Harness::new("").await;
    let keys = 1..=40;
    let left = msk_event_text(&keys.clone().map(|id| update(0, id, id, "P0", 100 + id)).collect::<Vec<_>>());
    let right = msk_event_text(&keys.clone().map(|id| update(1, id, id, "P1", 200 + id)).collect::<Vec<_>>());
    h.create_from_event(&config(true), left.as_bytes()).await;
    let ingestor = Arc::new(h.ingestor(config(true), KEY));
    for _ in 0..3 {
        race(&ingestor, vec![left.clone(), right.clone(), left.clone()]).await;
    }
    assert_eq!(wrong_rows(&h, |_| "P1".into()).await, Vec::<(String, String, String)>::new());
    assert_eq!(h.text_rows("SELECT 1 FROM public.items").await.len(), 40);
}

#[tokio::test]
async fn ingest_and_replay_of_the_same_keys_and_two_replays_of_one_object_end_with_one_row_each() {
    let h = Harness::new("").await;
    let keys = 1..=30;
    // A first delivery dead-letters everything (the target lacks `status` yet: drift) ...
    let early = msk_event_text(&keys.clone().map(|id| update(0, id, id, "OLD", 100 + id)).collect::<Vec<_>>());
    h.create_from_event(&config(true), early.as_bytes()).await;
    h.sql().await.batch_execute("ALTER TABLE public.items DROP COLUMN status").await.unwrap();
    let ingestor = Arc::new(h.ingestor(config(true), KEY));
    let p = ingest(&ingestor, &early).await;
    assert_eq!(p.dead_lettered_total(), 30, "{p:?}");
    // (The warm ingestor sees the column at its next batch.)
    h.sql().await.batch_execute("ALTER TABLE public.items ADD COLUMN status VARCHAR(256)").await.unwrap();
    // ... then newer changes of the same keys arrive while two replays of the dead letters run.
    let late = msk_event_text(&keys.clone().map(|id| update(0, 100 + id, id, "NEW", 200 + id)).collect::<Vec<_>>());
    let replays: Vec<_> = (0..2)
        .map(|_| {
            let ingestor = ingestor.clone();
            tokio::spawn(async move { ingestor.replay(&ReplayRequest::default(), &invocation()).await })
        })
        .collect();
    race(&ingestor, vec![late]).await;
    for replay in replays {
        // One of the two replays may find the object archived by the other: either way no
        // record is lost (the archive holds it) and nothing is duplicated.
        let _ = replay.await.unwrap();
    }
    assert_eq!(wrong_rows(&h, |_| "NEW".into()).await, Vec::<(String, String, String)>::new());
    assert_eq!(h.text_rows("SELECT 1 FROM public.items").await.len(), 30);
}

#[tokio::test]
async fn a_redelivery_racing_a_cancelled_statement_ends_with_one_row_each() {
    // Statements take 300 ms in the emulator; the first invocation's deadline is shorter, so it
    // cancels its statement (which may still commit), and the mapping redelivers the batch at
    // once while the cancelled one may still run.
    let h = Harness::new("latency_ms=300").await;
    let keys = 1..=25;
    let event = msk_event_text(&keys.clone().map(|id| update(0, id, id, "V1", 100 + id)).collect::<Vec<_>>());
    h.create_from_event(&config(true), event.as_bytes()).await;
    let ingestor = Arc::new(h.ingestor(config(true), KEY));
    let short = cdc_pipeline::ingest::Invocation::local(std::time::Duration::from_millis(350));
    let hurried = {
        let ingestor = ingestor.clone();
        let event = event.clone();
        tokio::spawn(async move { ingestor.ingest(event.as_bytes(), &short).await.is_ok() })
    };
    race(&ingestor, vec![event.clone()]).await;
    let _ = hurried.await.unwrap();
    race(&ingestor, vec![event]).await;
    assert_eq!(wrong_rows(&h, |_| "V1".into()).await, Vec::<(String, String, String)>::new());
    assert_eq!(h.text_rows("SELECT 1 FROM public.items").await.len(), 25);
}
