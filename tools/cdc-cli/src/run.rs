//! `cdc ingest` and `cdc replay`: the Lambda handlers' code, in-process, against the
//! endpoints and settings in the environment (see README, "Environment variables").

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cdc_pipeline::MskEvent;
use cdc_pipeline::ingest::{Ingestor, Invocation};
use cdc_pipeline::metrics::Stderr;
use cdc_pipeline::replay::{ReplayError, ReplayRequest, ReplayResponse};
use cdc_pipeline::settings::Settings;
use cdc_pipeline::wiring;

/// How long a local run may take (Lambda's maximum for MSK triggers is 14 minutes).
fn timeout() -> Result<Duration, String> {
    match std::env::var("CDC_TIMEOUT_SECONDS") {
        Ok(s) => s
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| "CDC_TIMEOUT_SECONDS: not a whole number of seconds".to_string()),
        Err(_) => Ok(Duration::from_secs(840)),
    }
}

/// The settings the functions read, from the environment, `--config` taking the place of
/// `CDC_CONFIG`; logging set up at their level (on stderr).
pub fn settings(config: Option<&Path>, function: &str) -> Result<Settings, String> {
    let settings = Settings::from_lookup(
        |name| match (name, config) {
            ("CDC_CONFIG", Some(path)) => Some(path.display().to_string()),
            _ => std::env::var(name).ok().filter(|v| !v.is_empty()),
        },
        function,
    )
    .map_err(|e| e.to_string())?;
    wiring::init_logging(&settings.log_level, true).map_err(|e| e.to_string())?;
    Ok(settings)
}

async fn ingestor(config: Option<&Path>, function: &str) -> Result<Ingestor, String> {
    let settings = settings(config, function)?;
    wiring::build(&settings, Arc::new(Stderr)).await.map_err(|e| e.to_string())
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

/// Errors from here are the handler's: exit 1, not the bad-input 2.
pub enum RunError {
    Setup(String),
    Handler(String),
    /// What was asked ran and found something wrong (`cdc check`: a check failed): exit 1,
    /// with this message.
    Failed(String),
}

pub fn ingest(config: Option<&Path>, event_path: &Path) -> Result<(), RunError> {
    let bytes = std::fs::read(event_path)
        .map_err(|e| RunError::Setup(format!("{}: cannot read: {e}", event_path.display())))?;
    // Checked before any setting or service: a file that is no MSK event is bad input
    // (exit 2) whatever the environment. The message names a JSON path, never a value.
    MskEvent::parse(&bytes).map_err(|e| RunError::Setup(format!("{}: {e}", event_path.display())))?;
    runtime().map_err(RunError::Setup)?.block_on(async {
        let ingestor = ingestor(config, "ingest").await.map_err(RunError::Setup)?;
        let invocation = Invocation::local(timeout().map_err(RunError::Setup)?);
        // The file parsed as an MSK event above, so an error here is the handler's.
        let summary = ingestor.ingest(&bytes, &invocation).await.map_err(|e| RunError::Handler(e.to_string()))?;
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
        Ok(())
    })
}

/// `cdc replay [--all]`: one call of the replay handler, or (`all`) calls until no
/// `next_key` is left, each with its own `CDC_TIMEOUT_SECONDS`, one progress line per call on
/// stderr; the response printed is the totals over every call.
pub fn replay(config: Option<&Path>, request_path: &Path, all: bool) -> Result<(), RunError> {
    let bytes = std::fs::read(request_path)
        .map_err(|e| RunError::Setup(format!("{}: cannot read: {e}", request_path.display())))?;
    // As the replay function reads it: the error names the field, never the value there.
    let request =
        ReplayRequest::parse(&bytes).map_err(|e| RunError::Setup(format!("{}: {e}", request_path.display())))?;
    runtime().map_err(RunError::Setup)?.block_on(async {
        let ingestor = ingestor(config, "replay").await.map_err(RunError::Setup)?;
        let timeout = timeout().map_err(RunError::Setup)?;
        let response = if all {
            let progress = |call: usize, page: &ReplayResponse| eprintln!("{}", progress_line(call, page));
            ingestor.replay_all(&request, || Invocation::local(timeout), progress).await
        } else {
            ingestor.replay(&request, &Invocation::local(timeout)).await
        };
        let response = response.map_err(|e| match e {
            // A request the replay refuses (another bucket, a time that is not RFC 3339,
            // `max_objects` 0) is bad input: exit 2, as for a request file that does not parse.
            ReplayError::Request(_) => RunError::Setup(format!("{}: {e}", request_path.display())),
            e => RunError::Handler(e.to_string()),
        })?;
        println!("{}", serde_json::to_string_pretty(&response).unwrap_or_default());
        // Objects that could not be replayed (a target not ready, a listing or store error)
        // stay where they are: the run did not do what was asked, and a script must see it.
        if response.objects_failed > 0 {
            return Err(RunError::Handler(format!(
                "{} object(s) could not be replayed and stay where they are (see the log lines above)",
                response.objects_failed
            )));
        }
        Ok(())
    })
}

/// One call of `cdc replay --all`, for stderr: its counts and where the next call resumes.
fn progress_line(call: usize, page: &ReplayResponse) -> String {
    format!(
        "cdc replay --all: call {call}{}: objects {} (archived {}, failed {}), records loaded {}, stale {}, \
         superseded {}, skipped {}, dead-lettered {} (quarantined {}); {}",
        if page.dry_run { " (dry run)" } else { "" },
        page.objects_scanned,
        page.objects_archived,
        page.objects_failed,
        page.records_loaded,
        page.records_stale,
        page.records_superseded,
        page.records_skipped,
        page.records_rejected,
        page.records_quarantined,
        match &page.next_key {
            Some(key) => format!("resuming after {key}"),
            None => "done".to_string(),
        }
    )
}
