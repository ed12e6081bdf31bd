//! Recording of received SQL for a grammar gate: one JSON line `{"sql": "..."}` per statement
//! (each ExecuteStatement and each BatchExecuteStatement sub-statement), appended to a file.
//!
//! The file is opened with `O_APPEND` and each line is written with a single `write` call, so
//! emulators in one process and in several processes can share a file without interleaving
//! lines (on a local file system).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable that names the recording file.
pub const RECORD_ENV: &str = "REDSHIFT_DATA_LOCAL_RECORD";

/// An open recording file.
pub struct Recorder {
    path: PathBuf,
    file: File,
}

impl Recorder {
    pub fn open(path: &Path) -> std::io::Result<Recorder> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        Ok(Recorder { path: path.to_owned(), file })
    }

    /// Appends one line per statement. A failed write is logged, never fails the statement.
    pub fn record<'a>(&self, sqls: impl IntoIterator<Item = &'a String>) {
        for sql in sqls {
            let mut line = serde_json::json!({ "sql": sql }).to_string();
            line.push('\n');
            match (&self.file).write(line.as_bytes()) {
                Ok(n) if n == line.len() => {}
                Ok(n) => tracing::warn!(path = %self.path.display(), written = n, len = line.len(), "short write"),
                Err(error) => tracing::warn!(path = %self.path.display(), %error, "could not record a statement"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_statement() {
        let path = std::env::temp_dir().join(format!("rdl-record-unit-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, "{\"sql\":\"earlier\"}\n").unwrap();
        let recorder = Recorder::open(&path).unwrap();
        recorder.record(&["SELECT 'a\nb', \"q\"".to_owned(), "SELECT 2".to_owned()]);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1], serde_json::json!({"sql": "SELECT 'a\nb', \"q\""}));
        assert_eq!(lines[2]["sql"], "SELECT 2");
        std::fs::remove_file(&path).unwrap();
    }
}
