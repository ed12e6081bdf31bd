//! `cdc explain` as a user runs it: exit codes, messages, one JSON line per record.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    test_services::repo_root()
}

fn cdc(args: &[&str], masking_key: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdc"));
    command.args(args).current_dir(repo()).env_remove("MASKING_KEY").env_remove("CDC_CONFIG");
    if let Some(key) = masking_key {
        command.env("MASKING_KEY", key);
    }
    command.output().expect("cdc runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn prints_one_json_object_per_record_and_exits_0() {
    let out = cdc(
        &["explain", "--config", "config/pipeline.toml", "events/06-patientinfo-invalid.json"],
        Some("explain-test-masking-key-0123456789abcdef"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 8, "one line per Kafka record");
    assert_eq!(lines.iter().filter(|l| l["action"] == "reject").count(), 7);
    assert_eq!(lines[0]["offset"], 9);
}

#[test]
fn an_invalid_event_names_the_field_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("cdc-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":"x","timestamp":1}]}}"#).unwrap();
    let out = cdc(&["explain", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("records.t-0[0].offset"), "{message}");
    assert!(message.contains("bad.json"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hmac_without_a_key_is_refused() {
    let out = cdc(&["explain", "--config", "config/pipeline.toml", "events/02-patientinfo-create.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("MASKING_KEY"), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing printed before the check");
}

#[test]
fn a_bad_config_names_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("cdc-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.toml");
    std::fs::write(&config, "[[tables]]\ntopic = \"t\"\ntarget = \"a.b\"\ndelete_mode = \"sometimes\"\n").unwrap();
    let out = cdc(&["explain", "--config", config.to_str().unwrap(), "events/02-patientinfo-create.json"], None);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("bad.toml:4:"), "{message}");
    // The key's line and what it accepts; the value itself is withheld like every value.
    assert!(message.contains("unknown variant, expected "), "{message}");
    assert!(!message.contains("sometimes"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_config_the_default_routing_applies() {
    let out = cdc(&["explain", "events/02-patientinfo-create.json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Nothing is masked then, and the person running it is told so.
    assert!(stderr(&out).contains("masks nothing"), "{}", stderr(&out));
    let explicit = cdc(&["explain", "--config", "default", "events/02-patientinfo-create.json"], None);
    assert!(!stderr(&explicit).contains("masks nothing"), "asked for: {}", stderr(&explicit));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["table"], "public.patientinfo");
}

#[test]
fn ingest_without_settings_names_the_missing_variable() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdc"));
    command.args(["ingest", "events/02-patientinfo-create.json"]).current_dir(repo());
    for var in ["CDC_CONFIG", "REDSHIFT_DATABASE", "REDSHIFT_WORKGROUP", "REDSHIFT_CLUSTER_ID", "DLQ_BUCKET"] {
        command.env_remove(var);
    }
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "bad settings are bad input, not a handler error");
    assert!(stderr(&out).contains("CDC_CONFIG"), "{}", stderr(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_cdc"))
        .args(["ingest", "--config", "config/pipeline.toml", "events/02-patientinfo-create.json"])
        .current_dir(repo())
        .env_remove("REDSHIFT_DATABASE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("REDSHIFT_DATABASE"), "{}", stderr(&out));
}

#[test]
fn ddl_prints_create_table_for_the_configured_targets() {
    let out = cdc(
        &["ddl", "--config", "config/pipeline.toml", "--dialect", "redshift", "events/01-patientinfo-snapshot.json"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(sql.starts_with("CREATE TABLE \"public\".\"patientinfo\" ("), "{sql}");
    assert!(sql.contains("\"ssn\" VARCHAR(64)"), "hmac output is 64 hex characters: {sql}");
    assert!(sql.contains("\"_cdc_position\" VARCHAR(64) NOT NULL"));
    assert!(sql.contains("DISTSTYLE AUTO SORTKEY AUTO;"));
}

/// c20: PostgreSQL `NaN`/`Infinity` doubles (Jackson writes them as strings) are shown as the
/// text the loader writes, never as `null`; the `±infinity` timestamps' record is a reject.
#[test]
fn nan_and_infinity_are_shown_as_written() {
    let out = cdc(&["explain", "tests/fixtures/real-world/c20.json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines[0]["reasons"],
        serde_json::json!([{"column": "valid_until", "rule": "infinity"}, {"column": "valid_from", "rule": "infinity"}])
    );
    assert_eq!(lines[1]["row"]["score"], "NaN");
    assert_eq!(lines[1]["row"]["num_s"], "NAN");
    assert_eq!(lines[2]["row"]["score"], "Infinity");
}

/// c10-b: a column sent as Debezium's placeholder is not written, and says so.
#[test]
fn an_unavailable_column_is_listed_as_unchanged() {
    let out = cdc(&["explain", "tests/fixtures/real-world/c10-b-update.json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["unchanged"], serde_json::json!(["notes"]));
    assert!(line["row"].get("notes").is_none(), "{line}");
    assert!(!line.to_string().contains("__debezium_unavailable_value"));
}

/// c17: `cdc ddl` picks a type that holds every fractional digit and says no type holds both
/// sample values.
#[test]
fn ddl_says_when_no_decimal_holds_the_sample() {
    let out = cdc(&["ddl", "--dialect", "postgres", "tests/fixtures/real-world/c17.json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sql = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(sql.contains("\"ratio\" DECIMAL(38, 20)"), "{sql}");
    assert!(sql.contains("-- warning: column `ratio`: no DECIMAL holds every sample value"), "{sql}");
    assert!(stderr(&out).contains("warning: column `ratio`"), "{}", stderr(&out));
    assert!(sql.contains("CREATE TABLE IF NOT EXISTS \"public\".\"_cdc_deletes\""), "{sql}");
}

/// A config whose mask sits under a misspelt column, written next to the test's target dir.
fn misspelt_config() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("cdc-misspelt-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[tables]]\ntopic = \"sqlsrv.sampledb.dbo.patientinfo\"\ntarget = \"public.patientinfo\"\nkey = [\"id\"]\n\
         [tables.columns.snn]\nmask = \"hmac\"\n",
    )
    .unwrap();
    path
}

#[test]
fn a_mask_under_a_misspelt_column_stops_ddl_and_rejects_in_explain() {
    let config = misspelt_config();
    let config = config.to_str().unwrap();
    let key = Some("explain-test-masking-key-0123456789abcdef");
    let out = cdc(&["ddl", "--config", config, "events/02-patientinfo-create.json"], key);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("public.patientinfo: snn"), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "no DDL is printed");
    let out = cdc(&["explain", "--config", config, "events/02-patientinfo-create.json"], key);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"unknown_column\"") && text.contains("\"snn\""), "{text}");
    assert!(!text.contains("\"action\":\"upsert\""), "nothing would be written: {text}");
}

#[test]
fn a_short_masking_key_is_refused() {
    let out = cdc(&["explain", "--config", "config/pipeline.toml", "events/02-patientinfo-create.json"], Some("short"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("at least 32"), "{}", stderr(&out));
}

/// `cdc replay` reads its request as the replay function does: a bad field is named, the value
/// there (which could be anything an operator pasted) is not.
#[test]
fn a_bad_replay_request_names_the_field_not_its_value() {
    let dir = std::env::temp_dir().join(format!("cdc-cli-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("request.json");
    std::fs::write(&bad, r#"{"keys":["a"],"dry_run":"Bartholomew 123-45-6789"}"#).unwrap();
    let out = cdc(&["replay", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("dry_run") && message.contains("request.json"), "{message}");
    assert!(!message.contains("Bartholomew") && !message.contains("123-45-6789"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}
