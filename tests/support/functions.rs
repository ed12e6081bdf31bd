//! The release `ingest` and `replay` binaries, run as Lambda runs them: behind a local
//! Runtime API ([`crate::lambda_api`]), with their settings in a clean environment.
//!
//! [`function_binary`] builds them once per test process with `cargo build --release -p
//! cdc-ingest -p cdc-replay` (the same target directory as the tests, so an unchanged tree
//! builds in seconds), or takes them from the directory `CDC_FUNCTION_BINARIES` names. A build
//! that fails, or a binary that is missing, fails the test with what to do: it never skips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::lambda_api::RuntimeApi;

/// Where prebuilt release binaries are, when set: `$CDC_FUNCTION_BINARIES/ingest` and `…/replay`.
pub const BINARIES_VARIABLE: &str = "CDC_FUNCTION_BINARIES";

/// The release binary `name` (`ingest` or `replay`).
pub fn function_binary(name: &str) -> PathBuf {
    static BINARIES: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    let binaries = BINARIES.get_or_init(|| match std::env::var_os(BINARIES_VARIABLE).filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            ["ingest", "replay"].iter().map(|name| (name.to_string(), dir.join(name))).collect()
        }
        None => build_release_binaries(),
    });
    let path = binaries.get(name).unwrap_or_else(|| panic!("no binary {name} among {binaries:?}"));
    assert!(
        path.is_file(),
        "{} does not exist: build the functions with `cargo build --release -p cdc-ingest -p cdc-replay` and set \
         {BINARIES_VARIABLE} to the directory holding `ingest` and `replay`, or unset {BINARIES_VARIABLE} so that \
         the test builds them",
        path.display()
    );
    path.clone()
}

/// `cargo build --release -p cdc-ingest -p cdc-replay`; the executables it reports.
fn build_release_binaries() -> BTreeMap<String, PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(&cargo)
        .current_dir(crate::repo_root())
        .args(["build", "--release", "--locked", "-p", "cdc-ingest", "-p", "cdc-replay"])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}; install Rust with cargo (rustup)", cargo.display()));
    assert!(
        output.status.success(),
        "building the release functions failed ({}):\n{}\nFix the build, or build them yourself with `cargo build \
         --release -p cdc-ingest -p cdc-replay` and set {BINARIES_VARIABLE} to the directory holding `ingest` and \
         `replay` (e.g. $CARGO_TARGET_DIR/release)",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut binaries = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if message["reason"] == "compiler-artifact"
            && let Some(executable) = message["executable"].as_str()
        {
            let path = PathBuf::from(executable);
            let name = path.file_stem().expect("a file name").to_string_lossy().to_string();
            binaries.insert(name, path);
        }
    }
    assert!(
        binaries.contains_key("ingest") && binaries.contains_key("replay"),
        "cargo built no `ingest` and `replay` executables: {binaries:?}"
    );
    binaries
}

/// A running function process and its output so far.
pub struct Function {
    pub name: String,
    child: Child,
    stdout: tokio::task::JoinHandle<Vec<u8>>,
    stderr: tokio::task::JoinHandle<Vec<u8>>,
}

/// What a function wrote, and how it ended.
#[derive(Debug)]
pub struct Output {
    pub name: String,
    pub stdout: String,
    pub stderr: String,
    /// `None` when the test stopped it (a function serves until it is stopped).
    pub status: Option<ExitStatus>,
}

impl Output {
    /// Both streams, labelled, for failure messages.
    pub fn text(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

fn drain(stream: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        if let Some(mut stream) = stream {
            let _ = stream.read_to_end(&mut bytes).await;
        }
        bytes
    })
}

/// The environment Lambda gives a function (its reserved variables) for `api`.
pub fn lambda_environment(name: &str, api: &RuntimeApi) -> BTreeMap<String, String> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.address.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/cdc-test"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[$LATEST]0123456789abcdef"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Function {
    /// Start the release binary `name` with exactly `env` (nothing inherited).
    pub fn spawn(name: &str, env: &BTreeMap<String, String>) -> Function {
        let binary = function_binary(name);
        let mut child = Command::new(&binary)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Function { name: name.to_string(), child, stdout, stderr }
    }

    /// Wait up to `timeout` for the function to ask `api` for its first event (its cold start
    /// done). A function that exits or hangs instead fails the test with what it wrote.
    pub async fn ready(mut self, api: &RuntimeApi, timeout: Duration) -> Function {
        let started = tokio::time::Instant::now();
        while api.polls() == 0 {
            if let Ok(Some(status)) = self.child.try_wait() {
                let output = self.output(Some(status)).await;
                panic!("{} exited at cold start ({status}):\n{}", output.name, output.text());
            }
            if started.elapsed() > timeout {
                let output = self.stop().await;
                panic!("{} did not ask for an event within {timeout:?}:\n{}", output.name, output.text());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self
    }

    /// Wait up to `timeout` for the process to exit by itself, then collect its output.
    pub async fn exited(mut self, timeout: Duration) -> Output {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {timeout:?}", self.name))
            .expect("wait for the function");
        self.output(Some(status)).await
    }

    /// Stop the process (it serves until stopped) and collect its output.
    pub async fn stop(mut self) -> Output {
        if let Ok(Some(status)) = self.child.try_wait() {
            return self.output(Some(status)).await;
        }
        self.child.kill().await.expect("stop the function");
        self.output(None).await
    }

    async fn output(self, status: Option<ExitStatus>) -> Output {
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        Output {
            name: self.name,
            stdout: text(self.stdout.await.expect("stdout reader")),
            stderr: text(self.stderr.await.expect("stderr reader")),
            status,
        }
    }
}

/// `path`'s bytes, for events read from the repository.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
