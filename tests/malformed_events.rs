//! Payloads that are not MSK events, dead-letter objects that are not ours and configs that do
//! not parse, each built around real patient values: the error names a path, a kind and a
//! position — never the value — and a bad event logs one error line and counts in
//! `BatchesFailed` and `EventsMalformed`. Its own test binary: the log capture needs a process
//! where no other test races the tracing dispatcher.

use cdc_pipeline::Config;
use cdc_pipeline::dlq::read;
use cdc_tests::LogBuffer;
use cdc_tests::harness::{Harness, KEY, config, invocation};

const SSN: &str = "987-65-4329";
const SSN_DIGITS: &str = "987654329";
const NAME: &str = "Marisol";
const DOB: &str = "1984-03-02";
/// A date of birth as days since 1970 with a fraction: distinctive enough that a log
/// line's microsecond timestamp cannot contain it by chance (a bare "5174" can).
const DOB_DAYS: &str = "5174.5";

/// A valid record with `field` replaced by `value` (raw JSON).
fn event_with(field: &str, value: &str) -> String {
    let mut record = serde_json::json!({
        "topic": "sqlserver.dbo.PatientInfo", "partition": 0, "offset": 7,
        "timestamp": 1_700_000_000_000_i64, "timestampType": "CREATE_TIME",
        "key": null, "value": null, "headers": []
    });
    record[field] = serde_json::from_str(value).unwrap();
    serde_json::json!({
        "eventSource": "aws:kafka",
        "records": { "sqlserver.dbo.PatientInfo-0": [record] }
    })
    .to_string()
}

/// Each malformed payload, and where its error must point.
fn malformed() -> Vec<(String, &'static str)> {
    vec![
        (event_with("offset", &format!("\"{SSN}\"")), "records.sqlserver.dbo.PatientInfo-0[0].offset"),
        (event_with("partition", &format!("\"{NAME} O'Hara\"")), "records.sqlserver.dbo.PatientInfo-0[0].partition"),
        (event_with("value", SSN_DIGITS), "records.sqlserver.dbo.PatientInfo-0[0].value"),
        (event_with("timestamp", &format!("\"{DOB}\"")), "records.sqlserver.dbo.PatientInfo-0[0].timestamp"),
        (event_with("offset", DOB_DAYS), "records.sqlserver.dbo.PatientInfo-0[0].offset"),
        (event_with("key", &format!("{{\"ssn\": \"{SSN}\"}}")), "records.sqlserver.dbo.PatientInfo-0[0].key"),
        (format!(r#"{{"eventSource": "aws:kafka", "records": "{SSN} {NAME}"}}"#), "records"),
        (format!(r#"{{"eventSource": "aws:kafka", "records": {{}}}} "{NAME}""#), "(event)"),
        (format!(r#"{{"eventSource": "aws:kafka", "records": {{"t-0": [{{"topic": "{NAME}\u0001"#), ""),
    ]
}

fn assert_clean(text: &str, what: &str) {
    for secret in [SSN, SSN_DIGITS, NAME, DOB, DOB_DAYS, "O'Hara"] {
        assert!(!text.contains(secret), "{secret:?} leaked into {what}: {text}");
    }
}

#[test]
fn malformed_events_fail_by_position_and_kind_with_a_log_line_and_metrics() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cases = malformed();
    runtime.block_on(async {
        let h = Harness::new("").await;
        let ingestor = h.ingestor(config(), KEY);
        for (payload, path) in &cases {
            let error = ingestor.ingest(payload.as_bytes(), &invocation()).await.unwrap_err().to_string();
            assert!(error.contains("not an MSK event"), "{error}");
            assert!(error.contains(path), "the error names the path {path}: {error}");
            assert!(error.contains("line 1 column "), "the error names the position: {error}");
            assert_clean(&error, "an ingest error");
        }
        let metrics = h.metrics.lines().join("\n");
        assert_clean(&metrics, "the metrics");
        for name in ["BatchesFailed", "EventsMalformed"] {
            let emitted = h.metrics.lines().iter().filter(|l| l.contains(&format!("\"{name}\":1"))).count();
            assert_eq!(emitted, cases.len(), "{name} counted once per malformed event: {metrics}");
        }
    });
    let logged = logs.text();
    let errors = logged.lines().filter(|l| l.contains("\"level\":\"ERROR\"") && l.contains("not an MSK event")).count();
    assert_eq!(errors, cases.len(), "one error line per malformed event:\n{logged}");
    assert_clean(&logged, "the logs");
}

#[test]
fn dead_letter_objects_and_configs_that_do_not_parse_name_no_value() {
    let object = format!("{{\"topic\": \"t\", \"partition\": \"{SSN}\", \"offset\": 1}}\n");
    let error = read(&object).expect_err("not a dead-letter object").to_string();
    assert!(error.contains("line 1"), "{error}");
    assert_clean(&error, "a dead-letter read error");

    for text in [
        format!("[[tables]]\ntopic = \"t\"\ntarget = {SSN_DIGITS}\n"),
        format!(
            "[[tables]]\ntopic = \"t\"\ntarget = \"a.b\"\nkey = [\"ssn\"]\n[tables.columns.ssn]\nmask = {{ type = \"hmac\", salt = {SSN_DIGITS} }}\n"
        ),
        format!("[[tables]]\ntopic = \"{NAME}\n"),
    ] {
        let error = Config::parse(&text, "cdc.toml").expect_err("not a config").to_string();
        assert!(error.contains("cdc.toml"), "{error}");
        assert_clean(&error, "a config error");
    }
}
