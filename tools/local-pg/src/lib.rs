//! The PostgreSQL server tests run against: `DATABASE_URL` if set (as `make test` does),
//! else a throwaway cluster started with `scripts/local-pg.sh` for this process and removed
//! when it exits. If PostgreSQL is missing the test fails and says how to install it; it
//! never skips.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The PostgreSQL URL every test of this process uses.
pub fn database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            return url;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/local-pg.sh");
        let output = Command::new(&script)
            .args(["start", "--until-pid", &std::process::id().to_string()])
            .output()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "this test needs PostgreSQL 15 and `{} start` failed:\n{}\nInstall it with \
             `apt-get install -y --no-upgrade postgresql` (or run `make test`, which installs it), \
             or set DATABASE_URL to a PostgreSQL 15 server.",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .split_whitespace()
            .find_map(|word| word.strip_prefix("DATABASE_URL="))
            .unwrap_or_else(|| panic!("no DATABASE_URL in the output of local-pg.sh: {stdout}"))
            .to_owned()
    })
}
