//! The replay Lambda: re-runs dead-letter objects (ours, or an MSK event source mapping's
//! on-failure records) through the ingest pipeline, on demand. Request and response: see
//! README, "Replay". Bad settings (an invalid `LOG_LEVEL` or `RUST_LOG` among them) exit
//! with code 2.

use std::process::ExitCode;

use cdc_pipeline::ingest::Invocation;
use cdc_pipeline::replay::ReplayRequest;
use cdc_pipeline::wiring;
use lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use serde_json::value::RawValue;

fn main() -> ExitCode {
    // SAFETY: the first thing in main: the process has no other thread yet.
    unsafe {
        wiring::function_main("replay", |ingestor| {
            // Raw JSON, read by `ReplayRequest::parse`: lambda_runtime's own deserialization
            // error would quote the offending value in the log and the error response.
            run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
                let ingestor = ingestor.clone();
                async move {
                    let invocation = Invocation::from_lambda(event.context.request_id, event.context.deadline);
                    // `errorType` names what failed; the message names fields and codes, never
                    // a value.
                    let request = ReplayRequest::parse(event.payload.get().as_bytes()).map_err(|e| Diagnostic {
                        error_type: "InvalidRequest".into(),
                        error_message: e.to_string(),
                    })?;
                    ingestor
                        .replay(&request, &invocation)
                        .await
                        .map_err(|e| Diagnostic { error_type: e.error_type().into(), error_message: e.to_string() })
                }
            }))
        })
    }
}
