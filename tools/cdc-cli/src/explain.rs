//! `cdc explain`: decode, validate, mask and route every record of an MSK event without
//! touching any AWS service, and print one JSON object per record.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use cdc_pipeline::explain::explain;
use cdc_pipeline::temporal::now_micros;
use cdc_pipeline::{Caches, DecodedBatch, MskEvent, Pipeline};

/// Build the pipeline from a config file (or the default routing: [`cdc_cli::load_config`])
/// and `MASKING_KEY`.
pub fn pipeline(config: Option<&Path>) -> Result<Pipeline, String> {
    if config.is_none() {
        // Said every time: without a config nothing is masked, and explain prints the rows.
        eprintln!(
            "cdc explain: no --config or CDC_CONFIG: the default routing, which masks nothing; the rows below are \
             printed as they are (give --config FILE, or --config default to say you mean it)"
        );
    }
    let config = cdc_cli::load_config(config)?;
    let key = std::env::var_os("MASKING_KEY").map(|k| k.into_encoded_bytes());
    Pipeline::new(Arc::new(config), key.as_deref()).map_err(|e| e.to_string())
}

pub fn run(config: Option<&Path>, event_path: &Path) -> Result<(), String> {
    let pipeline = pipeline(config)?;
    let bytes = std::fs::read(event_path).map_err(|e| format!("{}: cannot read: {e}", event_path.display()))?;
    let event = MskEvent::parse(&bytes).map_err(|e| format!("{}: {e}", event_path.display()))?;
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), now_micros());
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (record, outcome) in batch.records().iter().zip(&outcomes) {
        serde_json::to_writer(&mut out, &explain(record, outcome)).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}
