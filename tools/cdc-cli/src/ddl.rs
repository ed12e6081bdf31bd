//! `cdc ddl`: `CREATE TABLE` statements for the configured targets.

use std::path::Path;
use std::sync::Arc;

use cdc_pipeline::redshift::ddl::{configured_columns_missing, for_events, line_comment};
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::{Config, MskEvent, Pipeline};

pub fn run(config: Option<&Path>, dialect: DdlFlavor, event: Option<&Path>) -> Result<(), String> {
    let config = match config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default_routing(),
    };
    // Masked values are never printed here; any key gives the masked columns their type.
    let pipeline = Pipeline::new(Arc::new(config), Some(b"ddl-only-key-never-masks-0123456789abcdef"))
        .map_err(|e| e.to_string())?;
    let bytes = match event {
        Some(path) => std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?,
        None => Vec::new(),
    };
    let events = match event {
        Some(path) => vec![MskEvent::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?],
        None => Vec::new(),
    };
    let missing = configured_columns_missing(&pipeline, &events);
    if !missing.is_empty() {
        return Err(format!(
            "the config names columns the event's records do not have (a misspelt name would leave the real column unmasked): {}",
            missing.join("; ")
        ));
    }
    let tables = for_events(&pipeline, &events, dialect);
    if tables.is_empty() {
        return Err("no tables: give a config with [[tables]] or an event whose topics route somewhere".into());
    }
    for table in tables {
        // A type that cannot hold every sample value is said twice: on stderr for the person
        // running this, and in the DDL for whoever reads it later.
        for warning in &table.warnings {
            let comment = line_comment(&format!("warning: {warning}"));
            eprintln!("cdc ddl: {}", &comment[3..]);
            println!("{comment}");
        }
        println!("{}\n", table.sql);
    }
    Ok(())
}
