//! `cdc ddl`: `CREATE TABLE` statements for the configured targets, typed from the changes
//! sample events produce. The DDL builders are the library's (`redshift::ddl`); which changes
//! type which table is decided here, by running the pipeline's transform over the events as
//! ingest would. The Lambdas never do this; the integration tests create their tables with
//! [`for_events`], so what they load into is what `cdc ddl` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use cdc_pipeline::config::TableConfig;
use cdc_pipeline::redshift::ddl::{TableDdl, create_delete_ledger, create_table, line_comment};
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::temporal::now_micros;
use cdc_pipeline::{Caches, Change, DecodedBatch, MskEvent, Outcome, Pipeline, Rule};

/// Columns the config names that a record of `events` routed to their table lacks, by target
/// (`target: col, col`): a misspelt name under a mask would guard nothing, and a table made
/// from it would hold both columns.
fn configured_columns_missing(pipeline: &Pipeline, events: &[MskEvent<'_>]) -> Vec<String> {
    let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in events {
        let batch = DecodedBatch::from_event(event);
        for outcome in pipeline.transform(&batch, &mut Caches::default(), now_micros()) {
            let Outcome::Reject(reject) = outcome else { continue };
            for reason in reject.reasons.iter().filter(|r| r.rule == Rule::UnknownColumn) {
                let table = reject.table.as_ref().map_or_else(String::new, |t| t.target.to_string());
                missing.entry(table).or_default().extend(reason.column.as_deref().map(str::to_string));
            }
        }
    }
    missing.into_iter().map(|(table, columns)| format!("{table}: {}", Vec::from_iter(columns).join(", "))).collect()
}

/// `CREATE TABLE` for every configured target and every target the events' records route
/// to, typed from those records, then the delete ledger of each schema they are in; in target
/// order (`schema.table`), ledgers last.
pub fn for_events(pipeline: &Pipeline, events: &[MskEvent<'_>], dialect: DdlFlavor) -> Vec<TableDdl> {
    let batches: Vec<DecodedBatch<'_>> = events.iter().map(DecodedBatch::from_event).collect();
    // Rules such as `not_future` are judged now, as the pipeline would judge these records.
    let now = now_micros();
    let outcomes: Vec<Vec<Outcome<'_>>> =
        batches.iter().map(|b| pipeline.transform(b, &mut Caches::default(), now)).collect();
    let mut by_table: BTreeMap<String, (Arc<TableConfig>, Vec<&Change<'_>>)> = BTreeMap::new();
    for table in &pipeline.config.tables {
        by_table.entry(table.target.to_string()).or_insert_with(|| (table.clone(), Vec::new()));
    }
    for outcome in outcomes.iter().flatten() {
        if let Outcome::Change(change) = outcome {
            by_table
                .entry(change.table.target.to_string())
                .or_insert_with(|| (change.table.clone(), Vec::new()))
                .1
                .push(change);
        }
    }
    let mut out: Vec<TableDdl> =
        by_table.values().map(|(table, changes)| create_table(table, &table.target, changes, dialect)).collect();
    let schemas: BTreeSet<&str> = by_table.values().map(|(t, _)| t.target.schema.as_str()).collect();
    out.extend(
        schemas.into_iter().map(|schema| TableDdl { sql: create_delete_ledger(schema, dialect), warnings: Vec::new() }),
    );
    out
}

/// `cdc ddl`: print the DDL for `config` (or the default routing) typed from `event`.
pub fn run(config: Option<&Path>, dialect: DdlFlavor, event: Option<&Path>) -> Result<(), String> {
    let config = crate::load_config(config)?;
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
