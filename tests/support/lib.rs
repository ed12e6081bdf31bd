//! Helpers shared by the integration tests: where the repository's files are, and an
//! independent reading of sample events (plain serde_json + base64, not the pipeline's
//! decoder) to check the pipeline against.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

pub use test_services::repo_root;

pub fn events_dir() -> PathBuf {
    repo_root().join("events")
}

pub fn example_config() -> PathBuf {
    repo_root().join("config/pipeline.toml")
}

/// Every `*.json` file in `events/`, sorted by name.
pub fn event_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// One record of a sample event, read independently of the pipeline.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    /// The value decoded from base64 and parsed as JSON, when both work.
    pub value: Option<serde_json::Value>,
}

impl RawRecord {
    /// The Debezium payload (unwrapped from `{"schema","payload"}` when present).
    pub fn payload(&self) -> Option<&serde_json::Value> {
        let value = self.value.as_ref()?;
        Some(value.get("payload").unwrap_or(value))
    }

    /// A field of the row image that the record writes (`after`, or `before` for deletes).
    pub fn row_field(&self, field: &str) -> Option<&serde_json::Value> {
        let payload = self.payload()?;
        let image = if payload.get("op")?.as_str()? == "d" { "before" } else { "after" };
        payload.get(image)?.get(field)
    }
}

pub fn raw_records(path: &Path) -> Vec<RawRecord> {
    raw_records_in(&std::fs::read(path).expect("readable"), path)
}

/// The records of the event text `event` (read from `path`, for messages).
pub fn raw_records_in(event: &[u8], path: &Path) -> Vec<RawRecord> {
    let event: serde_json::Value =
        serde_json::from_slice(event).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let mut out = Vec::new();
    for records in event["records"].as_object().expect("records map").values() {
        for r in records.as_array().expect("record list") {
            let value = r["value"]
                .as_str()
                .and_then(|v| BASE64.decode(v).ok())
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            out.push(RawRecord {
                topic: r["topic"].as_str().expect("topic").to_string(),
                partition: r["partition"].as_i64().expect("partition"),
                offset: r["offset"].as_i64().expect("offset"),
                value,
            });
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    out
}

/// Lowercase hex HMAC-SHA256, computed here independently of the pipeline's masker.
pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

pub mod cli;
pub mod concurrent_load;
pub mod contract;
pub mod debezium;
pub mod faults;
pub mod functions;
pub mod harness;
pub mod lambda_api;
pub mod leaks;
pub mod stack;

/// A writer that keeps what a `tracing` JSON layer writes, for tests that read the logs.
#[derive(Clone, Default)]
pub struct LogBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
