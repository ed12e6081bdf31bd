//! Real-world Debezium inputs end to end: each file in `tests/fixtures/real-world/` (shapes and
//! values from Debezium's documentation, its tests and public bug reports) through the ingest
//! handler into PostgreSQL behind the Data API emulator, with the stored value asserted — and,
//! for each kind of input, more cases of the same kind, and the same rules through replay.
//!
//! The contract every test checks (README, "The contract"): a change ends applied with the
//! right values, stale or superseded because a provably newer change of its key exists,
//! skipped for a documented reason, or rejected with a rule, a metric and a dead letter.

use std::path::PathBuf;
use std::sync::Arc;

use cdc_cli::ddl;
use cdc_pipeline::ingest::{Ingestor, Processed};
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::replay::ReplayRequest;
use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::{Config, MskEvent, Pipeline, SkipReason};
use cdc_tests::debezium::{Source, Table, array, column, logical, variable_scale_decimal};
use cdc_tests::harness::{Harness, ingest, invocation, some};
use serde_json::{Value, json};

const KEY: &[u8] = b"real-world-masking-key-0123456789abcdef";

fn fixture(name: &str) -> PathBuf {
    cdc_tests::repo_root().join("tests/fixtures/real-world").join(name)
}

fn default_routing() -> Config {
    Config::default_routing()
}

fn config(text: &str) -> Config {
    Config::parse(text, "test.toml").expect("config")
}

/// One MSK event holding the records of several event files, in order.
fn merged(files: &[&str]) -> String {
    let mut out = json!({"eventSource": "aws:kafka", "records": {}});
    for file in files {
        let event: Value = serde_json::from_slice(&std::fs::read(fixture(file)).unwrap()).unwrap();
        for (group, records) in event["records"].as_object().unwrap() {
            let list = out["records"].as_object_mut().unwrap().entry(group.clone()).or_insert(json!([]));
            list.as_array_mut().unwrap().extend(records.as_array().unwrap().iter().cloned());
        }
    }
    out.to_string()
}

/// A database and bucket of its own, with the targets `cdc ddl` makes for `samples`.
async fn world(config: &Config, samples: &[&str]) -> Harness {
    let h = Harness::new("").await;
    let files: Vec<PathBuf> = samples.iter().map(|f| fixture(f)).collect();
    h.create_targets(config, &files).await;
    h
}

async fn ingest_file(ingestor: &Ingestor, file: &str) -> Processed {
    ingest(ingestor, &String::from_utf8(std::fs::read(fixture(file)).unwrap()).unwrap()).await
}

async fn replay_all(ingestor: &Ingestor) -> cdc_pipeline::replay::ReplayResponse {
    ingestor.replay(&ReplayRequest::default(), &invocation()).await.expect("replay")
}

// ----------------------------------------------------------------------------------------------
// Temporal values in every time.precision.mode (c09 and its kind).

#[tokio::test]
async fn c09_isostring_temporals_are_stored_to_the_microsecond() {
    let h = world(&default_routing(), &["c09.json"]).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    let p = ingest_file(&ingestor, "c09.json").await;
    assert_eq!(p.loaded, 1, "{p:?}");
    assert_eq!(
        h.text_rows(
            "SELECT val_date::text, val_time_p2::text, val_time_p7::text, val_datetime2::text, val_datetime::text \
             FROM public.type_time_iso"
        )
        .await,
        vec![some(&[
            "2018-07-13",
            "10:23:45.68",
            "10:23:45.678901",
            "2018-07-13 11:23:45.34",
            "2018-07-13 13:23:45.78"
        ])]
    );
}

#[tokio::test]
async fn zoned_and_iso_values_from_postgres_land_in_utc_and_infinity_is_refused() {
    let table = Table::new(
        "pg.shop.public.visits",
        vec![
            column("id", "int32"),
            logical("day", "string", "io.debezium.time.IsoDate"),
            logical("at", "string", "io.debezium.time.IsoTimestamp"),
            logical("at_tz", "string", "io.debezium.time.ZonedTimestamp"),
            logical("closes", "string", "io.debezium.time.ZonedTime"),
            logical("until", "int64", "io.debezium.time.MicroTimestamp"),
        ],
        &["id"],
    );
    let source = |lsn: i64| Source::Postgres { lsn, sequence: None, tx_id: 1, ts_ms: 1_718_000_000_000 };
    let row = |id: i32, until: i64| {
        json!({"id": id, "day": "2017-09-15Z", "at": "2019-07-09T02:28:57.1Z", "at_tz": "2019-07-09T01:28:10.123456Z",
               "closes": "24:00:00Z", "until": until})
    };
    let event = msk_event_text(&[
        table.record(0, 0, "c", None, Some(row(1, 1_529_507_596_945_104)), &source(100), true),
        table.record(0, 1, "c", None, Some(row(2, 9_223_372_036_825_200_000)), &source(101), true),
    ]);
    let h = Harness::new("").await;
    let event_bytes = event.clone().into_bytes();
    h.create_from_event(&default_routing(), &event_bytes).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    let p = ingest(&ingestor, &event).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (1, 1), "{p:?}");
    assert_eq!(
        h.text_rows("SELECT day::text, at::text, at_tz::text, closes::text, until::text FROM public.visits").await,
        vec![some(&[
            "2017-09-15",
            "2019-07-09 02:28:57.1",
            "2019-07-09 01:28:10.123456",
            "24:00:00",
            "2018-06-20 15:13:16.945104"
        ])]
    );
    assert_eq!(h.dead_letters().await, vec![(1, "decode".into(), vec!["until:infinity".into()])]);
}

#[tokio::test]
async fn mysql_time_beyond_a_day_is_rejected_with_its_column_and_rule() {
    let table = Table::new(
        "my.shop.shifts",
        vec![column("id", "int32"), logical("length", "int64", "io.debezium.time.MicroTime")],
        &["id"],
    );
    let source = |pos: i64| Source::MySql {
        server_id: 1,
        file: "mysql-bin.000001".into(),
        pos,
        row: 0,
        gtid: None,
        ts_ms: 1_718_000_000_000,
    };
    let event = msk_event_text(&[
        // 517:51:04.777 (DBZ-342) does not fit Redshift's TIME; 10:23:45.6789 does.
        table.record(0, 0, "c", None, Some(json!({"id": 1, "length": 1_864_264_780_000i64})), &source(4), true),
        table.record(0, 1, "c", None, Some(json!({"id": 2, "length": 37_425_678_900i64})), &source(5), true),
    ]);
    let h = Harness::new("").await;
    h.create_from_event(&default_routing(), event.as_bytes()).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    let p = ingest(&ingestor, &event).await;
    assert_eq!(p.loaded, 1);
    assert_eq!(
        h.text_rows("SELECT id::text, length::text FROM public.shifts").await,
        vec![some(&["2", "10:23:45.6789"])]
    );
    assert_eq!(h.dead_letters().await, vec![(0, "decode".into(), vec!["length:time_range".into()])]);
}

// ----------------------------------------------------------------------------------------------
// Unavailable-value placeholders (c10 and its kind).

const C10_NOTES_LENGTH: &str = "9800";

#[tokio::test]
async fn c10_a_placeholder_keeps_the_stored_toasted_value() {
    let h = world(&default_routing(), &["c10-a-insert.json", "c10-b-update.json"]).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    assert_eq!(ingest_file(&ingestor, "c10-a-insert.json").await.loaded, 1);
    let stored_notes = h.text_rows("SELECT md5(notes) FROM public.orders").await;
    let p = ingest_file(&ingestor, "c10-b-update.json").await;
    assert_eq!(p.loaded, 1, "{p:?}");
    assert_eq!(
        h.text_rows("SELECT status, length(notes)::text, md5(notes), amount::text, _cdc_op FROM public.orders").await,
        vec![vec![
            Some("SHIPPED".into()),
            Some(C10_NOTES_LENGTH.into()),
            stored_notes[0][0].clone(),
            Some("1234.56".into()),
            Some("u".into())
        ]],
        "status and the rest updated, notes kept"
    );
    assert!(h.text_rows("SELECT 1 FROM public.orders WHERE notes LIKE '%unavailable%'").await.is_empty());
}

#[tokio::test]
async fn c10_insert_and_update_in_one_batch() {
    let h = world(&default_routing(), &["c10-a-insert.json", "c10-b-update.json"]).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    let p = ingest(&ingestor, &merged(&["c10-a-insert.json", "c10-b-update.json"])).await;
    assert_eq!((p.loaded, p.superseded), (1, 1), "{p:?}");
    assert_eq!(
        h.text_rows("SELECT status, length(notes)::text FROM public.orders").await,
        vec![some(&["SHIPPED", C10_NOTES_LENGTH])]
    );
}

#[tokio::test]
async fn placeholders_in_bytea_json_and_array_columns_keep_their_values() {
    let table = Table::new(
        "pg.shop.public.docs",
        vec![
            column("id", "int32"),
            column("title", "string"),
            column("blob", "bytes"),
            logical("attrs", "string", "io.debezium.data.Json"),
            array("tags", "string"),
            array("counts", "int32"),
        ],
        &["id"],
    );
    let source = |lsn: i64| Source::Postgres {
        lsn,
        sequence: Some((Some(lsn - 1), Some(lsn))),
        tx_id: 1,
        ts_ms: 1_718_000_000_000 + lsn,
    };
    let insert = json!({"id": 1, "title": "v1", "blob": "3q2+7w==", "attrs": "{\"a\": 1}", "tags": ["x", "y"], "counts": [1, 2]});
    let placeholder = "__debezium_unavailable_value";
    let bytes: Vec<u8> = placeholder.bytes().collect();
    // As Debezium's PostgreSQL connector sends them (UnchangedToastedPlaceholder): the bytes
    // base64-encoded for bytea, the text for json, one element for text[], one element per
    // placeholder byte for int[].
    let update = json!({"id": 1, "title": "v2", "blob": "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==", "attrs": placeholder,
                        "tags": [placeholder], "counts": bytes});
    let event_a = msk_event_text(&[table.record(0, 0, "c", None, Some(insert), &source(100), true)]);
    let event_b = msk_event_text(&[table.record(0, 1, "u", None, Some(update), &source(200), true)]);
    let h = Harness::new("").await;
    h.create_from_event(&default_routing(), event_a.as_bytes()).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    ingest(&ingestor, &event_a).await;
    let before = h.text_rows("SELECT encode(blob, 'hex'), attrs, tags, counts FROM public.docs").await;
    let p = ingest(&ingestor, &event_b).await;
    assert_eq!(p.loaded, 1, "{p:?}");
    assert_eq!(h.text_rows("SELECT title FROM public.docs").await, vec![some(&["v2"])]);
    assert_eq!(h.text_rows("SELECT encode(blob, 'hex'), attrs, tags, counts FROM public.docs").await, before);
    assert_eq!(before[0][0].as_deref(), Some("deadbeef"));
}

#[tokio::test]
async fn a_placeholder_for_a_key_the_target_lacks_is_rejected_then_lands_on_replay() {
    let h = world(&default_routing(), &["c10-a-insert.json", "c10-b-update.json"]).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    // The update first (its insert was delayed): the notes value is unknown.
    let p = ingest_file(&ingestor, "c10-b-update.json").await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (0, 1), "{p:?}");
    assert_eq!(h.dead_letters().await, vec![(1, "load".into(), vec![":unavailable_value".into()])]);
    assert!(h.text_rows("SELECT 1 FROM public.orders").await.is_empty(), "never stored as the placeholder");
    // The insert, then a replay of the dead letter: the update lands, keeping the notes.
    ingest_file(&ingestor, "c10-a-insert.json").await;
    let response = replay_all(&ingestor).await;
    assert_eq!((response.records_loaded, response.records_rejected), (1, 0), "{response:?}");
    assert_eq!(
        h.text_rows("SELECT status, length(notes)::text FROM public.orders").await,
        vec![some(&["SHIPPED", C10_NOTES_LENGTH])]
    );
}

#[tokio::test]
async fn a_configured_placeholder_is_recognised() {
    let cfg = config(
        "[[tables]]\ntopic = \"pg.*\"\ntarget = \"public.notes\"\nkey = [\"id\"]\n\
         unavailable_value_placeholder = \"hex:00ff\"\n",
    );
    let table = Table::new("pg.shop.public.notes", vec![column("id", "int32"), column("body", "bytes")], &["id"]);
    let source = |lsn: i64| Source::Postgres { lsn, sequence: None, tx_id: 1, ts_ms: 1_718_000_000_000 + lsn };
    let a = msk_event_text(&[table.record(0, 0, "c", None, Some(json!({"id": 1, "body": "AQID"})), &source(1), true)]);
    let b = msk_event_text(&[table.record(0, 1, "u", None, Some(json!({"id": 1, "body": "AP8="})), &source(2), true)]);
    let h = Harness::new("").await;
    h.create_from_event(&cfg, a.as_bytes()).await;
    let ingestor = h.ingestor(cfg, KEY);
    ingest(&ingestor, &a).await;
    ingest(&ingestor, &b).await;
    assert_eq!(h.text_rows("SELECT encode(body, 'hex') FROM public.notes").await, vec![some(&["010203"])]);
}

// ----------------------------------------------------------------------------------------------
// Positions that are not comparable (c11 and its kind).

fn c11_config() -> Config {
    Config::load(&fixture("c11.toml")).unwrap()
}

#[tokio::test]
async fn c11_the_change_after_a_failover_is_applied() {
    for batches in [&["c11-a.json", "c11-b.json"][..], &["c11-ab.json"][..]] {
        let h = world(&c11_config(), &["c11-a.json"]).await;
        let ingestor = h.ingestor(c11_config(), KEY);
        for file in batches {
            ingest_file(&ingestor, file).await;
        }
        assert_eq!(
            h.text_rows("SELECT email FROM public.mysql_customers").await,
            vec![some(&["after-failover@example.org"])],
            "{batches:?}"
        );
        assert!(h.dead_letters().await.is_empty());
        // The pre-failover change again (a redelivery or a replay): stale, not applied.
        let p = ingest_file(&ingestor, "c11-a.json").await;
        assert_eq!((p.loaded, p.stale), (0, 1), "{p:?}");
        assert_eq!(
            h.text_rows("SELECT email FROM public.mysql_customers").await,
            vec![some(&["after-failover@example.org"])]
        );
    }
}

fn customers() -> Table {
    Table::new("pg.shop.public.customers", vec![column("id", "int32"), column("email", "string")], &["id"])
}

#[tokio::test]
async fn a_rebuilt_postgres_source_is_ordered_by_kafka_offsets() {
    let t = customers();
    let pg = |lsn: i64, ts: i64| Source::Postgres { lsn, sequence: None, tx_id: 1, ts_ms: ts };
    let row = |email: &str| Some(json!({"id": 7, "email": email}));
    // The old cluster at LSN 90,000,000; the rebuilt one starts again near 24,000,000 a day later.
    let old =
        msk_event_text(&[t.record(0, 5, "u", None, row("old@example.org"), &pg(90_000_000, 1_718_000_000_000), true)]);
    let new =
        msk_event_text(&[t.record(0, 6, "u", None, row("new@example.org"), &pg(24_000_000, 1_718_086_400_000), true)]);
    let h = Harness::new("").await;
    h.create_from_event(&default_routing(), old.as_bytes()).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    ingest(&ingestor, &old).await;
    let p = ingest(&ingestor, &new).await;
    assert_eq!(p.loaded, 1, "the later record of the partition is newer: {p:?}");
    // A late replay of the pre-rebuild change: its position is higher, its time and offset lower.
    let p = ingest(&ingestor, &old).await;
    assert_eq!((p.loaded, p.stale), (0, 1), "{p:?}");
    assert_eq!(h.text_rows("SELECT email FROM public.customers").await, vec![some(&["new@example.org"])]);
}

#[tokio::test]
async fn changes_whose_order_cannot_be_known_are_rejected_loudly() {
    let t = customers();
    let my = |server_id: i64, file: &str, pos: i64| Source::MySql {
        server_id,
        file: file.into(),
        pos,
        row: 0,
        gtid: None,
        ts_ms: 1_718_000_000_000,
    };
    let row = |email: &str| Some(json!({"id": 7, "email": email}));
    // Two servers' binlogs, one commit second, two partitions (the topic was repartitioned):
    // nothing says which came first.
    let a = t.record(0, 5, "u", None, row("a@example.org"), &my(1, "mysql-bin.000009", 100), true);
    let b = t.record(1, 2, "u", None, row("b@example.org"), &my(2, "binlog.000001", 4), true);
    let h = Harness::new("").await;
    let first = msk_event_text(std::slice::from_ref(&a));
    h.create_from_event(&default_routing(), first.as_bytes()).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    ingest(&ingestor, &first).await;
    let p = ingest(&ingestor, &msk_event_text(std::slice::from_ref(&b))).await;
    assert_eq!((p.loaded, p.stale, p.positions_regressed), (0, 0, 1), "{p:?}");
    assert_eq!(h.dead_letters().await, vec![(2, "load".into(), vec![":position_regressed".into()])]);
    assert!(
        h.metrics.lines().iter().any(|l| l.contains("\"PositionsRegressed\":1.0")),
        "counted in a metric: {:?}",
        h.metrics.lines()
    );
    assert_eq!(h.text_rows("SELECT email FROM public.customers").await, vec![some(&["a@example.org"])]);
    // Both in one batch: the same verdict for the one that came second.
    let h2 = Harness::new("").await;
    h2.create_from_event(&default_routing(), first.as_bytes()).await;
    let ingestor2 = h2.ingestor(default_routing(), KEY);
    let p = ingest(&ingestor2, &msk_event_text(&[a.clone(), b.clone()])).await;
    assert_eq!((p.loaded, p.positions_regressed), (1, 1), "{p:?}");
    // Replay applies the same rules: still unknown, still rejected.
    let response = replay_all(&ingestor).await;
    assert_eq!((response.records_loaded, response.records_rejected), (0, 1), "{response:?}");
}

// ----------------------------------------------------------------------------------------------
// Decimals are exact or rejected (c17 and its kind).

#[tokio::test]
async fn c17_decimals_are_stored_exactly_or_rejected_naming_the_column() {
    let event = std::fs::read(fixture("c17.json")).unwrap();
    let pipeline = Pipeline::new(Arc::new(default_routing()), None).unwrap();
    let tables = ddl::for_events(&pipeline, &[MskEvent::parse(&event).unwrap()], DdlFlavor::Postgres);
    let measures = tables.iter().find(|t| t.sql.contains("\"measures\"")).unwrap();
    assert!(measures.sql.contains("\"ratio\" DECIMAL(38, 20)"), "{}", measures.sql);
    assert!(
        measures.warnings.iter().any(|w| w.contains("`ratio`") && w.contains("no DECIMAL holds every sample value")),
        "cdc ddl says no type holds both: {:?}",
        measures.warnings
    );
    let h = world(&default_routing(), &["c17.json"]).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    let p = ingest_file(&ingestor, "c17.json").await;
    assert_eq!(p.loaded, 1, "{p:?}");
    assert_eq!(
        h.text_rows("SELECT id::text, ratio::text FROM public.measures").await,
        vec![some(&["1", "0.33333333333333333333"])]
    );
    assert_eq!(h.dead_letters().await, vec![(1, "load".into(), vec!["ratio:decimal_precision".into()])]);
}

#[tokio::test]
async fn a_narrower_target_decimal_rejects_rather_than_rounds() {
    let h = Harness::new("").await;
    h.sql()
        .await
        .batch_execute(&format!(
            "CREATE TABLE public.measures (id INTEGER NOT NULL, ratio DECIMAL(38, 10), {})",
            cdc_tests::stack::METADATA_DDL
        ))
        .await
        .unwrap();
    cdc_tests::stack::ensure_delete_ledger(&h.sql().await, "public").await;
    let ingestor = h.ingestor(default_routing(), KEY);
    let p = ingest_file(&ingestor, "c17.json").await;
    assert_eq!(p.loaded, 1, "{p:?}");
    // 0.33333333333333333333 needs 20 fractional digits: refused, not rounded to 0.3333333333.
    assert_eq!(h.dead_letters().await, vec![(0, "load".into(), vec!["ratio:decimal_scale".into()])]);
    assert_eq!(
        h.text_rows("SELECT ratio::text FROM public.measures WHERE id = 2").await,
        vec![some(&["12345678901234567890.5000000000"])],
        "the value that fits is stored exactly"
    );
    // Trailing zeros are not digits that would be lost: 1.500 fits DECIMAL(4, 1) exactly.
    let t =
        Table::new("pg.shop.public.measures", vec![column("id", "int32"), variable_scale_decimal("ratio")], &["id"]);
    h.sql()
        .await
        .batch_execute("TRUNCATE public.measures; ALTER TABLE public.measures ALTER COLUMN ratio TYPE DECIMAL(4, 1)")
        .await
        .unwrap();
    let ingestor = h.ingestor(default_routing(), KEY);
    let source = Source::Postgres { lsn: 5, sequence: None, tx_id: 1, ts_ms: 1 };
    // 1.500 = unscaled 1500 (0x05dc) at scale 3.
    let row = json!({"id": 3, "ratio": {"scale": 3, "value": "Bdw="}});
    ingest(&ingestor, &msk_event_text(&[t.record(0, 9, "c", None, Some(row), &source, true)])).await;
    assert_eq!(h.text_rows("SELECT ratio::text FROM public.measures WHERE id = 3").await, vec![some(&["1.5"])]);
}

#[tokio::test]
async fn ddl_says_when_a_declared_precision_exceeds_38_digits() {
    let t = Table::new(
        "pg.shop.public.big",
        vec![column("id", "int32"), cdc_tests::debezium::decimal("n", 10, Some(50))],
        &["id"],
    );
    let source = Source::Postgres { lsn: 5, sequence: None, tx_id: 1, ts_ms: 1 };
    let event = msk_event_text(&[t.record(0, 0, "c", None, Some(json!({"id": 1, "n": "AQ=="})), &source, true)]);
    let pipeline = Pipeline::new(Arc::new(default_routing()), None).unwrap();
    let tables = ddl::for_events(&pipeline, &[MskEvent::parse(event.as_bytes()).unwrap()], DdlFlavor::Redshift);
    let big = tables.iter().find(|t| t.sql.contains("\"big\"")).unwrap();
    assert!(big.sql.contains("\"n\" DECIMAL(38, 10)"), "{}", big.sql);
    assert!(big.warnings.iter().any(|w| w.contains("DECIMAL(50, 10)")), "{:?}", big.warnings);
}

// ----------------------------------------------------------------------------------------------
// Deletes whose `before` image is partial (c18 and its kind).

#[tokio::test]
async fn c18_a_key_only_delete_marks_the_row_deleted_and_passes_not_null() {
    let h = world(&default_routing(), &["c10-a-insert.json"]).await;
    h.sql().await.batch_execute("ALTER TABLE public.orders ALTER COLUMN status SET NOT NULL").await.unwrap();
    let ingestor = h.ingestor(default_routing(), KEY);
    ingest_file(&ingestor, "c10-a-insert.json").await;
    let p = ingest_file(&ingestor, "c18.json").await;
    assert_eq!(p.dead_lettered_total(), 0, "{p:?}");
    assert_eq!(
        h.text_rows("SELECT status, length(notes)::text, amount::text, _cdc_deleted::text, _cdc_op FROM public.orders")
            .await,
        vec![some(&["NEW", C10_NOTES_LENGTH, "1234.56", "true", "d"])],
        "deleted, with its last values"
    );
}

#[tokio::test]
async fn a_delete_of_a_key_never_stored_blocks_an_older_change_that_arrives_later() {
    for mode in ["soft", "hard"] {
        let cfg = config(&format!(
            "[[tables]]\ntopic = \"pgserver.*\"\ntarget = \"public.orders\"\nkey = [\"id\"]\ndelete_mode = \"{mode}\"\n"
        ));
        let h = world(&cfg, &["c10-a-insert.json"]).await;
        h.sql().await.batch_execute("ALTER TABLE public.orders ALTER COLUMN status SET NOT NULL").await.unwrap();
        let ingestor = h.ingestor(cfg, KEY);
        // The delete arrives first (a replay of the insert comes later): no row, no failure.
        let p = ingest_file(&ingestor, "c18.json").await;
        assert_eq!((p.loaded, p.dead_lettered_total()), (1, 0), "{mode}: {p:?}");
        assert!(h.text_rows("SELECT 1 FROM public.orders").await.is_empty(), "{mode}");
        let p = ingest_file(&ingestor, "c10-a-insert.json").await;
        assert_eq!((p.loaded, p.stale), (0, 1), "{mode}: the older insert is stale: {p:?}");
        assert!(h.text_rows("SELECT 1 FROM public.orders").await.is_empty(), "{mode}: not brought back");
        assert_eq!(
            h.text_rows("SELECT _cdc_table, _cdc_key FROM public._cdc_deletes").await,
            vec![some(&["public.orders", "42"])],
            "{mode}: the delete ledger holds the delete's position"
        );
    }
}

#[tokio::test]
async fn a_hard_delete_with_a_partial_before_removes_the_row_for_good() {
    let cfg = config(
        "[[tables]]\ntopic = \"pgserver.*\"\ntarget = \"public.orders\"\nkey = [\"id\"]\ndelete_mode = \"hard\"\n",
    );
    let h = world(&cfg, &["c10-a-insert.json", "c10-b-update.json"]).await;
    let ingestor = h.ingestor(cfg, KEY);
    ingest_file(&ingestor, "c10-a-insert.json").await;
    ingest_file(&ingestor, "c18.json").await;
    assert!(h.text_rows("SELECT 1 FROM public.orders").await.is_empty());
    // The update between insert and delete, replayed late: stale against the ledger.
    let p = ingest_file(&ingestor, "c10-b-update.json").await;
    assert_eq!((p.loaded, p.stale), (0, 1), "{p:?}");
    assert!(h.text_rows("SELECT 1 FROM public.orders").await.is_empty());
}

// ----------------------------------------------------------------------------------------------
// Tombstones without their delete.

fn orders_table() -> Table {
    Table::new("pg.shop.public.items", vec![column("id", "int32"), column("status", "string")], &["id"])
}

#[tokio::test]
async fn a_lone_tombstone_deletes_and_a_redelivered_one_never_deletes_a_re_created_row() {
    let t = orders_table();
    let pg = |lsn: i64| Source::Postgres { lsn, sequence: None, tx_id: 1, ts_ms: 1_718_000_000_000 + lsn };
    let row = |status: &str| json!({"id": 5, "status": status});
    let create = msk_event_text(&[t.record(0, 0, "c", None, Some(row("NEW")), &pg(10), true)]);
    // Offset 1 held the delete; compaction removed it, its tombstone at 2 is left.
    let tombstone = msk_event_text(&[t.tombstone(0, 2, &row("NEW"), 1_718_000_000_500, true)]);
    let recreate = msk_event_text(&[t.record(0, 3, "c", None, Some(row("AGAIN")), &pg(30), true)]);
    let h = Harness::new("").await;
    h.create_from_event(&default_routing(), create.as_bytes()).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    ingest(&ingestor, &create).await;
    let p = ingest(&ingestor, &tombstone).await;
    assert_eq!(p.loaded, 1, "the lone tombstone deletes: {p:?}");
    assert_eq!(h.text_rows("SELECT status, _cdc_deleted::text FROM public.items").await, vec![some(&["NEW", "true"])]);
    ingest(&ingestor, &recreate).await;
    let p = ingest(&ingestor, &tombstone).await;
    assert_eq!((p.loaded, p.stale), (0, 1), "the redelivered tombstone is older than the re-create: {p:?}");
    assert_eq!(
        h.text_rows("SELECT status, _cdc_deleted::text FROM public.items").await,
        vec![some(&["AGAIN", "false"])]
    );
    // The create replayed after all of it: stale.
    let p = ingest(&ingestor, &create).await;
    assert_eq!((p.loaded, p.stale), (0, 1));
}

#[tokio::test]
async fn tombstones_after_their_delete_are_skipped_and_skip_mode_ignores_them() {
    let t = orders_table();
    let pg = |lsn: i64| Source::Postgres { lsn, sequence: None, tx_id: 1, ts_ms: 1_718_000_000_000 + lsn };
    let row = json!({"id": 5, "status": "NEW"});
    let create = t.record(0, 0, "c", None, Some(row.clone()), &pg(10), true);
    let delete = t.record(0, 1, "d", Some(row.clone()), None, &pg(20), true);
    let tombstone = t.tombstone(0, 2, &row, 1_718_000_000_500, true);
    let h = Harness::new("").await;
    let first = msk_event_text(std::slice::from_ref(&create));
    h.create_from_event(&default_routing(), first.as_bytes()).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    ingest(&ingestor, &first).await;
    let p = ingest(&ingestor, &msk_event_text(&[delete.clone(), tombstone.clone()])).await;
    assert_eq!((p.loaded, p.skipped.get(&SkipReason::Tombstone).copied()), (1, Some(1)), "{p:?}");
    // In a later batch than its delete: the key is already deleted, nothing changes.
    let p = ingest(&ingestor, &msk_event_text(std::slice::from_ref(&tombstone))).await;
    assert_eq!((p.loaded, p.stale), (0, 1), "{p:?}");
    // `tombstones = "skip"`: a lone tombstone deletes nothing.
    let skip =
        config("[[tables]]\ntopic = \"pg.*\"\ntarget = \"public.items\"\nkey = [\"id\"]\ntombstones = \"skip\"\n");
    let h2 = Harness::new("").await;
    h2.create_from_event(&skip, first.as_bytes()).await;
    let ingestor2 = h2.ingestor(skip, KEY);
    ingest(&ingestor2, &first).await;
    let p = ingest(&ingestor2, &msk_event_text(std::slice::from_ref(&tombstone))).await;
    assert_eq!(p.skipped.get(&SkipReason::Tombstone), Some(&1));
    assert_eq!(h2.text_rows("SELECT _cdc_deleted::text FROM public.items").await, vec![some(&["false"])]);
}

#[tokio::test]
async fn a_tombstone_without_a_key_is_skipped() {
    let h = Harness::new("").await;
    let ingestor = h.ingestor(default_routing(), KEY);
    let event = msk_event_text(&[RecordSpec::new("pg.shop.public.items", 0, 4, 1, None, None)]);
    let p = ingest(&ingestor, &event).await;
    assert_eq!(p.skipped.get(&SkipReason::Tombstone), Some(&1), "{p:?}");
}

// ----------------------------------------------------------------------------------------------
// NaN and ±Infinity (c20): written as the text the loader sends.

#[tokio::test]
async fn c20_nan_and_infinity_are_stored_and_infinite_timestamps_are_refused() {
    let h = world(&default_routing(), &["c20.json"]).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    let p = ingest_file(&ingestor, "c20.json").await;
    assert_eq!(p.loaded, 2, "{p:?}");
    assert_eq!(
        h.text_rows("SELECT id::text, score::text, num_s FROM public.readings ORDER BY id").await,
        vec![some(&["2", "NaN", "NAN"]), some(&["3", "Infinity", "2"])]
    );
    assert_eq!(
        h.dead_letters().await,
        vec![(0, "decode".into(), vec!["valid_until:infinity".into(), "valid_from:infinity".into()])]
    );
}

// ----------------------------------------------------------------------------------------------
// Replay uses the same rules.

#[tokio::test]
async fn replay_applies_every_rule_as_ingest_does() {
    let h = world(&default_routing(), &["c10-a-insert.json", "c17.json", "c20.json"]).await;
    let ingestor = h.ingestor(default_routing(), KEY);
    // Dead letters of three kinds: a placeholder without a stored row, a decimal the column
    // cannot hold, an infinite timestamp.
    ingest_file(&ingestor, "c10-b-update.json").await;
    ingest_file(&ingestor, "c17.json").await;
    ingest_file(&ingestor, "c20.json").await;
    assert_eq!(h.dead_letters().await.len(), 3);
    // Nothing changed: every one is rejected again, for the same reason.
    let response = replay_all(&ingestor).await;
    assert_eq!((response.records_loaded, response.records_rejected), (0, 3), "{response:?}");
    let reasons: Vec<Vec<String>> = h.dead_letters().await.into_iter().map(|(_, _, r)| r).collect();
    assert!(reasons.contains(&vec![":unavailable_value".to_string()]), "{reasons:?}");
    assert!(reasons.contains(&vec!["ratio:decimal_precision".to_string()]), "{reasons:?}");
    assert!(reasons.contains(&vec!["valid_until:infinity".to_string(), "valid_from:infinity".to_string()]));
    // The causes fixed (the insert arrives; the column widened to hold the value): they land.
    ingest_file(&ingestor, "c10-a-insert.json").await;
    h.sql().await.batch_execute("ALTER TABLE public.measures ALTER COLUMN ratio TYPE DECIMAL(38, 1)").await.unwrap();
    let ingestor = h.ingestor(default_routing(), KEY);
    let response = replay_all(&ingestor).await;
    assert_eq!((response.records_loaded, response.records_rejected), (2, 1), "{response:?}");
    assert_eq!(
        h.text_rows("SELECT ratio::text FROM public.measures WHERE id = 2").await,
        vec![some(&["12345678901234567890.5"])]
    );
    assert_eq!(h.text_rows("SELECT status FROM public.orders").await, vec![some(&["SHIPPED"])]);
}
