//! Shared by the integration tests: one throwaway PostgreSQL per test binary, an emulator per
//! test, and a minimal HTTP/1.1 client (so the tests speak the same bytes an SDK would).
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use redshift_data_local::{EmulatorConfig, RunningEmulator, spawn};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use test_services::database_url;

/// A name unique within this test run, for tables and statement names.
pub fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}

pub struct Emulator {
    pub running: RunningEmulator,
}

/// Where requests go: an in-process emulator or one at another address.
impl Emulator {
    /// An emulator already listening at `addr` (e.g. another process). Its handle is a task that
    /// never ends.
    pub fn remote(addr: std::net::SocketAddr) -> Emulator {
        let handle = tokio::spawn(std::future::pending());
        Emulator { running: RunningEmulator { endpoint_url: format!("http://{addr}"), local_addr: addr, handle } }
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `__type` of an error body ("" on success).
    pub fn error_type(&self) -> &str {
        self.body["__type"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

/// The test server's config with `faults`.
pub fn config(faults: &str) -> EmulatorConfig {
    EmulatorConfig::new(database_url()).with_faults(faults.parse().expect("fault spec"))
}

/// The usual auth members of a request plus `extra`.
pub fn req(extra: Value) -> Value {
    let mut body = json!({"Database": "postgres", "ClusterIdentifier": "local-cluster", "DbUser": "awsuser"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

impl Emulator {
    pub async fn start(faults: &str) -> Emulator {
        Emulator::start_config(config(faults)).await
    }

    pub async fn start_config(config: EmulatorConfig) -> Emulator {
        Emulator { running: spawn(config).await.expect("start emulator") }
    }

    /// A raw HTTP/1.1 request; the server closes the connection after the response.
    pub async fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut stream = TcpStream::connect(self.running.local_addr).await.expect("connect");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/redshift-data/aws4_request\r\n",
            self.running.local_addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        stream.write_all(body).await.expect("write body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
        let body_bytes = &raw[split + 4..];
        let body =
            if body_bytes.is_empty() { Value::Null } else { serde_json::from_slice(body_bytes).expect("JSON body") };
        Response { status, headers, body }
    }

    /// An AWS JSON 1.1 call of `RedshiftData.<op>`.
    pub async fn call(&self, op: &str, body: Value) -> Response {
        let target = format!("RedshiftData.{op}");
        let headers = [("X-Amz-Target", target.as_str()), ("Content-Type", "application/x-amz-json-1.1")];
        self.http("POST", "/", &headers, body.to_string().as_bytes()).await
    }

    /// Calls `op` and asserts HTTP 200.
    pub async fn ok(&self, op: &str, body: Value) -> Value {
        let response = self.call(op, body).await;
        assert_eq!(response.status, 200, "{op} failed: {}", response.body);
        response.body
    }

    pub async fn execute(&self, sql: &str) -> String {
        let body = self.ok("ExecuteStatement", req(json!({ "Sql": sql }))).await;
        body["Id"].as_str().expect("Id").to_owned()
    }

    pub async fn batch(&self, sqls: &[&str]) -> String {
        let body = self.ok("BatchExecuteStatement", req(json!({ "Sqls": sqls }))).await;
        body["Id"].as_str().expect("Id").to_owned()
    }

    /// Polls DescribeStatement until the status is FINISHED, FAILED or ABORTED.
    pub async fn wait(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let described = self.ok("DescribeStatement", json!({ "Id": id })).await;
            if matches!(described["Status"].as_str(), Some("FINISHED" | "FAILED" | "ABORTED")) {
                return described;
            }
            assert!(Instant::now() < deadline, "statement {id} did not finish: {described}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `sql`, waits, and asserts it FINISHED.
    pub async fn run(&self, sql: &str) -> (String, Value) {
        let id = self.execute(sql).await;
        let described = self.wait(&id).await;
        assert_eq!(described["Status"], "FINISHED", "{sql}: {described}");
        (id, described)
    }

    /// Runs a query and returns its GetStatementResult body.
    pub async fn query(&self, sql: &str) -> Value {
        let (id, _) = self.run(sql).await;
        self.ok("GetStatementResult", json!({ "Id": id })).await
    }
}
