//! The ingest Lambda: MSK event in, rows committed in Redshift or dead-lettered to S3.
//! Settings, clients and configuration are built once per cold start (see README,
//! "Environment variables"; bad settings, an invalid `LOG_LEVEL` or `RUST_LOG` among them,
//! exit with code 2); every invocation runs `Ingestor::ingest`.

use std::process::ExitCode;

use cdc_pipeline::ingest::Invocation;
use cdc_pipeline::wiring;
use lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use serde_json::value::RawValue;

fn main() -> ExitCode {
    // SAFETY: the first thing in main: the process has no other thread yet.
    unsafe {
        wiring::function_main("ingest", |ingestor| {
            // The event is kept as raw JSON so that the pipeline can borrow from it.
            run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
                let ingestor = ingestor.clone();
                async move {
                    let invocation = Invocation::from_lambda(event.context.request_id, event.context.deadline);
                    // `errorType` names what failed (`Load`, `InvalidEvent`, …); the message
                    // names coordinates and classes, never a value.
                    ingestor
                        .ingest(event.payload.get().as_bytes(), &invocation)
                        .await
                        .map_err(|e| Diagnostic { error_type: e.error_type().into(), error_message: e.to_string() })
                }
            }))
        })
    }
}
