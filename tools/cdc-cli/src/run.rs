//! `cdc ingest` and `cdc replay`: the Lambda handlers' code, in-process, against the
//! endpoints and settings in the environment (see README, "Environment variables").

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cdc_pipeline::MskEvent;
use cdc_pipeline::ingest::{IngestError, Ingestor, Invocation};
use cdc_pipeline::metrics::Stderr;
use cdc_pipeline::replay::ReplayRequest;
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

async fn ingestor(config: Option<&Path>, function: &str) -> Result<Ingestor, String> {
    let settings = Settings::from_lookup(
        |name| match (name, config) {
            ("CDC_CONFIG", Some(path)) => Some(path.display().to_string()),
            _ => std::env::var(name).ok().filter(|v| !v.is_empty()),
        },
        function,
    )
    .map_err(|e| e.to_string())?;
    wiring::init_logging(&settings.log_level, true).map_err(|e| e.to_string())?;
    wiring::build(&settings, Arc::new(Stderr)).await.map_err(|e| e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

/// Errors from here are the handler's: exit 1, not the bad-input 2.
pub enum RunError {
    Setup(String),
    Handler(String),
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
        let summary = ingestor.ingest(&bytes, &invocation).await.map_err(|e| match e {
            // The file is no MSK event: bad input (exit 2), as `cdc explain` says of it. The
            // function itself would fail the invocation the same way.
            IngestError::Event(_) => RunError::Setup(format!("{}: {e}", event_path.display())),
            e => RunError::Handler(e.to_string()),
        })?;
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
        Ok(())
    })
}

pub fn replay(config: Option<&Path>, request_path: &Path) -> Result<(), RunError> {
    let bytes = std::fs::read(request_path)
        .map_err(|e| RunError::Setup(format!("{}: cannot read: {e}", request_path.display())))?;
    // As the replay function reads it: the error names the field, never the value there.
    let request =
        ReplayRequest::parse(&bytes).map_err(|e| RunError::Setup(format!("{}: {e}", request_path.display())))?;
    runtime().map_err(RunError::Setup)?.block_on(async {
        let ingestor = ingestor(config, "replay").await.map_err(RunError::Setup)?;
        let invocation = Invocation::local(timeout().map_err(RunError::Setup)?);
        let response = ingestor.replay(&request, &invocation).await.map_err(|e| RunError::Handler(e.to_string()))?;
        println!("{}", serde_json::to_string_pretty(&response).unwrap_or_default());
        Ok(())
    })
}
