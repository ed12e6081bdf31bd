//! `[tables.change_schema]` (the counterpart of a Glue job's "Change Schema" step): source
//! columns renamed, dropped and cast before the key, rules and masks see them — in what
//! `cdc explain` prints, in the table `cdc ddl` creates, and in the rows loaded through the
//! Data API emulator; a cast that would lose anything rejects the record (`cast`) instead.

use std::sync::Arc;

use cdc_cli::ddl::{Options, script};
use cdc_pipeline::explain::explain;
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::synth::msk_event_text;
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};
use cdc_tests::debezium::{Source, Table, column, decimal};
use cdc_tests::harness::{Harness, ingest, some};
use serde_json::{Value, json};

const KEY: &[u8] = b"change-schema-test-masking-key-0123456789";

const CONFIG: &str = r#"
[[tables]]
topic = "*.clinic.dbo.patients"
target = "public.patients"
key = ["patient_id"]

[tables.change_schema]
rename = { id = "patient_id", fname = "first_name", zip = "postal_code" }
drop = ["internal_notes"]
cast = { postal_code = "int32", balance = "string", visits = "decimal(2)" }

[tables.columns.first_name]
max_bytes = 20

[tables.columns.ssn]
mask = "hmac"
"#;

fn table() -> Table {
    Table::new(
        "sqlsrv.clinic.dbo.patients",
        vec![
            column("id", "int32"),
            column("fname", "string"),
            column("zip", "string"),
            decimal("balance", 2, Some(10)),
            column("visits", "int32"),
            column("internal_notes", "bytes"),
            column("ssn", "string"),
        ],
        &["id"],
    )
}

fn source(n: i64) -> Source {
    Source::sqlserver(n)
}

fn row(id: i64, zip: &str, notes: &str) -> Value {
    // `balance` as Debezium writes DECIMAL(10,2) by default: base64 of the unscaled bytes.
    json!({"id": id, "fname": "Ana", "zip": zip, "balance": "MDk=", "visits": 3, "internal_notes": notes, "ssn": "123456789"})
}

fn config() -> Config {
    Config::parse(CONFIG, "change.toml").expect("config")
}

fn explained(event: &str) -> Vec<Value> {
    let pipeline = Pipeline::new(Arc::new(config()), Some(KEY)).unwrap();
    let event = MskEvent::parse(event.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 0);
    batch.records().iter().zip(&outcomes).map(|(r, o)| serde_json::to_value(explain(r, o)).unwrap()).collect()
}

#[test]
fn explain_shows_the_columns_renamed_dropped_and_cast_and_masks_after_the_mapping() {
    let t = table();
    let event = msk_event_text(&[t.record(0, 0, "c", None, Some(row(7, "02139", "AAEC")), &source(1), true)]);
    let lines = explained(&event);
    let line = &lines[0];
    assert_eq!(line["action"], "upsert", "{line}");
    assert_eq!(line["key"], json!({"patient_id": 7}));
    let row = line["row"].as_object().unwrap();
    let mut names: Vec<&str> = row.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["balance", "first_name", "patient_id", "postal_code", "ssn", "visits"]);
    assert_eq!(row["postal_code"], json!(2139), "text cast to an integer");
    assert_eq!(row["balance"], json!("123.45"), "a decimal cast to its text, scale kept");
    assert_eq!(row["visits"], json!("3.00"), "an integer cast to DECIMAL with scale 2");
    assert_eq!(line["masked"], json!(["ssn"]));
    assert_ne!(row["ssn"], json!("123456789"));
}

#[test]
fn a_cast_that_would_lose_anything_rejects_with_rule_cast_and_a_dropped_column_rejects_nothing() {
    let t = table();
    let event = msk_event_text(&[
        t.record(0, 0, "c", None, Some(row(8, "MA-02139", "AAEC")), &source(1), true),
        // Not base64: the bytes column would reject the record, were it not dropped.
        t.record(0, 1, "c", None, Some(row(9, "02140", "%%% not base64 %%%")), &source(2), true),
    ]);
    let lines = explained(&event);
    assert_eq!(lines[0]["action"], "reject", "{}", lines[0]);
    assert_eq!(lines[0]["reasons"], json!([{"column": "postal_code", "rule": "cast"}]));
    assert!(!lines[0].to_string().contains("MA-02139"), "no value in a reject: {}", lines[0]);
    assert_eq!(lines[1]["action"], "upsert", "{}", lines[1]);
}

#[test]
fn the_kafka_key_is_read_by_its_source_name_and_renamed() {
    // No configured `key`: the key columns are the Kafka key's fields, renamed.
    let text = CONFIG.replace("key = [\"patient_id\"]\n", "");
    let pipeline = Pipeline::new(Arc::new(Config::parse(&text, "k.toml").unwrap()), Some(KEY)).unwrap();
    let t = table();
    let event = msk_event_text(&[t.record(0, 0, "d", Some(row(5, "02139", "AAEC")), None, &source(1), true)]);
    let event = MskEvent::parse(event.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 0);
    let line = serde_json::to_value(explain(batch.records()[0], &outcomes[0])).unwrap();
    assert_eq!((line["action"].as_str(), &line["key"]), (Some("delete"), &json!({"patient_id": 5})), "{line}");
}

#[test]
fn config_errors_name_the_change_schema_key() {
    let table = "[[tables]]\ntopic = \"t\"\ntarget = \"a.b\"\n";
    for (body, key, message) in [
        ("key = [\"id\"]\n[tables.change_schema]\ndrop = [\"ID\"]\n", "tables[0].key", "dropped"),
        (
            "[tables.change_schema]\ndrop = [\"a\"]\nrename = { a = \"b\" }\n",
            "tables[0].change_schema.rename.a",
            "also dropped",
        ),
        (
            "[tables.change_schema]\nrename = { a = \"c\", b = \"C\" }\n",
            "tables[0].change_schema.rename.b",
            "same column",
        ),
        ("[tables.change_schema]\ncast = { a = \"bytes\" }\n", "tables[0].change_schema.cast.a", "cannot cast"),
        (
            "[tables.change_schema]\ncast = { a = \"decimal(x)\" }\n",
            "tables[0].change_schema.cast.a",
            "decimal(<scale>)",
        ),
        ("[tables.change_schema]\nrenam = { a = \"b\" }\n", "tables[0].change_schema.renam", "unknown field"),
    ] {
        let err = Config::parse(&format!("{table}{body}"), "t.toml").unwrap_err();
        assert_eq!(err.key, key, "{body}: {err}");
        assert!(err.message.contains(message), "{body}: {err}");
    }
}

#[tokio::test]
async fn cdc_ddl_creates_the_mapped_table_and_the_rows_load_into_it() {
    let t = table();
    let event = msk_event_text(&[
        t.record(0, 0, "c", None, Some(row(1, "02139", "AAEC")), &source(1), true),
        t.record(0, 1, "c", None, Some(row(2, "10001", "AAEC")), &source(2), true),
    ]);
    let pipeline = Pipeline::new(Arc::new(config()), Some(KEY)).unwrap();
    let parsed = MskEvent::parse(event.as_bytes()).unwrap();
    let (ddl, _) = script(&pipeline, &[parsed], DdlFlavor::Postgres, &Options::default()).unwrap();
    assert!(ddl.contains("\"postal_code\" INTEGER"), "{ddl}");
    assert!(ddl.contains("\"balance\" VARCHAR"), "{ddl}");
    assert!(ddl.contains("\"visits\" DECIMAL(38, 2)") || ddl.contains("\"visits\" NUMERIC(38, 2)"), "{ddl}");
    assert!(!ddl.contains("internal_notes") && !ddl.contains("\"zip\"") && !ddl.contains("\"fname\""), "{ddl}");

    let h = Harness::new("").await;
    h.sql().await.batch_execute(&ddl).await.unwrap();
    let p = ingest(&h.ingestor(config(), KEY), &event).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (2, 0), "{p:?}");
    assert_eq!(
        h.text_rows("SELECT patient_id::text, first_name, postal_code::text, balance, visits::text FROM public.patients ORDER BY 1")
            .await,
        vec![some(&["1", "Ana", "2139", "123.45", "3.00"]), some(&["2", "Ana", "10001", "123.45", "3.00"])]
    );
}
