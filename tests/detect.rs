//! `[tables.detect]` end to end through the ingest handler into PostgreSQL behind the Data API
//! emulator: sensitive-looking values in unmasked text columns — also in a column that
//! appears later through drift — are masked or rejected by the table's policy, counted per
//! column in `SensitiveValuesDetected`, and never echoed in a metric or a summary.

use cdc_pipeline::Config;
use cdc_pipeline::synth::msk_event_text;
use cdc_tests::debezium::{Source, Table, column};
use cdc_tests::harness::{Harness, ingest};
use cdc_tests::hmac_hex;
use serde_json::{Value, json};

const KEY: &[u8] = b"detect-test-masking-key-0123456789abcdef";
const SSN: &str = "219-09-9999";
const EMAIL: &str = "marisol.ohara@example.org";
const PHONE: &str = "(212) 555-0147";
const DOB: &str = "1984-03-02";

fn pg(lsn: i64) -> Source {
    Source::Postgres { lsn, sequence: Some((Some(lsn - 1), Some(lsn))), tx_id: 1, ts_ms: 1_718_000_000_000 + lsn }
}

fn visits(extra: &[&str]) -> Table {
    let mut columns =
        vec![column("id", "int32"), column("notes", "string"), column("contact", "string"), column("ward", "string")];
    columns.extend(["clinic_phone", "ssn"].iter().map(|c| column(c, "string")));
    columns.extend(extra.iter().map(|c| column(c, "string")));
    Table::new("pg.clinic.public.visits", columns, &["id"])
}

fn config(detect: &str, drift: &str) -> Config {
    let text = format!(
        "[[tables]]\ntopic = \"pg.clinic.public.visits\"\ntarget = \"public.visits\"\nkey = [\"id\"]\ndrift = \"{drift}\"\n\
         [tables.columns.ssn]\nmask = \"hmac\"\n[tables.detect]\n{detect}\n"
    );
    Config::parse(&text, "detect.toml").expect("config")
}

/// Detections as (table, column, kind) → count, from the captured EMF lines.
fn detections(lines: &[String]) -> Vec<(String, String, String, f64)> {
    let mut found: Vec<(String, String, String, f64)> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|m| {
            let n = m["SensitiveValuesDetected"].as_f64()?;
            let field = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            Some((field("Table"), field("Column"), field("Kind"), n))
        })
        .collect();
    found.sort_by(|a, b| a.partial_cmp(b).unwrap());
    found
}

fn assert_no_value(text: &str) {
    for value in [SSN, EMAIL, PHONE, DOB, "555-0147", "marisol"] {
        assert!(!text.contains(value), "{value:?} appears in {text}");
    }
}

#[tokio::test]
async fn under_policy_mask_each_finding_is_masked_and_counted_per_column_drift_included() {
    let t = visits(&[]);
    let row = |id: i32, notes: &str, contact: &str| json!({"id": id, "notes": notes, "contact": contact, "ward": "B2", "clinic_phone": "(212) 555-0100", "ssn": SSN});
    let first = msk_event_text(&[
        t.record(0, 0, "c", None, Some(row(1, &format!("SSN {SSN} given at intake"), EMAIL)), &pg(10), true),
        t.record(0, 1, "c", None, Some(row(2, "no findings here", PHONE)), &pg(11), true),
        t.record(0, 2, "c", None, Some(row(3, &format!("born {DOB}"), "none")), &pg(12), true),
    ]);
    let cfg = config("policy = \"mask\"\nmask = { type = \"hmac\", length = 32 }\nexempt = [\"clinic_phone\"]", "add");
    let h = Harness::new("").await;
    h.create_from_event(&cfg, first.as_bytes()).await;
    let ingestor = h.ingestor(cfg.clone(), KEY);
    let p = ingest(&ingestor, &first).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (3, 0), "{p:?}");
    let hmac = |v: &str| hmac_hex(KEY, v.as_bytes())[..32].to_string();
    let stored =
        h.text_rows("SELECT id::text, notes, contact, ward, clinic_phone, ssn FROM public.visits ORDER BY id").await;
    let want = |id: &str, notes: String, contact: String| {
        vec![
            Some(id.to_string()),
            Some(notes),
            Some(contact),
            Some("B2".to_string()),
            Some("(212) 555-0100".to_string()),  // exempt: kept as sent
            Some(hmac_hex(KEY, SSN.as_bytes())), // its own mask, not the detection's
        ]
    };
    assert_eq!(
        stored,
        vec![
            want("1", hmac(&format!("SSN {SSN} given at intake")), hmac(EMAIL)),
            want("2", "no findings here".into(), hmac(PHONE)),
            want("3", hmac(&format!("born {DOB}")), "none".into()),
        ]
    );

    // A column that appears later through drift is scanned too.
    let wider = visits(&["guardian_email"]);
    let mut later = row(4, "follow-up", "none");
    later["guardian_email"] = json!(EMAIL);
    let second = msk_event_text(&[wider.record(0, 3, "c", None, Some(later), &pg(20), true)]);
    assert_eq!(ingest(&ingestor, &second).await.loaded, 1);
    let added = h.text_rows("SELECT guardian_email FROM public.visits WHERE id = 4").await;
    assert_eq!(added, vec![vec![Some(hmac(EMAIL))]]);

    let lines = h.metrics.lines();
    let table = "public.visits".to_string();
    let d = |c: &str, k: &str, n: f64| (table.clone(), c.to_string(), k.to_string(), n);
    assert_eq!(
        detections(&lines),
        vec![
            d("contact", "email", 1.0),
            d("contact", "phone", 1.0),
            d("guardian_email", "email", 1.0),
            d("notes", "date", 1.0),
            d("notes", "ssn", 1.0)
        ]
    );
    assert_no_value(&lines.join("\n"));
    assert_no_value(&serde_json::to_string(&p).unwrap());
}

#[tokio::test]
async fn under_policy_reject_a_finding_dead_letters_the_record_with_its_column_and_kind() {
    let t = visits(&[]);
    let row = |id: i32, contact: &str| json!({"id": id, "notes": "n", "contact": contact, "ward": "B2", "clinic_phone": "x", "ssn": SSN});
    let event = msk_event_text(&[
        t.record(0, 0, "c", None, Some(row(1, "none")), &pg(10), true),
        t.record(0, 1, "c", None, Some(row(2, EMAIL)), &pg(11), true),
        t.record(0, 2, "c", None, Some(row(3, PHONE)), &pg(12), true),
    ]);
    // Only e-mail addresses are sought: the phone number loads as sent.
    let cfg = config("policy = \"reject\"\nkinds = [\"email\"]", "dlq");
    let h = Harness::new("").await;
    h.create_from_event(&cfg, event.as_bytes()).await;
    let p = ingest(&h.ingestor(cfg, KEY), &event).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (2, 1), "{p:?}");
    assert_eq!(
        h.text_rows("SELECT id::text, contact FROM public.visits ORDER BY id").await,
        vec![vec![Some("1".into()), Some("none".into())], vec![Some("3".into()), Some(PHONE.into())]]
    );
    let dead = h.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, 1, "the offset of the record with the e-mail address");
    assert_eq!(dead[0].2, vec!["contact:detected_email".to_string()], "{dead:?}");
    let lines = h.metrics.lines();
    assert_eq!(detections(&lines), vec![("public.visits".into(), "contact".into(), "email".into(), 1.0)]);
}

#[tokio::test]
async fn a_detection_mask_that_would_merge_keys_rejects_instead() {
    let t = Table::new("pg.clinic.public.visits", vec![column("ref", "string"), column("ward", "string")], &["ref"]);
    let event = msk_event_text(&[
        t.record(0, 0, "c", None, Some(json!({"ref": SSN, "ward": "B2"})), &pg(10), true),
        t.record(0, 1, "c", None, Some(json!({"ref": "A-17", "ward": "B2"})), &pg(11), true),
    ]);
    let text = "[[tables]]\ntopic = \"pg.clinic.public.visits\"\ntarget = \"public.visits\"\n\
                [tables.detect]\npolicy = \"mask\"\nmask = \"redact\"\n";
    let cfg = Config::parse(text, "detect.toml").unwrap();
    let h = Harness::new("").await;
    h.create_from_event(&cfg, event.as_bytes()).await;
    let p = ingest(&h.ingestor(cfg, KEY), &event).await;
    assert_eq!((p.loaded, p.dead_lettered_total()), (1, 1), "{p:?}");
    assert_eq!(h.dead_letters().await[0].2, vec!["ref:mask_on_key".to_string()]);
    assert_eq!(h.text_rows("SELECT ref FROM public.visits").await, vec![vec![Some("A-17".into())]]);
}
