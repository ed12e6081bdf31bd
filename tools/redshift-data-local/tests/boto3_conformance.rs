//! boto3's `redshift-data` client against the emulator: botocore parses every response with
//! the service model, so wire mistakes a lenient client tolerates show up here.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::Emulator;
use test_services::repo_root;

/// `$VENV/bin/python`, else the repository's `.venv/bin/python` (made by scripts/install-deps.sh).
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("VENV").map_or_else(|| repo_root().join(".venv"), PathBuf::from);
    let python = venv.join("bin/python");
    let has_boto3 = python.exists()
        && Command::new(&python).args(["-c", "import boto3"]).output().is_ok_and(|o| o.status.success());
    assert!(
        has_boto3,
        "this test needs a Python venv with boto3 at {}: run `scripts/install-deps.sh` (or `make test`), \
         or point VENV at a venv that has boto3",
        venv.display()
    );
    python
}

#[tokio::test]
async fn boto3_client_accepts_every_response() {
    let python = venv_python();
    let emulator = Emulator::start("").await;
    let script = repo_root().join("tools/redshift-data-local/conformance/boto3_conformance.py");
    let endpoint = emulator.running.endpoint_url.clone();
    // Blocking child process off the runtime thread, so the emulator keeps serving it.
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .output()
    })
    .await
    .expect("join")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "boto3 conformance failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all checks passed"), "stdout:\n{stdout}");
}
