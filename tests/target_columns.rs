//! The target's own columns against what the batch sends, end to end through the ingest
//! handler into PostgreSQL behind the Data API emulator: columns the source does not send keep
//! their value (or take their DEFAULT), numbers the column cannot hold exactly are rejected
//! rather than rounded, wide tables load, and a value is never passed over for an older one
//! when a change of its batch is refused.

use cdc_pipeline::Config;
use cdc_pipeline::replay::ReplayRequest;
use cdc_pipeline::synth::msk_event_text;
use cdc_tests::debezium::{Source, Table, column, decimal};
use cdc_tests::harness::{Harness, ingest, invocation, some};
use serde_json::json;

const KEY: &[u8] = b"target-columns-masking-key-0123456789ab";
const PLACEHOLDER: &str = "__debezium_unavailable_value";

fn pg(lsn: i64) -> Source {
    Source::Postgres { lsn, sequence: Some((Some(lsn - 1), Some(lsn))), tx_id: 1, ts_ms: 1_718_000_000_000 + lsn }
}

fn items() -> Table {
    Table::new("pg.shop.public.items", vec![column("id", "int32"), column("status", "string")], &["id"])
}

fn config(text: &str) -> Config {
    Config::parse(text, "test.toml").expect("config")
}

#[tokio::test]
async fn columns_the_source_does_not_send_keep_their_value_or_take_their_default() {
    let t = items();
    let create = |offset, id, status: &str| {
        t.record(0, offset, "c", None, Some(json!({"id": id, "status": status})), &pg(10 + offset), true)
    };
    let first = msk_event_text(&[create(0, 1, "NEW")]);
    let h = Harness::new("").await;
    h.create_from_event(&Config::default_routing(), first.as_bytes()).await;
    h.sql()
        .await
        .batch_execute(
            "ALTER TABLE public.items ADD COLUMN region TEXT NOT NULL DEFAULT 'eu'; \
             ALTER TABLE public.items ADD COLUMN sk BIGINT GENERATED ALWAYS AS IDENTITY; \
             ALTER TABLE public.items ADD COLUMN reviewed_by TEXT",
        )
        .await
        .unwrap();
    let ingestor = h.ingestor(Config::default_routing(), KEY);
    assert_eq!(ingest(&ingestor, &first).await.loaded, 1);
    // Someone else's columns, set in the warehouse.
    h.sql().await.batch_execute("UPDATE public.items SET region = 'us', reviewed_by = 'ops'").await.unwrap();
    let updates = msk_event_text(&[
        t.record(0, 1, "u", None, Some(json!({"id": 1, "status": "PAID"})), &pg(20), true),
        t.record(0, 2, "d", Some(json!({"id": 1})), None, &pg(30), true),
        create(3, 2, "NEW"),
    ]);
    let p = ingest(&ingestor, &updates).await;
    assert_eq!((p.loaded, p.superseded, p.dead_lettered_total()), (2, 1, 0), "{p:?}");
    assert_eq!(
        h.text_rows("SELECT id::text, status, region, sk::text, coalesce(reviewed_by, '-'), _cdc_deleted::text FROM public.items ORDER BY id")
            .await,
        vec![some(&["1", "PAID", "us", "1", "ops", "true"]), some(&["2", "NEW", "eu", "2", "-", "false"])],
        "the stored row keeps what the source does not send, through an update and a delete; the new one takes the defaults"
    );
}

#[tokio::test]
async fn numbers_the_target_column_would_round_are_rejected_naming_the_column() {
    let t = Table::new(
        "pg.shop.public.prices",
        vec![
            column("id", "int32"),
            decimal("amount", 2, Some(10)),
            column("rate", "double"),
            column("ratio", "double"),
        ],
        &["id"],
    );
    let row =
        |id, amount: &str, rate: f64, ratio: f64| json!({"id": id, "amount": amount, "rate": rate, "ratio": ratio});
    let event = msk_event_text(&[
        // 1.50 into an INTEGER column; 1.005 into DECIMAL(10,2); 1.1 into REAL fits.
        t.record(0, 0, "c", None, Some(row(1, "AJY=", 1.005, 1.1)), &pg(10), true),
        // 2.00 and 1.25 fit; 1.23456789 is not a REAL.
        t.record(0, 1, "c", None, Some(row(2, "AMg=", 1.25, 1.234_567_89)), &pg(11), true),
        t.record(0, 2, "c", None, Some(row(3, "AMg=", 1.25, 0.5)), &pg(12), true),
    ]);
    let h = Harness::new("").await;
    h.create_from_event(&Config::default_routing(), event.as_bytes()).await;
    h.sql()
        .await
        .batch_execute(
            "ALTER TABLE public.prices ALTER COLUMN amount TYPE INTEGER; \
             ALTER TABLE public.prices ALTER COLUMN rate TYPE DECIMAL(10,2); \
             ALTER TABLE public.prices ALTER COLUMN ratio TYPE REAL",
        )
        .await
        .unwrap();
    let ingestor = h.ingestor(Config::default_routing(), KEY);
    let p = ingest(&ingestor, &event).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (1, 2), "{p:?}");
    assert_eq!(
        h.dead_letters().await,
        vec![
            (0, "load".into(), vec!["amount:decimal_scale".into(), "rate:decimal_scale".into()]),
            (1, "load".into(), vec!["ratio:float_precision".into()]),
        ]
    );
    assert_eq!(
        h.text_rows("SELECT id::text, amount::text, rate::text, ratio::text FROM public.prices").await,
        vec![some(&["3", "2", "1.25", "0.5"])]
    );
}

#[tokio::test]
async fn a_delete_on_a_wide_table_loads() {
    // 480 columns of 24-character names: one UPDATE carrying them all would be ~150 KB, over
    // the Data API's 100 KB.
    let n = 480;
    let mut columns = vec![column("id", "int32")];
    columns.extend((0..n).map(|i| column(&format!("patient_attribute_{i:06}"), "string")));
    let t = Table::new("pg.shop.public.wide", columns, &["id"]);
    let mut row = serde_json::Map::new();
    row.insert("id".into(), json!(1));
    for i in 0..n {
        row.insert(format!("patient_attribute_{i:06}"), json!(format!("v{i}")));
    }
    let create = msk_event_text(&[t.record(0, 0, "c", None, Some(row.into()), &pg(10), true)]);
    let h = Harness::new("").await;
    h.create_from_event(&Config::default_routing(), create.as_bytes()).await;
    let ingestor = h.ingestor(Config::default_routing(), KEY);
    assert_eq!(ingest(&ingestor, &create).await.loaded, 1);
    let mut update = serde_json::Map::new();
    update.insert("id".into(), json!(1));
    for i in 0..n {
        update.insert(
            format!("patient_attribute_{i:06}"),
            json!(if i % 2 == 0 { PLACEHOLDER.into() } else { format!("w{i}") }),
        );
    }
    let batch = msk_event_text(&[
        t.record(0, 1, "u", None, Some(update.into()), &pg(20), true),
        t.record(0, 2, "d", Some(json!({"id": 1})), None, &pg(30), true),
    ]);
    let p = ingest(&ingestor, &batch).await;
    assert_eq!((p.loaded, p.superseded, p.dead_lettered_total()), (1, 1, 0), "{p:?}");
    assert_eq!(
        h.text_rows(
            "SELECT _cdc_deleted::text, patient_attribute_000000, patient_attribute_000001, patient_attribute_000478, \
             patient_attribute_000479 FROM public.wide"
        )
        .await,
        vec![some(&["true", "v0", "w1", "v478", "w479"])],
        "deleted, keeping the stored values the placeholders stood for and the update's others"
    );
}

#[tokio::test]
async fn many_deletes_of_one_key_are_rejected_in_linear_time_when_the_target_refuses_every_change() {
    // Every row is refused (the target lacks the key column, and `drift = "dlq"`: deletes
    // too): the batch's fill must not try every subset. (A missing table fails the batch
    // before any row is looked at: `handlers::a_missing_target_fails_the_batch_…`.)
    let t = items();
    let mut records = Vec::new();
    for i in 0..60 {
        let lsn = 100 + i * 10;
        records.push(t.record(0, 2 * i, "c", None, Some(json!({"id": 1, "status": "x"})), &pg(lsn), false));
        records.push(t.record(0, 2 * i + 1, "d", Some(json!({"id": 1})), None, &pg(lsn + 5), false));
    }
    let h = Harness::new("").await;
    h.sql()
        .await
        .batch_execute(&format!("CREATE TABLE public.items (status VARCHAR(10), {})", cdc_tests::stack::METADATA_DDL))
        .await
        .unwrap();
    let ingestor = h.ingestor(Config::default_routing(), KEY);
    let p = ingest(&ingestor, &msk_event_text(&records)).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (0, 120), "{p:?}");
    assert!(h.dead_letters().await.iter().all(|(_, _, r)| r == &vec!["id:drift".to_string()]));
}

fn accounts() -> Table {
    Table::new(
        "pg.shop.public.acct",
        vec![column("id", "int32"), column("notes", "string"), decimal("amount", 3, Some(10))],
        &["id"],
    )
}

/// A stored row (notes N0, amount 1.000) in a `DECIMAL(10,2)` column, and an ingestor.
async fn stored_account(mode: &str) -> (Harness, Config) {
    let cfg = config(&format!(
        "[[tables]]\ntopic = \"pg.*\"\ntarget = \"public.acct\"\nkey = [\"id\"]\ndelete_mode = \"{mode}\"\n"
    ));
    let create = msk_event_text(&[accounts().record(
        0,
        0,
        "c",
        None,
        Some(json!({"id": 1, "notes": "N0", "amount": "A+g="})),
        &pg(10),
        true,
    )]);
    let h = Harness::new("").await;
    h.create_from_event(&cfg, create.as_bytes()).await;
    h.sql().await.batch_execute("ALTER TABLE public.acct ALTER COLUMN amount TYPE DECIMAL(10,2)").await.unwrap();
    assert_eq!(ingest(&h.ingestor(cfg.clone(), KEY), &create).await.loaded, 1);
    (h, cfg)
}

#[tokio::test]
async fn a_placeholder_takes_the_value_of_a_refused_change_never_an_older_one() {
    let (h, cfg) = stored_account("soft").await;
    let t = accounts();
    let ingestor = h.ingestor(cfg.clone(), KEY);
    // U1's amount (1.005) does not fit; its notes do. U2 sends a placeholder for notes.
    let p = ingest(
        &ingestor,
        &msk_event_text(&[
            t.record(0, 1, "u", None, Some(json!({"id": 1, "notes": "N1", "amount": "A+0="})), &pg(20), true),
            t.record(0, 2, "u", None, Some(json!({"id": 1, "notes": PLACEHOLDER, "amount": "B9A="})), &pg(30), true),
        ]),
    )
    .await;
    assert_eq!((p.loaded, p.superseded, p.dead_lettered_total()), (1, 0, 1), "{p:?}");
    assert_eq!(h.dead_letters().await, vec![(1, "load".into(), vec!["amount:decimal_scale".into()])]);
    assert_eq!(
        h.text_rows("SELECT notes, amount::text FROM public.acct").await,
        vec![some(&["N1", "2.00"])],
        "N1, U1's notes and the truth at U2; never the stored N0"
    );

    // A placeholder for the refused value itself cannot be stored either: both are rejected,
    // naming the column, and land in order once the column is widened and they are replayed.
    let p = ingest(
        &ingestor,
        &msk_event_text(&[
            t.record(0, 3, "u", None, Some(json!({"id": 1, "notes": "N3", "amount": "A+0="})), &pg(40), true),
            t.record(0, 4, "u", None, Some(json!({"id": 1, "notes": "N4", "amount": PLACEHOLDER})), &pg(50), true),
        ]),
    )
    .await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (0, 2), "{p:?}");
    assert_eq!(
        h.dead_letters().await[1..],
        [
            (3, "load".into(), vec!["amount:decimal_scale".into()]),
            (4, "load".into(), vec!["amount:decimal_scale".into()])
        ]
    );
    assert_eq!(h.text_rows("SELECT notes, amount::text FROM public.acct").await, vec![some(&["N1", "2.00"])]);
    h.sql().await.batch_execute("ALTER TABLE public.acct ALTER COLUMN amount TYPE DECIMAL(10,3)").await.unwrap();
    let r = h.ingestor(cfg, KEY).replay(&ReplayRequest::default(), &invocation()).await.expect("replay");
    assert_eq!((r.records_loaded, r.records_rejected), (1, 0), "{r:?}");
    assert_eq!(h.text_rows("SELECT notes, amount::text FROM public.acct").await, vec![some(&["N4", "1.005"])]);
}

#[tokio::test]
async fn a_refused_change_is_dead_lettered_even_when_a_later_one_supersedes_it() {
    let t = accounts();
    let batch = msk_event_text(&[
        t.record(0, 1, "u", None, Some(json!({"id": 1, "notes": "N1", "amount": "A+0="})), &pg(20), true),
        t.record(0, 2, "d", Some(json!({"id": 1})), None, &pg(30), true),
    ]);
    for mode in ["soft", "hard"] {
        let (h, cfg) = stored_account(mode).await;
        let p = ingest(&h.ingestor(cfg, KEY), &batch).await;
        assert_eq!((p.loaded, p.superseded, p.dead_lettered_total()), (1, 0, 1), "{mode}: {p:?}");
        assert_eq!(h.dead_letters().await, vec![(1, "load".into(), vec!["amount:decimal_scale".into()])]);
        let expected: Vec<Vec<Option<String>>> =
            if mode == "soft" { vec![some(&["N0", "1.00", "true"])] } else { Vec::new() };
        assert_eq!(
            h.text_rows("SELECT notes, amount::text, _cdc_deleted::text FROM public.acct").await,
            expected,
            "{mode}: a soft-deleted row keeps the values the warehouse held"
        );
    }
}

#[tokio::test]
async fn numbers_sent_as_text_are_checked_like_numbers() {
    // Debezium's decimal.handling.mode=string sends "1.005"; a DECIMAL(10,2) column would round it.
    let t = Table::new("pg.shop.public.prices", vec![column("id", "int32"), column("amount", "string")], &["id"]);
    let event = msk_event_text(&[
        t.record(0, 0, "c", None, Some(json!({"id": 1, "amount": "1.005"})), &pg(10), true),
        t.record(0, 1, "c", None, Some(json!({"id": 2, "amount": "1.50"})), &pg(11), true),
    ]);
    let h = Harness::new("").await;
    h.create_from_event(&Config::default_routing(), event.as_bytes()).await;
    h.sql()
        .await
        .batch_execute("ALTER TABLE public.prices ALTER COLUMN amount TYPE DECIMAL(10,2) USING amount::numeric")
        .await
        .unwrap();
    let p = ingest(&h.ingestor(Config::default_routing(), KEY), &event).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (1, 1), "{p:?}");
    assert_eq!(h.dead_letters().await, vec![(0, "load".into(), vec!["amount:decimal_scale".into()])]);
    assert_eq!(h.text_rows("SELECT id::text, amount::text FROM public.prices").await, vec![some(&["2", "1.50"])]);
}

#[tokio::test]
async fn a_mask_under_a_misspelt_column_never_lets_the_real_column_load_raw() {
    let t = Table::new("pg.shop.public.people", vec![column("id", "int32"), column("ssn", "string")], &["id"]);
    let good = config(
        "[[tables]]\ntopic = \"pg.*\"\ntarget = \"public.people\"\nkey = [\"id\"]\n[tables.columns.ssn]\nmask = \"hmac\"\n",
    );
    let misspelt = config(
        "[[tables]]\ntopic = \"pg.*\"\ntarget = \"public.people\"\nkey = [\"id\"]\n[tables.columns.snn]\nmask = \"hmac\"\n",
    );
    let event =
        msk_event_text(&[t.record(0, 0, "c", None, Some(json!({"id": 1, "ssn": "123-45-6789"})), &pg(10), true)]);
    let h = Harness::new("").await;
    // Cold start: the target exists and has no `snn`.
    h.create_from_event(&good, event.as_bytes()).await;
    let loader = || {
        cdc_pipeline::redshift::Loader::new(cdc_pipeline::redshift::DataApi::new(
            cdc_tests::stack::sdk_client(&h.emulator.endpoint_url),
            h.target(),
        ))
    };
    let err = cdc_pipeline::wiring::check_configured_columns(&loader(), &misspelt).await.unwrap_err().to_string();
    assert!(err.contains("public.people") && err.contains("snn"), "{err}");
    cdc_pipeline::wiring::check_configured_columns(&loader(), &good).await.expect("the right name passes");
    // Record by record (a target not created yet, or `drift = "add"`): rejected, never loaded.
    let p = ingest(&h.ingestor(misspelt, KEY), &event).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (0, 1), "{p:?}");
    assert_eq!(h.dead_letters().await, vec![(0, "validate".into(), vec!["snn:unknown_column".into()])]);
    assert!(h.text_rows("SELECT ssn FROM public.people").await.is_empty());
}
