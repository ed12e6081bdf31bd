//! No raw SSN, date of birth or name ever reaches a log line, a metric, a handler response,
//! an error message or a dead-letter reason. Its own test binary: the log capture needs a
//! process where no other test races the tracing dispatcher.

use cdc_pipeline::dlq::{Contents, read};
use cdc_pipeline::replay::ReplayRequest;
use cdc_tests::LogBuffer;
use cdc_tests::event_files;
use cdc_tests::events_dir;
use cdc_tests::harness::{Harness, KEY, config, invocation, relaxed_config};

/// Every SSN, date of birth and name the samples carry, raw.
fn raw_sensitive_values() -> Vec<String> {
    let mut values = Vec::new();
    for file in event_files() {
        for record in cdc_tests::raw_records(&file) {
            for field in ["SSN", "FirstName", "LastName"] {
                if let Some(text) = record.row_field(field).and_then(|v| v.as_str()) {
                    values.push(text.to_string());
                }
            }
            if let Some(ms) = record.row_field("DOB").and_then(|v| v.as_i64()) {
                values.push(ms.to_string());
                let mut day = String::new();
                cdc_pipeline::temporal::write_date(&mut day, ms.div_euclid(86_400_000) as i32);
                values.push(day);
            }
        }
    }
    values.sort();
    values.dedup();
    // Short names (e.g. "Wu", "Lee") are substrings of ordinary words; keep distinctive ones.
    values.retain(|v| v.len() >= 5);
    values
}

#[test]
fn no_raw_value_reaches_logs_metrics_errors_or_dead_letter_reasons() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,cdc_pipeline=trace"))
        .with_current_span(true)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut captured: Vec<String> = Vec::new();
    runtime.block_on(async {
        let h = Harness::new("").await;
        h.create_targets(&config(), &event_files()).await;
        for summary in h.ingest_all_samples().await {
            captured.push(summary.to_string());
        }
        let replay = h.ingestor(relaxed_config(), KEY).replay(&ReplayRequest::default(), &invocation()).await.unwrap();
        captured.push(serde_json::to_string(&replay).unwrap());
        // Failure paths: their error messages too.
        let throttled = Harness::new("throttle=1.0").await;
        let bytes = std::fs::read(events_dir().join("01-patientinfo-snapshot.json")).unwrap();
        captured.push(throttled.ingestor(config(), KEY).ingest(&bytes, &invocation()).await.unwrap_err().to_string());
        let mut store = h.store();
        store.bucket = "no-such-bucket-anywhere".into();
        let invalid = std::fs::read(events_dir().join("06-patientinfo-invalid.json")).unwrap();
        captured.push(
            h.ingestor_with_store(config(), KEY, store).ingest(&invalid, &invocation()).await.unwrap_err().to_string(),
        );
        // Masked columns never hold a raw value: 64 hex characters and January 1 only.
        let stored = h.sql().await.query("SELECT ssn, dob::text FROM public.patientinfo", &[]).await.unwrap();
        assert!(stored.len() >= 8);
        for row in &stored {
            let (ssn, dob): (String, String) = (row.get(0), row.get(1));
            assert!(ssn.len() == 64 && ssn.bytes().all(|b| b.is_ascii_hexdigit()), "unmasked ssn stored");
            assert!(dob.ends_with("-01-01 00:00:00"), "unmasked dob stored");
        }
        captured.extend(h.metrics.lines());
        captured.extend(throttled.metrics.lines());
        for (_, body) in h.objects("").await {
            if let Ok(Contents::DeadLetters(lines)) = read(&body) {
                for line in lines {
                    captured.push(serde_json::to_string(&line.reasons).unwrap());
                    captured.push(format!("{:?}", line.error_class));
                }
            }
        }
    });
    captured.push(logs.text());
    let everything = captured.join("\n");
    assert!(everything.contains("batch processed"), "the summary log lines were captured");
    assert!(everything.contains("RecordsReceived"), "the metrics were captured");
    let sensitive = raw_sensitive_values();
    assert!(sensitive.len() > 20, "the samples carry SSNs, dates of birth and names: {sensitive:?}");
    for value in &sensitive {
        assert!(
            !everything.contains(value.as_str()),
            "raw value {value:?} leaked into logs, metrics, responses, errors or reasons"
        );
    }
}
