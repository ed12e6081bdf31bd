//! The servers tests run against, each started once per test process and stopped when it
//! exits: PostgreSQL (`DATABASE_URL` if set, as `make test` does, else `scripts/local-pg.sh`)
//! and an S3-protocol server (`LOCAL_S3_ENDPOINT` if set, else moto via
//! `scripts/local-s3.sh`). A missing dependency fails the test and says how to install it;
//! a test never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The checkout the tests run in: the nearest directory holding `Cargo.lock` above the
/// package cargo is running. Read at run time, not with `env!`: cargo reuses a test binary
/// built in another checkout of the same sources (its hashes use workspace-relative paths),
/// and a path baked in at compile time would then point into that other checkout.
pub fn repo_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

fn script(name: &str) -> PathBuf {
    repo_root().join("scripts").join(name)
}

/// Run `scripts/<name> start --until-pid <this process>` and return the value of `variable`
/// from the export lines it prints.
fn start(name: &str, variable: &str, install_hint: &str) -> String {
    let script = script(name);
    let output = Command::new(&script)
        .args(["start", "--until-pid", &std::process::id().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "this test needs a server that `{} start` could not start:\n{}\n{install_hint}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let prefix = format!("{variable}=");
    stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {variable} in the output of {name}: {stdout}"))
        .to_owned()
}

/// The endpoint of the S3-protocol server every test of this process uses.
pub fn s3_endpoint() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("LOCAL_S3_ENDPOINT")
            && !url.is_empty()
        {
            return url;
        }
        start(
            "local-s3.sh",
            "AWS_ENDPOINT_URL_S3",
            "Install moto into the project venv with `scripts/install-deps.sh` (or run `make test`), or set \
             LOCAL_S3_ENDPOINT to an S3-protocol server.",
        )
    })
}

/// The PostgreSQL URL every test of this process uses.
pub fn database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            return url;
        }
        start(
            "local-pg.sh",
            "DATABASE_URL",
            "Install PostgreSQL 15 with `apt-get install -y --no-upgrade postgresql` (or run `make test`, which \
             installs it), or set DATABASE_URL to a PostgreSQL 15 server.",
        )
    })
}
