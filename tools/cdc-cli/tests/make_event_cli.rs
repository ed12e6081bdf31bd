//! `cdc make-event` as a user runs it: kcat lines of the sample events' records make events
//! that `cdc explain` treats exactly as the samples; documents get sequential offsets and
//! tombstones as MSK delivers them; bad input is an exit 2 naming the line, never the content.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

const MASKING_KEY: &str = "make-event-test-masking-key-0123456789abcdef";

fn cdc(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdc"));
    command
        .args(args)
        .current_dir(test_services::repo_root())
        .env_remove("CDC_CONFIG")
        .env("MASKING_KEY", MASKING_KEY)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("cdc runs");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cdc-make-event-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn decode(field: &serde_json::Value) -> Option<Result<String, ()>> {
    let text = field.as_str()?;
    Some(BASE64.decode(text).map_err(|_| ()).and_then(|bytes| String::from_utf8(bytes).map_err(|_| ())))
}

/// kcat -J lines for a sample's records, as kcat prints them (json.c): the message bytes as
/// strings, `tstype`/`ts`, the broker, headers as `[name, value, …]` only when there are any.
/// Records whose key or value is not base64 of UTF-8 text cannot be a kcat string; their
/// coordinates are returned apart.
fn kcat_lines(event: &serde_json::Value) -> (Vec<String>, Vec<(String, i64, i64)>) {
    let mut lines = Vec::new();
    let mut left_out = Vec::new();
    for records in event["records"].as_object().unwrap().values() {
        for r in records.as_array().unwrap() {
            let coordinates = (
                r["topic"].as_str().unwrap().to_string(),
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            );
            let (key, value) = (decode(&r["key"]), decode(&r["value"]));
            if matches!(key, Some(Err(()))) || matches!(value, Some(Err(()))) {
                left_out.push(coordinates);
                continue;
            }
            let mut line = serde_json::json!({
                "topic": r["topic"], "partition": r["partition"], "offset": r["offset"],
                "tstype": if r["timestampType"] == "LOG_APPEND_TIME" { "logappend" } else { "create" },
                "ts": r["timestamp"], "broker": 2,
                "key": key.map(Result::unwrap), "payload": value.map(Result::unwrap),
            });
            let headers: Vec<serde_json::Value> = r["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|h| {
                    let (name, bytes) = h.as_object().unwrap().iter().next().unwrap();
                    let bytes: Vec<u8> = bytes.as_array().unwrap().iter().map(|b| b.as_i64().unwrap() as u8).collect();
                    [serde_json::json!(name), serde_json::json!(String::from_utf8(bytes).unwrap())]
                })
                .collect();
            if !headers.is_empty() {
                line["headers"] = serde_json::Value::Array(headers);
            }
            lines.push(line.to_string());
        }
    }
    (lines, left_out)
}

fn explain(config: Option<&str>, event: &Path) -> Vec<serde_json::Value> {
    let mut args = vec!["explain"];
    if let Some(config) = config {
        args.extend(["--config", config]);
    }
    args.push(event.to_str().unwrap());
    let out = cdc(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Round trip: each sample → kcat lines → make-event → explain, line for line the explain of
/// the sample itself (with the config's rules and masks, and with the default routing).
#[test]
fn kcat_lines_of_the_samples_explain_as_the_samples() {
    let dir = scratch();
    let root = test_services::repo_root();
    let mut samples: Vec<PathBuf> = std::fs::read_dir(root.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with('0'))
        .collect();
    samples.sort();
    assert_eq!(samples.len(), 8, "events/01…08");
    let (mut compared, mut all_left_out) = (0, Vec::new());
    for sample in &samples {
        let event: serde_json::Value = serde_json::from_slice(&std::fs::read(sample).unwrap()).unwrap();
        let (lines, left_out) = kcat_lines(&event);
        let name = sample.file_name().unwrap().to_str().unwrap();
        let input = dir.join(format!("{name}.kcat.jsonl"));
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let out = cdc(&["make-event", input.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let made = dir.join(format!("{name}.made.json"));
        std::fs::write(&made, &out.stdout).unwrap();
        for config in [Some("config/pipeline.toml"), None] {
            let expected: Vec<serde_json::Value> = explain(config, sample)
                .into_iter()
                .filter(|l| {
                    let at = (
                        l["topic"].as_str().unwrap().to_string(),
                        l["partition"].as_i64().unwrap(),
                        l["offset"].as_i64().unwrap(),
                    );
                    !left_out.contains(&at)
                })
                .collect();
            let got = explain(config, &made);
            assert_eq!(got, expected, "{name} with {config:?}");
            compared += got.len();
        }
        all_left_out.extend(left_out);
    }
    // 06's record with an undecodable value is the only one kcat could not print.
    assert_eq!(all_left_out, [("sqlsrv.sampledb.dbo.patientinfo".to_string(), 0, 13)]);
    assert!(compared >= 40, "{compared} lines compared");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn documents_get_sequential_offsets_and_tombstones_as_msk_delivers_them() {
    let sample: serde_json::Value = serde_json::from_slice(
        &std::fs::read(test_services::repo_root().join("events/02-patientinfo-create.json")).unwrap(),
    )
    .unwrap();
    let record = &sample["records"]["sqlsrv.sampledb.dbo.patientinfo-0"][0];
    let value: serde_json::Value = serde_json::from_str(&decode(&record["value"]).unwrap().unwrap()).unwrap();
    let input = [
        // A key/value document, the bare value document of the same change, a tombstone.
        serde_json::json!({"key": {"ID": 1004}, "value": value}).to_string(),
        serde_json::to_string_pretty(&value).unwrap(),
        r#"{"key": {"ID": 1004}, "value": null}"#.to_string(),
    ]
    .join("\n");
    let out = cdc(&["make-event", "--topic", "sqlsrv.sampledb.dbo.patientinfo", "--partition", "3", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["eventSource"], "aws:kafka");
    let records = event["records"]["sqlsrv.sampledb.dbo.patientinfo-3"].as_array().unwrap();
    let offsets: Vec<i64> = records.iter().map(|r| r["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [0, 1, 2]);
    assert_eq!(decode(&records[0]["key"]).unwrap().unwrap(), r#"{"ID":1004}"#);
    assert!(records[1]["key"].is_null(), "a bare value document has no key");
    assert!(records[2]["value"].is_null() && records[2].get("value").is_some(), "a tombstone: value null");
    // The value bytes are the document's JSON, compact: what the JsonConverter wrote.
    assert_eq!(decode(&records[0]["value"]), decode(&records[1]["value"]));
    assert_eq!(decode(&records[0]["value"]).unwrap().unwrap(), value.to_string());
    let dir = scratch();
    let made = dir.join("documents.json");
    std::fs::write(&made, &out.stdout).unwrap();
    // The config's `key` comes from the row: the bare document is an upsert too.
    let lines = explain(Some("config/pipeline.toml"), &made);
    let actions: Vec<&str> = lines.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["upsert", "upsert", "delete"], "{lines:?}");
    assert_eq!(lines[0]["row"], lines[1]["row"]);
    // The default routing keys by the Kafka key, which a bare value document lacks.
    let lines = explain(None, &made);
    let actions: Vec<&str> = lines.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["upsert", "reject", "delete"], "{lines:?}");
    assert_eq!(lines[1]["reasons"][0]["rule"], "missing_key");
    // The same input, the same bytes.
    let again =
        cdc(&["make-event", "--topic", "sqlsrv.sampledb.dbo.patientinfo", "--partition", "3", "-"], Some(&input));
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn kcat_headers_and_offsets_are_kept() {
    let input = [
        r#"{"topic":"t","partition":1,"offset":7,"tstype":"logappend","ts":5,"broker":1,"headers":["trace","é1","trace","x"],"key":null,"payload":"{}"}"#,
        // kcat's JSON header map form.
        r#"{"topic":"t","partition":1,"offset":9,"tstype":"create","ts":6,"broker":1,"headers":{"h":["a","b"]},"key":"k","payload":null}"#,
        // No timestamp from the broker: kcat leaves tstype and ts out.
        r#"{"topic":"t","partition":0,"offset":0,"broker":1,"key":null,"payload":"{}"}"#,
    ]
    .join("\n");
    let out = cdc(&["make-event", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = event["records"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["t-0", "t-1"]);
    let r = &event["records"]["t-1"];
    assert_eq!(r[0]["offset"], 7);
    assert_eq!(r[0]["timestampType"], "LOG_APPEND_TIME");
    assert_eq!(r[0]["timestamp"], 5);
    // Lambda's shape: one single-entry map per header, bytes signed (é is C3 A9).
    assert_eq!(r[0]["headers"], serde_json::json!([{"trace": [-61, -87, 49]}, {"trace": [120]}]));
    assert_eq!(r[1]["headers"], serde_json::json!([{"h": [97]}, {"h": [98]}]));
    assert!(r[1]["value"].is_null());
    assert!(event["records"]["t-0"][0].get("timestampType").is_none());
}

#[test]
fn bad_input_names_the_line_and_never_the_content() {
    let secret = "219-09-9999";
    let cases: Vec<(Vec<&str>, String, &str)> = vec![
        (
            vec!["--topic", "t", "-"],
            format!("{{\"key\":1,\"value\":\"{secret}\"}}\n{{\"ssn\":\"{secret}\"\n"),
            "<stdin>:3: not valid JSON",
        ),
        (vec!["--topic", "t", "-"], format!("{{\"v\":1}}\n\n[\"{secret}\"]\n"), "<stdin>:3: expected a JSON object"),
        (
            vec!["-"],
            format!("{{\"value\":\"{secret}\"}}\n"),
            "<stdin>:1: a key/value or value document names no topic: give --topic",
        ),
        (
            vec!["-"],
            format!(
                "{{\"topic\":\"t\",\"partition\":0,\"offset\":1,\"payload\":\"{secret}\"}}\n{{\"topic\":\"t\",\"partition\":0,\"offset\":1,\"payload\":\"x\"}}\n"
            ),
            "<stdin>:2: offset 1 of its topic-partition is already <stdin>:1's",
        ),
        (
            vec!["-"],
            format!("{{\"topic\":\"t\",\"partition\":0,\"offset\":\"{secret}\",\"payload\":null}}\n"),
            "<stdin>:1: `offset` must be an integer",
        ),
        (
            vec!["-"],
            format!(
                "{{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"payload\":{{\"ssn\":\"{secret}\"}},\"value_schema_id\":3}}\n"
            ),
            "<stdin>:1: `payload` is JSON",
        ),
        (
            vec!["-"],
            format!(
                "{{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"payload\":null,\"payload_error\":\"{secret}\"}}\n"
            ),
            "<stdin>:1: kcat could not deserialize",
        ),
        (
            vec!["-"],
            format!("{{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"payload\":null,\"headers\":[\"{secret}\"]}}\n"),
            "<stdin>:1: `headers` must alternate",
        ),
        (
            vec!["-"],
            format!("{{\"topic\":\"t\",\"partition\":-1,\"offset\":0,\"payload\":\"{secret}\"}}\n"),
            "<stdin>:1: `partition` must be",
        ),
        (vec!["-"], "\n \n".to_string(), "no documents"),
        (vec!["no/such/input.jsonl"], String::new(), "no/such/input.jsonl: cannot read"),
    ];
    for (args, input, expected) in cases {
        let mut full = vec!["make-event"];
        full.extend(&args);
        let out = cdc(&full, Some(&input));
        assert_eq!(out.status.code(), Some(2), "{input}: {}", stderr(&out));
        let message = stderr(&out);
        assert!(message.contains(expected), "{input}: {message}");
        assert!(!message.contains(secret), "the content was quoted: {message}");
        assert!(out.stdout.is_empty(), "{input}: nothing printed");
    }
    // A negative --partition is invalid input too.
    let out = cdc(&["make-event", "--partition", "-1", "-"], Some("{}"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// `--avro confluent --schemas DIR` numbers new schemas after the highest id in DIR, never past
/// a Java int (Confluent's ids), and never writes over a file that holds another schema: each
/// is an exit 2 naming the directory or file, not a panic or a lost schema.
#[test]
fn avro_schema_ids_stay_confluent_ids_and_files_are_never_overwritten() {
    let sample = test_services::repo_root().join("events/02-patientinfo-create.json");
    let sample = sample.to_str().unwrap();
    for (existing, expect_ok) in
        [("confluent-7.avsc", true), ("confluent-2147483647.avsc", false), ("confluent-4294967295.avsc", false)]
    {
        let dir = scratch().join(format!("ids-{existing}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(existing), "{}").unwrap();
        let out = cdc(&["make-event", "--avro", "confluent", "--schemas", dir.to_str().unwrap(), sample], None);
        if expect_ok {
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            assert!(dir.join("confluent-8.avsc").exists() && dir.join("confluent-9.avsc").exists());
        } else {
            assert_eq!(out.status.code(), Some(2), "{existing}: {}", stderr(&out));
            assert!(stderr(&out).contains("no Confluent schema id is left"), "{}", stderr(&out));
        }
        assert_eq!(std::fs::read_to_string(dir.join(existing)).unwrap(), "{}", "the existing schema is kept");
    }
}

/// `--schemas` and `--registry-integration` mean nothing without `--avro`: exit 2 naming it,
/// not a plain event as if the flag had not been given.
#[test]
fn avro_flags_without_avro_exit_2() {
    let sample = test_services::repo_root().join("events/02-patientinfo-create.json");
    let dir = scratch().join("no-avro");
    for flags in
        [&["--schemas", dir.to_str().unwrap()][..], &["--registry-integration"][..], &["--glue-registry", "r"][..]]
    {
        let out = cdc(&[&["make-event"][..], flags, &[sample.to_str().unwrap()]].concat(), None);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--avro"), "{flags:?}: {}", stderr(&out));
    }
    assert!(!dir.exists(), "nothing was written");
}
