//! Hostile values through the whole ingest handler into PostgreSQL (which, behind the
//! emulator, reads literals with `standard_conforming_strings = off`, as Redshift does):
//! every value is stored exactly as sent, or the record is rejected with a reason — and no
//! other statement ever runs.

use std::time::Duration;

use cdc_pipeline::Config;
use cdc_pipeline::dlq::{Contents, read};
use cdc_pipeline::ingest::Invocation;
use cdc_pipeline::synth::{RecordSpec, lsn, msk_event_text};
use cdc_tests::harness::{Harness, KEY};
use cdc_tests::stack::METADATA_DDL;
use serde_json::json;

const TOPIC: &str = "src.db.dbo.hostile";

/// Quote and backslash break-outs, comments, stacked statements, look-alike quotes, controls.
fn corpus() -> Vec<String> {
    let mut values: Vec<String> = [
        "'",
        "''",
        "\\",
        "\\'",
        "\\\\'",
        "trailing\\",
        "'); DROP TABLE canary; --",
        "x'); INSERT INTO canary VALUES (666); --",
        "\\'); INSERT INTO canary VALUES (667); --",
        "'||(SELECT 1)||'",
        "/* not a comment */",
        "-- not a comment",
        "; SELECT pg_sleep(5); --",
        "$$; DROP TABLE canary; $$",
        "E'\\x41'",
        "\u{2018}\u{2019}\u{201C}\u{201D}\u{FF07}\u{02BC}",
        "line\nbreak\r\ttab",
        "\u{1}\u{7}\u{1b}[31m\u{7f}",
        "emoji 😀 and ünïcödé",
        "\u{FEFF}bom",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    values.push("x\\'".repeat(5_000)); // 15,000 bytes, 25,000 escaped: three columns of it still fit one statement
    values
}

fn envelope(id: i64, text: &serde_json::Value, n: u128) -> String {
    json!({
        "before": null,
        "after": {"ID": id, "Txt": text, "Uid": text, "Doc": text, "Amount": text, "Born": text, "Seen": text},
        "source": {"connector": "sqlserver", "ts_ms": 1, "commit_lsn": lsn(n << 8), "change_lsn": lsn((n << 8) - 1), "event_serial_no": 1},
        "op": "c"
    })
    .to_string()
}

#[tokio::test]
async fn hostile_values_are_stored_exactly_or_rejected_and_nothing_else_runs_on_the_copy_path() {
    hostile_values("copy").await;
}

#[tokio::test]
async fn hostile_values_are_stored_exactly_or_rejected_and_nothing_else_runs_on_the_insert_path() {
    hostile_values("insert").await;
}

/// The hostile corpus through a table loading by `load` (`copy` or `insert`).
async fn hostile_values(load: &str) {
    let h = Harness::new("").await;
    let table = "hostile";
    let sql = h.sql().await;
    sql.batch_execute(&format!(
        "CREATE TABLE public.{table} (id BIGINT NOT NULL, txt VARCHAR(65535), uid VARCHAR(65535), doc VARCHAR(65535), \
         amount DECIMAL(38, 10), born DATE, seen TIMESTAMP, {METADATA_DDL}); \
         CREATE TABLE public.canary (n INTEGER)"
    ))
    .await
    .unwrap();
    cdc_tests::stack::ensure_delete_ledger(&sql, "public").await;
    // Every column type the pipeline writes: text, uuid, json, decimal, date, timestamp.
    let config = Config::parse(
        &format!(
            "[[tables]]\ntopic = \"{TOPIC}\"\ntarget = \"public.{table}\"\nkey = [\"id\"]\nload = \"{load}\"\n\
             [tables.columns.txt]\ntype = \"string\"\n[tables.columns.uid]\ntype = \"uuid\"\n[tables.columns.doc]\ntype = \"json\"\n\
             [tables.columns.amount]\ntype = \"decimal\"\n[tables.columns.born]\ntype = \"date\"\n[tables.columns.seen]\ntype = \"timestamp\"\n"
        ),
        "hostile.toml",
    )
    .unwrap();
    let ingestor = h.ingestor(config, KEY);
    let values = corpus();
    // Each hostile text goes into every column; the text columns take it, the others reject it.
    let mut records: Vec<RecordSpec> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let id = i as i64 + 1;
            RecordSpec::new(
                TOPIC,
                0,
                id,
                1,
                Some(&json!({"ID": id}).to_string()),
                Some(&envelope(id, &json!(v), id as u128)),
            )
        })
        .collect();
    // The same values in the text columns only, with parseable values elsewhere.
    for (i, v) in values.iter().enumerate() {
        let id = 1_000 + i as i64;
        let value = json!({
            "before": null,
            "after": {"ID": id, "Txt": v, "Uid": v, "Doc": v, "Amount": "-12.5", "Born": "2001-02-03", "Seen": "2001-02-03T04:05:06.789Z"},
            "source": {"connector": "sqlserver", "ts_ms": 1, "commit_lsn": lsn((id as u128) << 8), "change_lsn": null, "event_serial_no": 1},
            "op": "c"
        });
        records.push(RecordSpec::new(TOPIC, 0, id, 1, Some(&json!({"ID": id}).to_string()), Some(&value.to_string())));
    }
    // NUL, a lone surrogate in a JSON escape, and a value too large for one statement.
    let raw = |id: i64, txt: &str| {
        format!(
            r#"{{"before":null,"after":{{"ID":{id},"Txt":{txt}}},"source":{{"connector":"sqlserver","ts_ms":1,"commit_lsn":"{}","change_lsn":null,"event_serial_no":1}},"op":"c"}}"#,
            lsn((id as u128) << 8)
        )
    };
    records.push(RecordSpec::new(
        TOPIC,
        0,
        2_001,
        1,
        Some(r#"{"ID":2001}"#),
        Some(&raw(2_001, r#""nul\u0000inside""#)),
    ));
    records.push(RecordSpec::new(
        TOPIC,
        0,
        2_002,
        1,
        Some(r#"{"ID":2002}"#),
        Some(&raw(2_002, r#""lone \ud800 surrogate""#)),
    ));
    // Two 50,000-byte values: each fits its VARCHAR(65535), the row does not fit a statement.
    let half = json!("y".repeat(50_000)).to_string();
    let two_halves = raw(2_003, &half).replace(r#""Txt":"#, &format!(r#""Uid":{half},"Txt":"#));
    records.push(RecordSpec::new(TOPIC, 0, 2_003, 1, Some(r#"{"ID":2003}"#), Some(&two_halves)));
    let too_long = json!("y".repeat(70_000)).to_string();
    records.push(RecordSpec::new(TOPIC, 0, 2_004, 1, Some(r#"{"ID":2004}"#), Some(&raw(2_004, &too_long))));

    let event = msk_event_text(&records);
    let summary = ingestor.ingest(event.as_bytes(), &Invocation::local(Duration::from_secs(120))).await.unwrap();
    assert!(summary.processed.is_balanced());

    // The text columns hold every value byte for byte.
    for (i, v) in values.iter().enumerate() {
        let id = 1_000 + i as i64;
        let row = sql
            .query_one(&format!("SELECT txt, uid, doc FROM public.{table} WHERE id = $1"), &[&id])
            .await
            .unwrap_or_else(|e| panic!("value {i} ({:?}) not stored: {e}", v.chars().take(40).collect::<String>()));
        let (txt, uid, doc): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((&txt, &uid, &doc), (v, v, v), "value {i} changed on its way");
    }
    // In typed columns a hostile text is a reject with a reason, never a coerced or partial value.
    let dead: Vec<(i64, Vec<String>)> = h
        .objects("dead-letter/")
        .await
        .iter()
        .flat_map(|(_, body)| match read(body).unwrap() {
            Contents::DeadLetters(lines) => lines
                .into_iter()
                .map(|l| {
                    (
                        l.offset,
                        l.reasons
                            .iter()
                            .map(|r| format!("{}:{}", r.column.as_deref().unwrap_or("-"), r.rule))
                            .collect(),
                    )
                })
                .collect::<Vec<_>>(),
            Contents::OnFailure { .. } => Vec::new(),
        })
        .collect();
    for (i, _) in values.iter().enumerate() {
        let id = i as i64 + 1;
        let stored: Option<i64> = sql
            .query_opt(&format!("SELECT id FROM public.{table} WHERE id = $1"), &[&id])
            .await
            .unwrap()
            .map(|r| r.get(0));
        let rejected = dead.iter().find(|(offset, _)| *offset == id);
        assert!(stored.is_none(), "value {i} in a DECIMAL/DATE/TIMESTAMP column must not load");
        let reasons = &rejected.unwrap_or_else(|| panic!("value {i} neither stored nor dead-lettered")).1;
        assert!(
            reasons.iter().any(|r| r.starts_with("amount:") || r.starts_with("born:") || r.starts_with("seen:")),
            "value {i}: {reasons:?}"
        );
    }
    let reasons_of = |offset: i64| dead.iter().find(|(o, _)| *o == offset).map(|(_, r)| r.clone()).unwrap_or_default();
    assert_eq!(reasons_of(2_001), vec!["txt:nul".to_string()]);
    assert_eq!(reasons_of(2_002), vec!["txt:invalid_string".to_string()]);
    // A row over one INSERT statement (90 KB) cannot go by literals; a staged file carries it.
    let copied = load == "copy";
    if copied {
        assert!(reasons_of(2_003).is_empty(), "{:?}", reasons_of(2_003));
        let row =
            sql.query_one(&format!("SELECT length(txt), length(uid) FROM public.{table} WHERE id = 2003"), &[]).await;
        let (txt, uid): (i32, i32) = row.map(|r| (r.get(0), r.get(1))).expect("the wide row is stored");
        assert_eq!((txt, uid), (50_000, 50_000));
    } else {
        assert_eq!(reasons_of(2_003), vec!["-:row_too_large".to_string()]);
    }
    assert_eq!(reasons_of(2_004), vec!["txt:varchar_length".to_string()]);
    // Nothing ran but the apply SQL: the canary is untouched, no stray rows exist.
    let canary: i64 = sql.query_one("SELECT count(*) FROM public.canary", &[]).await.unwrap().get(0);
    assert_eq!(canary, 0, "an injected statement ran");
    let rows: i64 = sql.query_one(&format!("SELECT count(*) FROM public.{table}"), &[]).await.unwrap().get(0);
    assert_eq!(rows, values.len() as i64 + i64::from(copied), "exactly the well-typed records were stored");
}
