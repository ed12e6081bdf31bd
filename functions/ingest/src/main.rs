//! The ingest Lambda: MSK event in, rows committed in Redshift or dead-lettered to S3.
//! Settings, clients and configuration are built once per cold start (see README,
//! "Environment variables"); every invocation runs `Ingestor::ingest`.

use std::sync::Arc;

use cdc_pipeline::ingest::Invocation;
use cdc_pipeline::metrics::Stdout;
use cdc_pipeline::settings::Settings;
use cdc_pipeline::wiring;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let settings = Settings::from_env("ingest").inspect_err(|e| eprintln!("ingest: cold start failed: {e}"))?;
    wiring::init_logging(&settings.log_level, false);
    let ingestor = Arc::new(
        wiring::build(&settings, Arc::new(Stdout))
            .await
            .inspect_err(|e| eprintln!("ingest: cold start failed: {e}"))?,
    );
    // The event is kept as raw JSON so that the pipeline can borrow from it.
    run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let ingestor = ingestor.clone();
        async move {
            let invocation = Invocation::from_lambda(event.context.request_id, event.context.deadline);
            Ok::<_, Error>(ingestor.ingest(event.payload.get().as_bytes(), &invocation).await?)
        }
    }))
    .await
}
