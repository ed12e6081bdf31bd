//! `cdc explain`: decode, validate, mask and route every record of an MSK event without
//! touching any AWS service, and print one JSON object per record.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use cdc_pipeline::avro::AvroError;
use cdc_pipeline::avro::connect::AvroSchema;
use cdc_pipeline::avro::frame::SchemaRef;
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

/// The schemas of a local registry directory: `confluent-<id>.avsc` and
/// `glue-<uuid>.avsc` files (other files are ignored), by schema reference; a file that is no
/// Avro schema is kept as its error, as a registry's would be (`avro_schema`).
type Registry = HashMap<SchemaRef, Result<Arc<AvroSchema>, AvroError>>;

fn local_registry(dir: &Path) -> Result<Registry, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    let mut registry = HashMap::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: cannot read: {e}", dir.display()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).filter(|n| n.ends_with(".avsc")) else {
            continue;
        };
        if !(name.starts_with("confluent-") || name.starts_with("glue-")) {
            continue;
        }
        let schema = crate::make_event::schema_of_file_name(name)
            .ok_or_else(|| format!("{}: not confluent-<id>.avsc or glue-<uuid>.avsc", path.display()))?;
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        registry.insert(schema, AvroSchema::parse(&schema.to_string(), &text).map(Arc::new));
    }
    Ok(registry)
}

pub fn run(config: Option<&Path>, schemas: Option<&Path>, event_path: &Path) -> Result<(), String> {
    let pipeline = pipeline(config)?;
    let registry = schemas.map(local_registry).transpose()?;
    let bytes = std::fs::read(event_path).map_err(|e| format!("{}: cannot read: {e}", event_path.display()))?;
    let event = MskEvent::parse(&bytes).map_err(|e| format!("{}: {e}", event_path.display()))?;
    let mut batch = DecodedBatch::from_event(&event);
    if let Some(registry) = &registry {
        batch.read_avro(&|schema| registry.get(&schema).cloned());
    }
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), now_micros());
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (record, outcome) in batch.records().iter().zip(&outcomes) {
        serde_json::to_writer(&mut out, &explain(record, outcome)).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}
