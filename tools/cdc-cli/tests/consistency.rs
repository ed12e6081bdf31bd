//! What every `cdc` subcommand shares: exit 2 for input or settings that cannot be used, with
//! a message naming what is wrong (file, line, key path; never a value), and `CDC_CONFIG`
//! (`--config`) read the same way everywhere, `default` included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A value that must never be echoed back in a message.
const SECRET_VALUE: &str = "Bartholomew-123-45-6789";

fn cdc(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdc"));
    command.args(args).current_dir(test_services::repo_root());
    // Nothing from the caller's environment: only what the test gives.
    for name in
        ["CDC_CONFIG", "MASKING_KEY", "REDSHIFT_DATABASE", "REDSHIFT_WORKGROUP", "REDSHIFT_CLUSTER_ID", "DLQ_BUCKET"]
    {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("cdc runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A file `name` holding `text` in a directory of its own, removed when dropped.
struct Scratch {
    dir: PathBuf,
    path: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

fn scratch(name: &str, text: &str) -> Scratch {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cdc-cli-consistency-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    Scratch { dir, path }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_config_error_names_the_full_key_path_in_every_subcommand_that_reads_one() {
    let config = scratch(
        "typo.toml",
        &format!("[[tables]]\ntopic = \"t\"\ntarget = \"a.b\"\n[tables.columns.ssn]\nmaks = \"{SECRET_VALUE}\"\n"),
    );
    let event = "events/02-patientinfo-create.json";
    for args in [
        vec!["explain", "--config", path(&config), event],
        vec!["ddl", "--config", path(&config), event],
        vec!["ingest", "--config", path(&config), event],
        vec!["connector-config", "--config", path(&config)],
    ] {
        // ingest reads its settings before the config: give it what it needs to get there.
        let env = [
            ("REDSHIFT_DATABASE", "dev"),
            ("REDSHIFT_WORKGROUP", "wg"),
            ("DLQ_BUCKET", "b"),
            ("MASKING_KEY", "consistency-test-masking-key-0123456789"),
        ];
        let out = cdc(&args, &env);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains("typo.toml:5: tables[0].columns.ssn.maks: unknown field `maks`"),
            "{args:?}: {message}"
        );
        assert!(!message.contains(SECRET_VALUE), "{args:?}: {message}");
    }
}

#[test]
fn config_default_means_the_default_routing_in_every_subcommand() {
    let event = "events/02-patientinfo-create.json";
    // As an argument and as the environment variable the functions read.
    for (args, env) in [
        (vec!["explain", "--config", "default", event], vec![]),
        (vec!["explain", event], vec![("CDC_CONFIG", "default")]),
        (vec!["ddl", "--config", "default", event], vec![]),
        (vec!["ddl", event], vec![("CDC_CONFIG", "default")]),
        (
            vec![
                "connector-config",
                "--topic-prefix",
                "sqlsrv",
                "--database",
                "sampledb",
                "--table",
                "dbo.patientinfo",
            ],
            vec![("CDC_CONFIG", "default")],
        ),
    ] {
        let out = cdc(&args, &env);
        assert_eq!(out.status.code(), Some(0), "{args:?} {env:?}: {}", stderr(&out));
        let stdout = String::from_utf8(out.stdout).unwrap();
        // The default routing: the last topic segment (in `public` for explain and ddl).
        assert!(stdout.contains("patientinfo"), "{args:?}: {stdout}");
    }
}

#[test]
fn an_ingest_event_that_is_no_msk_event_exits_2_before_any_setting_is_read() {
    let bad = scratch("not-an-event.json", &format!("{{\"records\": \"{SECRET_VALUE}\"}}"));
    let out = cdc(&["ingest", path(&bad)], &[]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(message.contains("not-an-event.json") && message.contains("records"), "{message}");
    assert!(!message.contains(SECRET_VALUE), "{message}");
}

#[test]
fn missing_settings_exit_2_naming_the_variable() {
    let request = scratch("replay.json", "{\"dry_run\": true}");
    for args in [vec!["ingest", "events/02-patientinfo-create.json"], vec!["replay", path(&request)]] {
        let out = cdc(&args, &[("CDC_CONFIG", "default")]);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains("REDSHIFT_DATABASE"), "{args:?}: {message}");
    }
}

#[test]
fn unknown_flags_and_missing_arguments_exit_2() {
    for args in
        [vec!["explain"], vec!["ddl", "--dialect", "oracle"], vec!["ingest"], vec!["replay"], vec!["frobnicate"]]
    {
        let out = cdc(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_replay_request_the_replay_refuses_exits_2_naming_the_field() {
    for (name, request) in
        [("since.json", "{\"since\": \"yesterday\"}"), ("bucket.json", "{\"bucket\": \"someone-elses\"}")]
    {
        let request = scratch(name, request);
        let env = [
            ("CDC_CONFIG", "default"),
            ("REDSHIFT_DATABASE", "dev"),
            ("REDSHIFT_WORKGROUP", "wg"),
            ("DLQ_BUCKET", "cdc-consistency-test"),
            ("REDSHIFT_COPY_ROLE_ARN", "default"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            // Nothing listens here: a request refused before any call never gets there.
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
            ("AWS_ENDPOINT_URL_REDSHIFT_DATA", "http://127.0.0.1:9"),
        ];
        let out = cdc(&["replay", path(&request)], &env);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {message}");
        assert!(message.contains("invalid replay request") && message.contains(name), "{name}: {message}");
        assert!(!message.contains("yesterday") && !message.contains("someone-elses"), "{name}: {message}");
    }
}
