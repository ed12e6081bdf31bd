//! `REDSHIFT_DATA_LOCAL_RECORD` / `EmulatorConfig::record`: every received statement becomes one
//! JSON line, even with several emulators in one process and in another process on one file.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Emulator, config, database_url, req, unique};

/// An emulator binary of this crate in its own process; killed when dropped.
struct ChildEmulator(Child);

impl Drop for ChildEmulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends `count` statements (single and batch) whose SQL is made to be awkward JSON.
async fn send(emu: &Emulator, tag: &str, count: usize) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..count {
        let sql = format!("SELECT '{tag} {i}: \"quoted\", back\\\\slash,\nnew line, ünïcode' AS v");
        if i % 3 == 0 {
            let second = format!("SELECT {i} AS {tag}_n");
            emu.ok("BatchExecuteStatement", req(json!({"Sqls": [sql, second]}))).await;
            sent.extend([sql, second]);
        } else {
            emu.execute(&sql).await;
            sent.push(sql);
        }
    }
    sent
}

fn recorded(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("record file");
    assert!(text.ends_with('\n'), "every line is complete");
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(value.as_object().map(|o| o.len()), Some(1), "{line}");
            value["sql"].as_str().expect("sql").to_owned()
        })
        .collect()
}

fn counts(sqls: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for sql in sqls {
        *counts.entry(sql).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_of_concurrent_emulators_and_processes_are_appended_whole() {
    let path: PathBuf = std::env::temp_dir().join(format!("{}.jsonl", unique("rdl_record")));
    std::fs::write(&path, "").unwrap();

    // Another process, told by the environment variable.
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_redshift-data-local"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", database_url()])
        .env("REDSHIFT_DATA_LOCAL_RECORD", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the emulator binary");
    let _child = ChildEmulator(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the emulator binary did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let remote = Emulator::remote(format!("127.0.0.1:{port}").parse().unwrap());

    let a = Emulator::start_config(config("").with_record(Some(path.clone()))).await;
    let b = Emulator::start_config(config("").with_record(Some(path.clone()))).await;
    let (sa, sb, sr) = tokio::join!(send(&a, "a", 60), send(&b, "b", 60), send(&remote, "r", 60));
    // Invalid requests are not recorded: nothing was accepted.
    let refused = a.call("ExecuteStatement", json!({"Sql": "SELECT 'no target'"})).await;
    assert_eq!(refused.error_type(), "ValidationException");

    let expected = counts(sa.into_iter().chain(sb).chain(sr));
    let got = counts(recorded(&path));
    assert_eq!(got, expected);
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn without_a_record_file_nothing_is_written_and_a_bad_path_fails_at_start() {
    let emu = Emulator::start_config(config("").with_record(None)).await;
    emu.run("SELECT 1").await;
    let bad = redshift_data_local::spawn(config("").with_record(Some("/nonexistent/dir/record.jsonl".into()))).await;
    let error = bad.unwrap_err().to_string();
    assert!(error.contains("opening the record file"), "{error}");
}
