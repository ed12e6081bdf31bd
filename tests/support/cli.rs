//! The `cdc` command as an operator runs it, against a test's [`Harness`]: the debug binary,
//! built once per test process (`cargo build -p cdc-cli`, the tests' target directory, so an
//! unchanged tree builds in seconds), with the settings `scripts/local-stack.sh` prints in a
//! clean environment. A build that fails fails the test: it never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use crate::harness::{Harness, KEY, s3_endpoint};
use crate::stack::COPY_ROLE;

/// The `cdc` executable, built on first use.
pub fn cdc_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let output = std::process::Command::new(&cargo)
                .current_dir(crate::repo_root())
                .args([
                    "build",
                    "--locked",
                    "-p",
                    "cdc-cli",
                    "--bin",
                    "cdc",
                    "--message-format",
                    "json-render-diagnostics",
                ])
                .stderr(Stdio::piped())
                .output()
                .unwrap_or_else(|e| panic!("could not run {}: {e}; install Rust with cargo (rustup)", cargo.display()));
            assert!(
                output.status.success(),
                "building `cdc` failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            let executable = String::from_utf8_lossy(&output.stdout).lines().find_map(|line| {
                let message: serde_json::Value = serde_json::from_str(line).ok()?;
                (message["reason"] == "compiler-artifact").then(|| message["executable"].as_str().map(PathBuf::from))?
            });
            executable.expect("cargo reported the `cdc` executable")
        })
        .clone()
}

/// What a `cdc` run printed, and how it ended.
#[derive(Debug)]
pub struct CdcRun {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cdc args…` against `h` (its emulator, database and bucket) with `config` as
/// `CDC_CONFIG`, and wait for it. Async, so that the emulator the harness runs in this
/// process keeps answering meanwhile.
pub async fn cdc(h: &Harness, config: &Path, args: &[&str]) -> CdcRun {
    cdc_at(h, &h.emulator.endpoint_url, config, args).await
}

/// [`cdc`] against the Data API at `endpoint` (another emulator of the same PostgreSQL).
pub async fn cdc_at(h: &Harness, endpoint: &str, config: &Path, args: &[&str]) -> CdcRun {
    let output = tokio::process::Command::new(cdc_binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs([
            ("AWS_ENDPOINT_URL_REDSHIFT_DATA", endpoint),
            ("AWS_ENDPOINT_URL_S3", s3_endpoint()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("REDSHIFT_WORKGROUP", "local"),
            ("REDSHIFT_DATABASE", &h.database),
            ("DLQ_BUCKET", &h.bucket),
            ("REDSHIFT_COPY_ROLE_ARN", COPY_ROLE),
            ("STAGING_PREFIX", "staging"),
            ("MASKING_KEY", std::str::from_utf8(KEY).expect("a UTF-8 key")),
            ("DEADLINE_MARGIN_MS", "500"),
            ("LOG_LEVEL", "warn"),
        ])
        .env("CDC_CONFIG", config)
        .current_dir(crate::repo_root())
        .output()
        .await
        .expect("cdc runs");
    CdcRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
