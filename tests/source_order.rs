//! Which change of a key is newer, in the situations where the obvious signal lies, end to end
//! through the ingest handler into PostgreSQL behind the Data API emulator: a connector that
//! moved to another MySQL replica, PostgreSQL without `source.sequence`, Kafka offsets that
//! started over, tombstones of tables keyed by something other than the Kafka key, and a
//! `bytea` placeholder without a schema.

use cdc_pipeline::synth::msk_event_text;
use cdc_pipeline::{Config, SkipReason};
use cdc_tests::debezium::{Source, Table, column};
use cdc_tests::harness::{Harness, ingest, some};
use serde_json::json;

const KEY: &[u8] = b"source-order-masking-key-0123456789abcd";

fn items() -> Table {
    Table::new("pg.shop.public.items", vec![column("id", "int32"), column("status", "string")], &["id"])
}

fn status(id: i64, status: &str) -> serde_json::Value {
    json!({"id": id, "status": status})
}

/// A world with the items table created from `event`, and its ingestor.
async fn world(event: &str) -> (Harness, cdc_pipeline::ingest::Ingestor) {
    let h = Harness::new("").await;
    h.create_from_event(&Config::default_routing(), event.as_bytes()).await;
    let ingestor = h.ingestor(Config::default_routing(), KEY);
    (h, ingestor)
}

#[tokio::test]
async fn a_connector_moved_to_another_mysql_replica_is_ordered_by_gtid() {
    // Debezium's `server_id` is the originating server's (the binlog event header's); both
    // replicas name their binlog `mysql-bin`. The binlog position goes back, the GTID forward,
    // in the same second.
    let t = items();
    let uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    let my = |file: &str, pos: i64, n: u64| Source::MySql {
        server_id: 1,
        file: file.into(),
        pos,
        row: 0,
        gtid: Some(format!("{uuid}:{n}")),
        ts_ms: 1_718_000_000_000,
    };
    let before = msk_event_text(&[t.record(
        0,
        10,
        "u",
        None,
        Some(status(1, "BEFORE")),
        &my("mysql-bin.000100", 5_000, 41),
        true,
    )]);
    let after =
        msk_event_text(&[t.record(1, 2, "u", None, Some(status(1, "AFTER")), &my("mysql-bin.000007", 300, 42), true)]);
    let (h, ingestor) = world(&before).await;
    ingest(&ingestor, &before).await;
    let p = ingest(&ingestor, &after).await;
    assert_eq!((p.loaded, p.stale), (1, 0), "{p:?}");
    assert_eq!(h.text_rows("SELECT status FROM public.items").await, vec![some(&["AFTER"])]);
    // And the earlier transaction, redelivered from the new replica at a later binlog offset,
    // is stale.
    let again =
        msk_event_text(&[t.record(1, 3, "u", None, Some(status(1, "BEFORE")), &my("mysql-bin.000007", 900, 41), true)]);
    let p = ingest(&ingestor, &again).await;
    assert_eq!((p.loaded, p.stale), (0, 1), "{p:?}");
    assert_eq!(h.text_rows("SELECT status FROM public.items").await, vec![some(&["AFTER"])]);
}

#[tokio::test]
async fn postgres_without_a_sequence_orders_transactions_by_commit_not_by_lsn() {
    // T2 commits first holding LSN 200; T1 commits after it holding LSN 100, in the same ms.
    // Debezium emits T2 then T1.
    let t = items();
    let src = |lsn: i64, tx_id: i64| Source::Postgres { lsn, sequence: None, tx_id, ts_ms: 1_718_000_000_000 };
    let t2 = msk_event_text(&[t.record(0, 0, "u", None, Some(status(1, "T2")), &src(200, 902), true)]);
    let t1 = msk_event_text(&[t.record(0, 1, "u", None, Some(status(1, "T1")), &src(100, 901), true)]);
    let (h, ingestor) = world(&t2).await;
    ingest(&ingestor, &t2).await;
    let p = ingest(&ingestor, &t1).await;
    assert_eq!((p.loaded, p.stale), (1, 0), "{p:?}");
    assert_eq!(h.text_rows("SELECT status FROM public.items").await, vec![some(&["T1"])]);
    // Within one transaction the LSN still orders, whatever the Kafka partition.
    let later_in_t1 = msk_event_text(&[t.record(3, 0, "u", None, Some(status(1, "T1-later")), &src(150, 901), true)]);
    assert_eq!(ingest(&ingestor, &later_in_t1).await.loaded, 1);
    let earlier_in_t1 =
        msk_event_text(&[t.record(3, 1, "u", None, Some(status(1, "T1-earlier")), &src(120, 901), true)]);
    assert_eq!(ingest(&ingestor, &earlier_in_t1).await.stale, 1);
    assert_eq!(h.text_rows("SELECT status FROM public.items").await, vec![some(&["T1-later"])]);
}

#[tokio::test]
async fn offsets_that_started_over_do_not_make_a_newer_change_stale() {
    // A connector with no position we read (Oracle): Kafka order decides. The topic was
    // recreated: the update a day later sits at offset 3, the stored row at 1000.
    let t = items();
    let oracle = |ts_ms: i64| Source::Other { connector: "oracle", ts_ms };
    let old =
        msk_event_text(&[t.record(0, 1_000, "c", None, Some(status(1, "OLD")), &oracle(1_718_000_000_000), true)]);
    let new = msk_event_text(&[t.record(0, 3, "u", None, Some(status(1, "NEW")), &oracle(1_718_086_400_000), true)]);
    let (h, ingestor) = world(&old).await;
    ingest(&ingestor, &old).await;
    let p = ingest(&ingestor, &new).await;
    assert_eq!((p.loaded, p.stale, p.positions_regressed), (0, 0, 1), "{p:?}");
    assert_eq!(h.dead_letters().await, vec![(3, "load".into(), vec![":position_regressed".into()])]);
    assert_eq!(h.text_rows("SELECT status FROM public.items").await, vec![some(&["OLD"])]);
    // A true redelivery (same offset, same time) is still stale; a later offset later in time
    // still applies.
    assert_eq!(ingest(&ingestor, &old).await.stale, 1);
    let next =
        msk_event_text(&[t.record(0, 1_001, "u", None, Some(status(1, "NEXT")), &oracle(1_718_000_000_001), true)]);
    assert_eq!(ingest(&ingestor, &next).await.loaded, 1);
}

#[tokio::test]
async fn tombstones_of_a_table_keyed_by_another_column_follow_their_delete() {
    let t = Table::new("pg.shop.public.users", vec![column("id", "int32"), column("email", "string")], &["id"]);
    let cfg = Config::parse("[[tables]]\ntopic = \"pg.*\"\ntarget = \"public.users\"\nkey = [\"email\"]\n", "t.toml")
        .expect("config");
    let pg = |lsn: i64| Source::Postgres { lsn, sequence: Some((Some(lsn - 1), Some(lsn))), tx_id: 1, ts_ms: lsn };
    let a = json!({"id": 1, "email": "a@example.org"});
    let b = json!({"id": 2, "email": "b@example.org"});
    let creates = msk_event_text(&[
        t.record(0, 0, "c", None, Some(a.clone()), &pg(10), true),
        t.record(0, 1, "c", None, Some(b.clone()), &pg(11), true),
    ]);
    let h = Harness::new("").await;
    h.create_from_event(&cfg, creates.as_bytes()).await;
    let ingestor = h.ingestor(cfg, KEY);
    ingest(&ingestor, &creates).await;
    // A's delete and tombstone in one batch; B's tombstone arrives without its delete.
    let p = ingest(
        &ingestor,
        &msk_event_text(&[
            t.record(0, 2, "d", Some(a.clone()), None, &pg(20), true),
            t.tombstone(0, 3, &a, 1, true),
            t.tombstone(0, 5, &b, 1, true),
        ]),
    )
    .await;
    assert_eq!(
        (p.loaded, p.skipped.get(&SkipReason::Tombstone).copied(), p.dead_lettered_total()),
        (1, Some(1), 1),
        "{p:?}"
    );
    assert_eq!(h.dead_letters().await, vec![(5, "validate".into(), vec!["email:tombstone_key".into()])]);
    assert_eq!(
        h.text_rows("SELECT email, _cdc_deleted::text FROM public.users ORDER BY email").await,
        vec![some(&["a@example.org", "true"]), some(&["b@example.org", "false"])]
    );
}

#[tokio::test]
async fn a_schemaless_bytea_placeholder_keeps_the_stored_bytes() {
    let t = Table::new(
        "pg.shop.public.blobs",
        vec![column("id", "int32"), column("body", "bytes"), column("title", "string")],
        &["id"],
    );
    let pg = |lsn: i64| Source::Postgres { lsn, sequence: Some((Some(lsn - 1), Some(lsn))), tx_id: 1, ts_ms: lsn };
    let create = msk_event_text(&[t.record(
        0,
        0,
        "c",
        None,
        Some(json!({"id": 1, "body": "3q2+7w==", "title": "a"})),
        &pg(10),
        true,
    )]);
    let update = msk_event_text(&[t.record(
        0,
        1,
        "u",
        None,
        Some(json!({"id": 1, "body": "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==", "title": "b"})),
        &pg(20),
        false,
    )]);
    let h = Harness::new("").await;
    h.create_from_event(&Config::default_routing(), create.as_bytes()).await;
    let ingestor = h.ingestor(Config::default_routing(), KEY);
    ingest(&ingestor, &create).await;
    let p = ingest(&ingestor, &update).await;
    assert_eq!(p.loaded, 1, "{p:?}");
    assert_eq!(
        h.text_rows("SELECT encode(body, 'hex'), title FROM public.blobs").await,
        vec![some(&["deadbeef", "b"])]
    );
}

fn notes() -> Table {
    Table::new(
        "pg.shop.public.notes",
        vec![column("id", "int32"), column("title", "string"), column("body", "string")],
        &["id"],
    )
}

fn pg_at(lsn: i64) -> Source {
    Source::Postgres { lsn, sequence: Some((Some(lsn - 1), Some(lsn))), tx_id: 1, ts_ms: 1_718_000_000_000 + lsn }
}

/// The target holds T50/B50 (from partition 1); a batch carries p30 from a lagging partition 0
/// and then `latest` (p60, partition 1).
async fn filled_from_a_lagging_partition(
    latest: cdc_pipeline::synth::RecordSpec,
) -> (Harness, cdc_pipeline::ingest::Processed) {
    let t = notes();
    let stored = msk_event_text(&[t.record(
        1,
        0,
        "u",
        None,
        Some(json!({"id": 1, "title": "T50", "body": "B50"})),
        &pg_at(50),
        true,
    )]);
    let (h, ingestor) = world(&stored).await;
    ingest(&ingestor, &stored).await;
    let batch = msk_event_text(&[
        t.record(0, 7, "u", None, Some(json!({"id": 1, "title": "T30", "body": "B30"})), &pg_at(30), true),
        latest,
    ]);
    let p = ingest(&ingestor, &batch).await;
    (h, p)
}

#[tokio::test]
async fn values_filled_from_a_change_older_than_the_stored_row_are_never_written() {
    let t = notes();
    // A placeholder: its value is B50 (stored, newer than p30), not B30.
    let placeholder = t.record(
        1,
        1,
        "u",
        None,
        Some(json!({"id": 1, "title": "T60", "body": "__debezium_unavailable_value"})),
        &pg_at(60),
        true,
    );
    let (h, p) = filled_from_a_lagging_partition(placeholder.clone()).await;
    // Rejected; its fall-back, p30, is stale against the stored p50.
    assert_eq!((p.loaded, p.stale, p.dead_lettered_total()), (0, 1, 1), "{p:?}");
    assert_eq!(h.dead_letters().await, vec![(1, "load".into(), vec![":stale_fill".into()])]);
    assert_eq!(h.text_rows("SELECT title, body FROM public.notes").await, vec![some(&["T50", "B50"])]);
    // Replayed alone, it keeps the stored body.
    let r = h
        .ingestor(Config::default_routing(), KEY)
        .replay(&cdc_pipeline::replay::ReplayRequest::default(), &cdc_tests::harness::invocation())
        .await
        .expect("replay");
    assert_eq!((r.records_loaded, r.records_rejected), (1, 0), "{r:?}");
    assert_eq!(h.text_rows("SELECT title, body FROM public.notes").await, vec![some(&["T60", "B50"])]);

    // A soft delete keeps the stored T50/B50, not p30's values.
    let delete = t.record(1, 1, "d", Some(json!({"id": 1})), None, &pg_at(60), true);
    let (h, p) = filled_from_a_lagging_partition(delete).await;
    assert_eq!(p.dead_lettered_total(), 1, "{p:?}");
    assert_eq!(
        h.text_rows("SELECT title, body, _cdc_deleted::text FROM public.notes").await,
        vec![some(&["T50", "B50", "false"])]
    );
    h.ingestor(Config::default_routing(), KEY)
        .replay(&cdc_pipeline::replay::ReplayRequest::default(), &cdc_tests::harness::invocation())
        .await
        .expect("replay");
    assert_eq!(
        h.text_rows("SELECT title, body, _cdc_deleted::text FROM public.notes").await,
        vec![some(&["T50", "B50", "true"])]
    );

    // In one partition, the batch's own earlier change is newer than what is stored: filled.
    let t2 = notes();
    let stored = msk_event_text(&[t2.record(
        0,
        0,
        "u",
        None,
        Some(json!({"id": 1, "title": "T10", "body": "B10"})),
        &pg_at(10),
        true,
    )]);
    let (h, ingestor) = world(&stored).await;
    ingest(&ingestor, &stored).await;
    let p = ingest(
        &ingestor,
        &msk_event_text(&[
            t2.record(0, 1, "u", None, Some(json!({"id": 1, "title": "T20", "body": "B20"})), &pg_at(20), true),
            t2.record(
                0,
                2,
                "u",
                None,
                Some(json!({"id": 1, "title": "T30", "body": "__debezium_unavailable_value"})),
                &pg_at(30),
                true,
            ),
        ]),
    )
    .await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (1, 0), "{p:?}");
    assert_eq!(h.text_rows("SELECT title, body FROM public.notes").await, vec![some(&["T30", "B20"])]);
}

#[tokio::test]
async fn a_change_streamed_after_a_mysql_snapshot_applies() {
    // A snapshot row carries server_id 0, no GTID and the time its table was exported; the
    // update streamed next committed a second before that export. The read time bounds the
    // snapshot's state from above: it does not make the update older.
    let t = Table::new("pg.shop.public.items", vec![column("id", "int32"), column("status", "string")], &["id"]);
    let snapshot_source = Source::MySql {
        server_id: 0,
        file: "mysql-bin.000003".into(),
        pos: 154,
        row: 0,
        gtid: None,
        ts_ms: 1_718_000_005_000,
    };
    let streamed = Source::MySql {
        server_id: 223_344,
        file: "mysql-bin.000003".into(),
        pos: 900,
        row: 0,
        gtid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:24".into()),
        ts_ms: 1_718_000_004_000,
    };
    let snapshot = msk_event_text(&[t.record(0, 0, "r", None, Some(status(1, "OLD")), &snapshot_source, true)]);
    let update = msk_event_text(&[t.record(0, 1, "u", None, Some(status(1, "NEW")), &streamed, true)]);
    let (h, ingestor) = world(&snapshot).await;
    ingest(&ingestor, &snapshot).await;
    let p = ingest(&ingestor, &update).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (1, 0), "{p:?}");
    assert_eq!(h.text_rows("SELECT status FROM public.items").await, vec![some(&["NEW"])]);
}
