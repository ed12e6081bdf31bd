//! The replay Lambda: re-runs dead-letter objects (ours, or an MSK event source mapping's
//! on-failure records) through the ingest pipeline, on demand. Request and response: see
//! README, "Replay". Bad settings (an invalid `LOG_LEVEL` or `RUST_LOG` among them) exit
//! with code 2.

use std::process::ExitCode;

use cdc_pipeline::ingest::Invocation;
use cdc_pipeline::replay::ReplayRequest;
use cdc_pipeline::wiring;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

fn main() -> ExitCode {
    // SAFETY: the first thing in main: the process has no other thread yet.
    unsafe {
        wiring::function_main("replay", |ingestor| {
            run(service_fn(move |event: LambdaEvent<ReplayRequest>| {
                let ingestor = ingestor.clone();
                async move {
                    let invocation = Invocation::from_lambda(event.context.request_id, event.context.deadline);
                    Ok::<_, Error>(ingestor.replay(&event.payload, &invocation).await?)
                }
            }))
        })
    }
}
