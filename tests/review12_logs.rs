//! Review of issue 12, item 1 ("whatever `LOG_LEVEL` or `RUST_LOG` say, the runtime, SDK and
//! HTTP crates are capped so that no event body or request body is ever logged"). When the
//! review was written, `wiring::init_logging` capped only `aws_smithy_runtime`, `aws_config` and
//! `hyper`, and a set `RUST_LOG` replaced the whole filter. The callsites that log bodies:
//! - `lambda_runtime::layers::api_response` (lambda_runtime 1.5, src/layers/api_response.rs):
//!   `trace!(body = …, "raw JSON event received from Lambda")` — the whole MSK event, every
//!   base64 key and value, at the template's own `LogLevel: trace`;
//! - `aws_sigv4::http_request::sign`: `trace!(request = ?request, …)`, whose body is printed
//!   when `LOG_SIGNABLE_BODY=true` — Data API request bodies, SQL with row literals.
//!
//! Each case runs `init_logging` in a child process (a global subscriber can be set once) and
//! asks the installed filter whether those callsites would log.

use std::process::Command;
use std::time::Duration;

const CHILD: &str = "REVIEW12_LOG_CHILD";

/// (target, level) pairs that log a body or an event when enabled.
fn enabled_body_loggers() -> Vec<&'static str> {
    use tracing::Level;
    let mut on = Vec::new();
    if tracing::enabled!(target: "lambda_runtime::layers::api_response", Level::TRACE) {
        on.push("lambda_runtime::layers::api_response at TRACE (the raw MSK event)");
    }
    if tracing::enabled!(target: "aws_sigv4::http_request::sign", Level::TRACE) {
        on.push("aws_sigv4::http_request::sign at TRACE (request bodies with LOG_SIGNABLE_BODY=true)");
    }
    if tracing::enabled!(target: "aws_smithy_runtime::client::orchestrator", Level::TRACE) {
        on.push("aws_smithy_runtime::client::orchestrator at TRACE");
    }
    if tracing::enabled!(target: "hyper_util::client::legacy::client", Level::TRACE) {
        on.push("hyper_util::client::legacy::client at TRACE");
    }
    on
}

#[test]
fn child() {
    let Ok(level) = std::env::var(CHILD) else { return };
    cdc_pipeline::wiring::init_logging(&level, true).expect("a valid LOG_LEVEL and RUST_LOG");
    let on = enabled_body_loggers();
    println!("\nREVIEW12_ENABLED={}", on.join(" | "));
}

#[test]
fn no_allowed_level_and_no_rust_log_lets_the_runtime_or_the_sdk_log_bodies() {
    let exe = std::env::current_exe().unwrap();
    let mut leaks = Vec::new();
    let mut cases: Vec<(String, Option<&str>)> =
        ["error", "warn", "info", "debug", "trace"].iter().map(|l| (l.to_string(), None)).collect();
    cases.push(("info".into(), Some("trace")));
    cases.push(("info".into(), Some("info,lambda_runtime=trace")));
    for (level, rust_log) in cases {
        let mut command = Command::new(&exe);
        command.args(["--exact", "child", "--nocapture", "--test-threads=1"]).env(CHILD, &level);
        match rust_log {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let enabled = stdout
            .lines()
            .find_map(|l| l.split_once("REVIEW12_ENABLED=").map(|(_, on)| on))
            .expect("the child reports")
            .to_string();
        if !enabled.is_empty() {
            leaks.push(format!("LOG_LEVEL={level} RUST_LOG={rust_log:?}: {enabled}"));
        }
    }
    assert!(leaks.is_empty(), "body-logging callsites enabled:\n{}", leaks.join("\n"));
}

/// The release `ingest` binary, the one deployed: from `CDC_FUNCTION_BINARIES` (as `make test`
/// sets it) or built by the test ([`cdc_tests::functions::function_binary`]).
fn ingest_binary() -> std::path::PathBuf {
    cdc_tests::functions::function_binary("ingest")
}

/// The same at the binary level: the real (release) `ingest` binary, behind a local Lambda Runtime API,
/// at the template's allowed `LogLevel: trace`, gets an MSK event whose record carries a
/// patient's SSN and name. Its stdout must hold neither, nor the base64 the event carries.
#[test]
fn the_ingest_binary_at_log_level_trace_does_not_log_the_event() {
    use axum::Router;
    use axum::http::{HeaderMap, HeaderValue};
    use axum::routing::{get, post};
    use base64::Engine as _;
    use std::sync::{Arc, Mutex};

    let row = r#"{"schema":null,"payload":{"before":null,"after":{"id":7,"name":"Marisol Ohara","ssn":"219-09-9999"},"source":{"connector":"postgresql","lsn":10},"op":"c","ts_ms":1}}"#;
    let value = base64::engine::general_purpose::STANDARD.encode(row);
    let event = serde_json::json!({"eventSource": "aws:kafka", "records": {"pg.clinic.public.patients-0": [
        {"topic": "pg.clinic.public.patients", "partition": 0, "offset": 1, "timestamp": 1, "key": null,
         "value": value, "headers": []}]}})
    .to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let served = Arc::new(Mutex::new(false));
    let answered = Arc::new(Mutex::new(false));
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    let app = {
        let (served, answered, event) = (served.clone(), answered.clone(), event.clone());
        let done = move || {
            *answered.lock().unwrap() = true;
            async { axum::http::StatusCode::ACCEPTED }
        };
        Router::new()
            .route(
                "/2018-06-01/runtime/invocation/next",
                get(move || {
                    let (served, event) = (served.clone(), event.clone());
                    async move {
                        let first = !std::mem::replace(&mut *served.lock().unwrap(), true);
                        if !first {
                            std::future::pending::<()>().await;
                        }
                        let mut headers = HeaderMap::new();
                        headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("req-1"));
                        let deadline = (cdc_pipeline::temporal::now_micros() / 1_000 + 30_000).to_string();
                        headers.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline).unwrap());
                        headers.insert(
                            "lambda-runtime-invoked-function-arn",
                            HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:ingest"),
                        );
                        (headers, event)
                    }
                }),
            )
            .route("/2018-06-01/runtime/invocation/{id}/response", post(done.clone()))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(done.clone()))
            .route("/2018-06-01/runtime/init/error", post(done))
    };
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let child = Command::new(ingest_binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "ingest")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("CDC_CONFIG", "default")
        .env("REDSHIFT_DATABASE", "dev")
        .env("REDSHIFT_WORKGROUP", "wg")
        .env("DLQ_BUCKET", "b")
        .env("REDSHIFT_COPY_ROLE_ARN", "default")
        .env("DEADLINE_MARGIN_MS", "1000")
        .env("LOG_LEVEL", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !*answered.lock().unwrap() && started.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id();
    // This child only (its own pid), never by name.
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let output = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(*served.lock().unwrap(), "the binary never asked for an event:\n{text}");
    for secret in [value.as_str(), "219-09-9999", "Marisol"] {
        assert!(
            !text.contains(secret),
            "{secret:?} is in the binary's output at LOG_LEVEL=trace:\n{}",
            text.lines().filter(|l| l.contains(secret)).map(|l| &l[..l.len().min(300)]).collect::<Vec<_>>().join("\n")
        );
    }
}
