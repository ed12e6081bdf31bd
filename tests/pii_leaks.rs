//! No raw SSN, date of birth or name ever reaches a log line, a metric, a handler response,
//! an error message or a dead-letter reason. Its own test binary: the log capture needs a
//! process where no other test races the tracing dispatcher.
//!
//! The second test holds the release `ingest` and `replay` binaries to it, run as Lambda runs
//! them (behind a local Runtime API), at every log level the template allows and with
//! `RUST_LOG=trace`: what they write on stdout and stderr must hold no identifier, in any
//! encoding, and still hold our own lines.

use std::time::Duration;

use cdc_pipeline::dlq::{Contents, read};
use cdc_pipeline::replay::ReplayRequest;
use cdc_tests::LogBuffer;
use cdc_tests::event_files;
use cdc_tests::events_dir;
use cdc_tests::harness::{Harness, KEY, config, invocation, relaxed_config};
use cdc_tests::leaks::{find_leaks, sample_sensitive_values};

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
    let sensitive = sample_sensitive_values();
    assert!(sensitive.len() > 20, "the samples carry SSNs, dates of birth and names: {sensitive:?}");
    for value in &sensitive {
        assert!(
            !everything.contains(value.as_str()),
            "raw value {value:?} leaked into logs, metrics, responses, errors or reasons"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The release binaries, as Lambda runs them, at every log level the template allows.
// ---------------------------------------------------------------------------------------------

/// The masking key, of the length the pipeline requires (at least 32 bytes), read by the
/// functions from Secrets Manager (moto's) as in Lambda; it must never be logged either.
const FUNCTION_MASKING_KEY: &str = "log-safety-test-masking-key-0123456789abcdef";

/// Store [`FUNCTION_MASKING_KEY`] as a secret of the local moto server; its ARN.
async fn masking_key_secret() -> String {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "tests")))
        .endpoint_url(cdc_tests::harness::s3_endpoint())
        .build();
    let name = format!("log-safety-masking-key-{}", uuid::Uuid::new_v4());
    let created = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&name)
        .secret_string(FUNCTION_MASKING_KEY)
        .send()
        .await
        .expect("moto serves Secrets Manager at the local S3 endpoint (LOCAL_S3_ENDPOINT, when set, must be moto)");
    created.arn().expect("an ARN").to_string()
}

/// Made-up identifiers that only the malformed payloads carry (the samples' own are read from
/// the samples).
const EXTRA_SSN: &str = "987-65-4320";
const EXTRA_FIRST: &str = "Bartholomew";
const EXTRA_LAST: &str = "Quimbleford";
const EXTRA_DOB: &str = "1961-07-04";

/// The AWS SDK's body-logging switches: set in every run (the functions must ignore them).
const BODY_SWITCHES: [(&str, &str); 2] = [("LOG_SIGNABLE_BODY", "true"), ("LOG_SENSITIVE_BODIES", "true")];

/// The `LOG_LEVEL` values template.yaml allows (its `LogLevel` parameter's `AllowedValues`).
fn template_log_levels() -> Vec<String> {
    let template = std::fs::read_to_string(cdc_tests::repo_root().join("template.yaml")).expect("template.yaml");
    let allowed = template
        .lines()
        .skip_while(|line| line.trim() != "LogLevel:")
        .skip(1)
        .take_while(|line| line.starts_with("    "))
        .find_map(|line| line.trim().strip_prefix("AllowedValues:"))
        .expect("template.yaml: the LogLevel parameter has AllowedValues");
    allowed.trim().trim_start_matches('[').trim_end_matches(']').split(',').map(|v| v.trim().to_string()).collect()
}

/// One way the functions are told to log.
#[derive(Debug, Clone)]
struct LogSettings {
    label: String,
    /// The most verbose level our own crates log at under these settings.
    level: tracing::Level,
    env: Vec<(String, String)>,
}

fn log_settings() -> Vec<LogSettings> {
    let mut all = Vec::new();
    for level in template_log_levels() {
        all.push(LogSettings {
            label: format!("LOG_LEVEL={level}"),
            level: level.parse().unwrap_or_else(|_| panic!("template.yaml allows LOG_LEVEL={level}")),
            env: vec![("LOG_LEVEL".into(), level)],
        });
    }
    // RUST_LOG replaces LOG_LEVEL, and may name the dependencies that log bodies: still capped.
    let every_body_logger = "trace,lambda_runtime=trace,lambda_runtime_api_client=trace,aws_smithy_runtime=trace,\
        aws_smithy_runtime_api=trace,aws_smithy_http_client=trace,aws_sigv4=trace,aws_runtime=trace,\
        aws_sdk_s3=trace,aws_sdk_redshiftdata=trace,hyper=trace,hyper_util=trace,h2=trace,rustls=trace";
    for rust_log in ["trace", every_body_logger] {
        all.push(LogSettings {
            label: format!("RUST_LOG={rust_log}"),
            level: tracing::Level::TRACE,
            env: vec![("LOG_LEVEL".into(), "error".into()), ("RUST_LOG".into(), rust_log.into())],
        });
    }
    for settings in &mut all {
        settings.env.extend(BODY_SWITCHES.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
    all
}

/// A payload for a function and what it must answer.
struct Payload {
    name: String,
    body: Vec<u8>,
    /// `true`: a response; `false`: an error.
    succeeds: bool,
}

fn ingest_payloads() -> Vec<Payload> {
    let mut payloads: Vec<Payload> = event_files()
        .into_iter()
        .map(|file| Payload {
            name: file.file_name().unwrap().to_string_lossy().into(),
            body: std::fs::read(&file).unwrap(),
            succeeds: true,
        })
        .collect();
    let snapshot = std::fs::read(events_dir().join("01-patientinfo-snapshot.json")).unwrap();
    // Cut inside the records: a JSON syntax error after SSNs and names.
    payloads.push(Payload {
        name: "truncated".into(),
        body: snapshot[..snapshot.len() * 2 / 3].to_vec(),
        succeeds: false,
    });
    payloads.push(Payload {
        name: "not JSON".into(),
        body: format!("SSN {EXTRA_SSN} for {EXTRA_FIRST} {EXTRA_LAST}, born {EXTRA_DOB}").into_bytes(),
        succeeds: false,
    });
    // An envelope field of the wrong type holding identifiers: serde would quote it.
    let mut event: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    let first = event["records"].as_object_mut().unwrap().values_mut().next().unwrap();
    first[0]["offset"] = format!("{EXTRA_SSN} {EXTRA_FIRST} {EXTRA_LAST} {EXTRA_DOB}").into();
    payloads.push(Payload { name: "bad envelope".into(), body: serde_json::to_vec(&event).unwrap(), succeeds: false });
    payloads
}

fn replay_payloads() -> Vec<Payload> {
    let snapshot = std::fs::read(events_dir().join("01-patientinfo-snapshot.json")).unwrap();
    vec![
        Payload { name: "dry run".into(), body: br#"{"dry_run": true}"#.to_vec(), succeeds: true },
        Payload { name: "replay".into(), body: b"{}".to_vec(), succeeds: true },
        // An operator's mistakes: an MSK event, and identifiers where a flag belongs.
        Payload { name: "an MSK event".into(), body: snapshot, succeeds: false },
        Payload {
            name: "bad field".into(),
            body: format!(r#"{{"keys": ["dead-letter/x"], "dry_run": "{EXTRA_SSN} {EXTRA_FIRST} {EXTRA_LAST}"}}"#)
                .into_bytes(),
            succeeds: false,
        },
    ]
}

/// Everything the runs must never write: the samples' SSNs, names and dates of birth (epoch
/// milliseconds and `YYYY-MM-DD`), the made-up ones of the malformed payloads, and the
/// masking key.
fn values_never_logged() -> Vec<String> {
    let mut values = sample_sensitive_values();
    values.extend([EXTRA_SSN, EXTRA_FIRST, EXTRA_LAST, EXTRA_DOB, FUNCTION_MASKING_KEY].map(String::from));
    values.sort();
    values.dedup();
    values
}

/// Replace the emulator's fault spec (`POST /__faults`).
async fn set_faults(endpoint: &str, spec: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("emulator reachable");
    let request = format!(
        "POST /__faults HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{spec}",
        spec.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "POST /__faults {spec}: {response}");
}

/// The settings of a function in `h`'s world: its own database, bucket and emulator.
fn function_environment(
    name: &str,
    api: &cdc_tests::lambda_api::RuntimeApi,
    h: &Harness,
    config: &str,
    key_secret: &str,
    logs: &LogSettings,
) -> std::collections::BTreeMap<String, String> {
    let mut env = cdc_tests::functions::lambda_environment(name, api);
    let config = cdc_tests::repo_root().join(config).to_string_lossy().into_owned();
    for (key, value) in [
        ("CDC_CONFIG", config.as_str()),
        ("REDSHIFT_DATABASE", h.database.as_str()),
        ("REDSHIFT_WORKGROUP", "local"),
        ("DLQ_BUCKET", h.bucket.as_str()),
        ("REDSHIFT_COPY_ROLE_ARN", cdc_tests::stack::COPY_ROLE),
        ("MASKING_KEY_SECRET_ARN", key_secret),
        ("DEADLINE_MARGIN_MS", "1000"),
        ("AWS_ENDPOINT_URL_REDSHIFT_DATA", h.emulator.endpoint_url.as_str()),
        ("AWS_ENDPOINT_URL_S3", cdc_tests::harness::s3_endpoint()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", cdc_tests::harness::s3_endpoint()),
    ] {
        env.insert(key.into(), value.into());
    }
    env.extend(logs.env.iter().cloned());
    env
}

fn check_outcome(function: &str, payload: &Payload, outcome: &cdc_tests::lambda_api::Outcome) {
    use cdc_tests::lambda_api::Outcome;
    // Our words for what failed (the body's `errorType`), never a boxed error type's name —
    // except for a payload that is not JSON at all, which lambda_runtime refuses before the
    // handler sees it (its message is serde_json's syntax error: a position, no value).
    let not_json = serde_json::from_slice::<serde_json::Value>(&payload.body).is_err();
    let error_types: &[&str] = match (function, not_json) {
        (_, true) => &["&lambda_runtime::deserializer::DeserializeError"],
        ("replay", false) => &["InvalidRequest", "List"],
        _ => &["InvalidEvent", "NoTime", "Load", "DeadLetter"],
    };
    match (payload.succeeds, outcome) {
        (true, Outcome::Response(_)) => {}
        (false, Outcome::Error { body, .. })
            if body["errorType"].as_str().is_some_and(|t| error_types.contains(&t)) => {}
        _ => panic!(
            "{function} on {}: expected {}, got {outcome:?}",
            payload.name,
            if payload.succeeds { "a response" } else { "an error" }
        ),
    }
}

/// What one set of log settings produced: both functions' output and what they did.
struct Run {
    logs: LogSettings,
    outputs: Vec<cdc_tests::functions::Output>,
    rows_loaded: u64,
    dead_letters: usize,
    replayed: u64,
}

/// Ingest every payload, one batch while every transaction conflicts (retries, then the batch
/// fails), then replay the dead letters (dry run, real, malformed requests).
async fn run_functions(logs: LogSettings, key_secret: String) -> Run {
    use cdc_tests::functions::Function;
    use cdc_tests::lambda_api::RuntimeApi;
    let ready = Duration::from_secs(30);
    let h = Harness::new("").await;
    h.create_targets(&config(), &event_files()).await;
    let mut outputs = Vec::new();

    let api = RuntimeApi::start().await;
    let ingest = Function::spawn(
        "ingest",
        &function_environment("ingest", &api, &h, "config/pipeline.toml", &key_secret, &logs),
    )
    .ready(&api, ready)
    .await;
    let mut rows_loaded = 0;
    for payload in ingest_payloads() {
        let outcome = api.invoke(payload.body.clone(), Duration::from_secs(60)).await;
        check_outcome("ingest", &payload, &outcome);
        if let cdc_tests::lambda_api::Outcome::Response(summary) = &outcome {
            rows_loaded += summary["loaded"].as_u64().unwrap_or(0);
        }
    }
    // Every transaction conflicts: retried (a debug line each) until the deadline, then failed.
    set_faults(&h.emulator.endpoint_url, "serialization=1.0").await;
    let create = std::fs::read(events_dir().join("02-patientinfo-create.json")).unwrap();
    let conflicted = Payload { name: "conflicted".into(), body: create, succeeds: false };
    check_outcome("ingest", &conflicted, &api.invoke(conflicted.body.clone(), Duration::from_secs(4)).await);
    set_faults(&h.emulator.endpoint_url, "").await;
    outputs.push(ingest.stop().await);
    let dead_letters = h.objects("dead-letter/").await.len();

    let api = RuntimeApi::start().await;
    let replay = Function::spawn(
        "replay",
        &function_environment("replay", &api, &h, "config/replay-relaxed.toml", &key_secret, &logs),
    )
    .ready(&api, ready)
    .await;
    let mut replayed = 0;
    for payload in replay_payloads() {
        let outcome = api.invoke(payload.body.clone(), Duration::from_secs(60)).await;
        check_outcome("replay", &payload, &outcome);
        if payload.name == "replay" {
            replayed = outcome.response()["records_loaded"].as_u64().unwrap_or(0);
        }
    }
    outputs.push(replay.stop().await);
    Run { logs, outputs, rows_loaded, dead_letters, replayed }
}

/// The detector finds what a body-logging line would write: the raw event, JSON-escaped (a
/// `body` field), as `Debug` bytes, hex, and base64 of either alphabet cut at any alignment.
fn check_the_detector() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let body = std::fs::read(events_dir().join("01-patientinfo-snapshot.json")).unwrap();
    let text = String::from_utf8(body.clone()).unwrap();
    // The values the event holds: its dates of birth as epoch milliseconds, not `YYYY-MM-DD`.
    let mut values = cdc_tests::leaks::event_sensitive_values(&body);
    values.retain(|v| !(v.len() == 10 && v.as_bytes()[4] == b'-' && v.as_bytes()[7] == b'-'));
    assert!(values.len() >= 9, "SSNs, names and dates of birth: {values:?}");
    let found = |what: &str, logged: &str| {
        let leaks = find_leaks(logged, &values);
        assert_eq!(leaks.len(), values.len(), "the detector misses values in {what}: {leaks:?}");
    };
    found("the raw event", &text);
    found("the event as a JSON string", &serde_json::to_string(&text).unwrap());
    found("the event as Debug bytes", &format!("{body:?}"));
    found("the event in hex", &hex::encode(&body));
    for encoded in [STANDARD.encode(&body), URL_SAFE_NO_PAD.encode(&body)] {
        for cut in 0..4 {
            found(&format!("the event in base64 cut by {cut}"), &encoded[cut..]);
        }
    }
    // A SQL literal, quotes doubled.
    assert!(!find_leaks("VALUES ('O''Brien')", &["O'Brien".to_string()]).is_empty());
}

#[test]
fn release_functions_log_no_identifier_at_any_allowed_level() {
    // Build (or find) the binaries before any runtime exists: a missing one fails here.
    let binaries = ["ingest", "replay"].map(cdc_tests::functions::function_binary);
    let values = values_never_logged();
    assert!(values.len() > 20, "the payloads carry SSNs, dates of birth and names: {values:?}");
    check_the_detector();
    let settings = log_settings();
    assert!(settings.iter().any(|s| s.label == "LOG_LEVEL=info"), "template.yaml allows info: {settings:?}");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let runs = runtime.block_on(async {
        let key_secret = masking_key_secret().await;
        futures_util::future::join_all(settings.into_iter().map(|logs| run_functions(logs, key_secret.clone()))).await
    });

    let mut failures = Vec::new();
    for run in &runs {
        let level = run.logs.level;
        assert!(
            run.rows_loaded > 0 && run.dead_letters > 0 && run.replayed > 0,
            "{}: real work: {} rows loaded, {} dead-letter objects, {} replayed",
            run.logs.label,
            run.rows_loaded,
            run.dead_letters,
            run.replayed
        );
        for output in &run.outputs {
            for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                for leak in find_leaks(text, &values) {
                    failures.push(format!("{} {} {stream}: {leak:?}", run.logs.label, output.name));
                }
            }
            // Capped, not silenced: our own lines at the level asked for, and the metrics.
            let mut expected = vec!["\"_aws\""];
            if level >= tracing::Level::WARN {
                expected.push("ignored and removed");
            }
            if level >= tracing::Level::INFO {
                expected.push("logging configured");
                expected.push("masking key loaded");
                expected.push(if output.name == "ingest" { "batch processed" } else { "replay finished" });
            }
            if output.name == "ingest" {
                expected.push("batch failed");
                if level >= tracing::Level::DEBUG {
                    expected.push("retrying transaction");
                }
            }
            for line in expected {
                if !output.stdout.contains(line) {
                    failures.push(format!(
                        "{} {}: no {line:?} in its logs:\n{}",
                        run.logs.label,
                        output.name,
                        output.text()
                    ));
                }
            }
        }
    }
    let sizes: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{}: {}",
                r.logs.label,
                r.outputs
                    .iter()
                    .map(|o| format!("{} {} B", o.name, o.stdout.len() + o.stderr.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    eprintln!("{} runs × {binaries:?}, {} values checked; output: {sizes:#?}", runs.len(), values.len());
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}
