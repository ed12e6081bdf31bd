//! The replay Lambda: re-runs dead-letter objects (ours, or an MSK event source mapping's
//! on-failure records) through the ingest pipeline, on demand. Request and response: see
//! README, "Replay".

use std::sync::Arc;

use cdc_pipeline::ingest::Invocation;
use cdc_pipeline::metrics::Stdout;
use cdc_pipeline::replay::ReplayRequest;
use cdc_pipeline::settings::Settings;
use cdc_pipeline::wiring;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let settings = Settings::from_env("replay").inspect_err(|e| eprintln!("replay: cold start failed: {e}"))?;
    wiring::init_logging(&settings.log_level, false);
    let ingestor = Arc::new(
        wiring::build(&settings, Arc::new(Stdout))
            .await
            .inspect_err(|e| eprintln!("replay: cold start failed: {e}"))?,
    );
    run(service_fn(move |event: LambdaEvent<ReplayRequest>| {
        let ingestor = ingestor.clone();
        async move {
            let invocation = Invocation::from_lambda(event.context.request_id, event.context.deadline);
            Ok::<_, Error>(ingestor.replay(&event.payload, &invocation).await?)
        }
    }))
    .await
}
