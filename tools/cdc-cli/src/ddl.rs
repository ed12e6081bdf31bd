//! `cdc ddl`: `CREATE TABLE` statements for the configured targets, typed from the changes
//! sample events produce, and on request views over them and the GRANTs the functions' user
//! needs. The DDL builders are the library's (`redshift::ddl`); which changes type which table
//! is decided here, by running the pipeline's transform over the events as ingest would, with
//! the rules left out. The Lambdas never do this; the integration tests create their tables
//! with [`for_events`], so what they load into is what `cdc ddl` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cdc_pipeline::config::{Config, DriftPolicy, TableConfig};
use cdc_pipeline::redshift::ddl::{
    Grantee, TableDdl, create_delete_ledger, create_table, create_views, grants, line_comment, mapped_field,
};
use cdc_pipeline::redshift::types::DdlFlavor;
use cdc_pipeline::{Caches, Change, DecodedBatch, MskEvent, Outcome, Pipeline, Rule};

/// Masked values are never printed by `cdc ddl`; any key gives the masked columns their type.
const DDL_KEY: &[u8] = b"ddl-only-key-never-masks-0123456789abcdef";

/// What `cdc ddl` prints, beyond the tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `--views`: a current-state view per table, and the analytics views of
    /// [`create_views`].
    pub views: bool,
    /// `--grants USER`: the GRANTs `USER` (e.g. `IAMR:<ingest role name>`) needs.
    pub grants: Option<String>,
}

/// The config the sample is typed with: `config` without its rules and its detection. A
/// sample record a rule would reject (a date after "now" under `not_future`, a state outside
/// `one_of`, a pattern it misses) still has columns the table needs, and a table that
/// depended on the clock or on the sample passing the rules would differ from run to run.
/// Masks stay: they decide the stored types.
fn without_rules(config: &Config) -> Config {
    let tables = config
        .tables
        .iter()
        .map(|table| {
            let mut table = TableConfig::clone(table);
            table.detect = None;
            for column in table.columns.values_mut() {
                column.rules = Default::default();
            }
            Arc::new(table)
        })
        .collect();
    Config { source: config.source.clone(), pipeline: config.pipeline.clone(), tables }
}

/// The pipeline that types the sample: `pipeline`'s config without rules ([`without_rules`]).
fn sampler(pipeline: &Pipeline) -> Pipeline {
    Pipeline::new(Arc::new(without_rules(&pipeline.config)), Some(DDL_KEY))
        .expect("a config without rules builds a pipeline with a full-length key")
}

/// What the sample says before any table is typed, from one pass of the rules-free transform:
/// `missing`, the columns the config names (`[tables.columns.*]`) that no record of their
/// table has, by target (`target: col, col`) — a misspelt name would guard nothing (a mask would
/// leave the real column unmasked, a rule check nothing) and a table made from it would hold
/// both columns; `unsampled`, the records that type nothing even without rules (a value that
/// is no Debezium event, a key that cannot be read, …), by coordinates and rule names, never a
/// value.
struct SampleReport {
    missing: Vec<String>,
    unsampled: Vec<String>,
}

fn sample_report(pipeline: &Pipeline, events: &[MskEvent<'_>]) -> SampleReport {
    let sampler = sampler(pipeline);
    let mut seen: BTreeMap<String, BTreeSet<Arc<str>>> = BTreeMap::new();
    let mut missing: BTreeMap<String, BTreeSet<Arc<str>>> = BTreeMap::new();
    let mut unsampled = Vec::new();
    for event in events {
        let batch = DecodedBatch::from_event(event);
        for (record, outcome) in batch.records().iter().zip(sampler.transform(&batch, &mut Caches::default(), 0)) {
            let change = match outcome {
                Outcome::Change(change) => change,
                // A record without a masked column is refused before it becomes a change.
                Outcome::Reject(reject) if reject.reasons.iter().any(|r| r.rule == Rule::UnknownColumn) => {
                    let target = reject.table.as_ref().map_or_else(String::new, |t| t.target.to_string());
                    let unknown = reject.reasons.iter().filter(|r| r.rule == Rule::UnknownColumn);
                    missing.entry(target).or_default().extend(unknown.filter_map(|r| r.column.clone()));
                    continue;
                }
                Outcome::Reject(reject) => {
                    let rules: BTreeSet<String> = reject.reasons.iter().map(|r| r.rule.to_string()).collect();
                    unsampled.push(format!(
                        "the record at {}-{}@{} is rejected ({}): its columns are not in this DDL",
                        record.topic,
                        record.partition,
                        record.offset,
                        Vec::from_iter(rules).join(", ")
                    ));
                    continue;
                }
                Outcome::Skip(_) => continue,
            };
            let columns = seen.entry(change.table.target.to_string()).or_default();
            columns.extend(change.columns.iter().map(|c| c.name.clone()));
            if let Some(schema) = &change.row_schema {
                let mapped = schema.fields.iter().filter_map(|f| mapped_field(&change.table.change_schema, f));
                columns.extend(mapped.map(|f| f.column));
            }
        }
    }
    for table in &pipeline.config.tables {
        let target = table.target.to_string();
        let Some(columns) = seen.get(&target) else { continue };
        let absent = table.columns.keys().filter(|c| !columns.contains(*c)).cloned();
        missing.entry(target).or_default().extend(absent);
    }
    let missing = missing
        .into_iter()
        .filter(|(_, columns)| !columns.is_empty())
        .map(|(table, columns)| {
            let columns: Vec<&str> = columns.iter().map(|c| &**c).collect();
            format!("{table}: {}", columns.join(", "))
        })
        .collect();
    SampleReport { missing, unsampled }
}

/// Every routed target with its table config and the `CREATE TABLE` typed from every change
/// the events route to it (rules left out: [`without_rules`]); configured targets no event
/// reaches too. In target order (`schema.table`).
pub fn tables_for_events(
    pipeline: &Pipeline,
    events: &[MskEvent<'_>],
    dialect: DdlFlavor,
) -> Vec<(Arc<TableConfig>, TableDdl)> {
    let sampler = sampler(pipeline);
    let batches: Vec<DecodedBatch<'_>> = events.iter().map(DecodedBatch::from_event).collect();
    // No rule is judged, so the clock plays no part: the same sample gives the same DDL.
    let outcomes: Vec<Vec<Outcome<'_>>> =
        batches.iter().map(|b| sampler.transform(b, &mut Caches::default(), 0)).collect();
    // The table configs are the caller's (with their rules), for the views.
    let configured = |target: &str| pipeline.config.tables.iter().find(|t| t.target.to_string() == target).cloned();
    let mut by_table: BTreeMap<String, (Arc<TableConfig>, Vec<&Change<'_>>)> = BTreeMap::new();
    for table in &pipeline.config.tables {
        by_table.entry(table.target.to_string()).or_insert_with(|| (table.clone(), Vec::new()));
    }
    for outcome in outcomes.iter().flatten() {
        if let Outcome::Change(change) = outcome {
            let target = change.table.target.to_string();
            by_table
                .entry(target.clone())
                .or_insert_with(|| (configured(&target).unwrap_or_else(|| change.table.clone()), Vec::new()))
                .1
                .push(change);
        }
    }
    by_table
        .into_values()
        .map(|(table, changes)| {
            let ddl = create_table(&table, &table.target, &changes, dialect);
            (table, ddl)
        })
        .collect()
}

/// `CREATE TABLE` for every configured target and every target the events' records route
/// to ([`tables_for_events`]), then the delete ledger of each schema they are in; in target
/// order (`schema.table`), ledgers last.
pub fn for_events(pipeline: &Pipeline, events: &[MskEvent<'_>], dialect: DdlFlavor) -> Vec<TableDdl> {
    let tables = tables_for_events(pipeline, events, dialect);
    let schemas: BTreeSet<String> = tables.iter().map(|(t, _)| t.target.schema.clone()).collect();
    let mut out: Vec<TableDdl> = tables.into_iter().map(|(_, ddl)| ddl).collect();
    out.extend(schemas.iter().map(|schema| TableDdl {
        sql: create_delete_ledger(schema, dialect),
        warnings: Vec::new(),
        columns: Vec::new(),
    }));
    out
}

/// The whole output of `cdc ddl`: tables, ledgers, then (on request) views and grants, each
/// statement with the warnings that concern it as `-- warning:` comments before it. The same
/// config and events give the same text.
pub fn script(
    pipeline: &Pipeline,
    events: &[MskEvent<'_>],
    dialect: DdlFlavor,
    options: &Options,
) -> Result<(String, Vec<String>), String> {
    let SampleReport { missing, unsampled } = sample_report(pipeline, events);
    if !missing.is_empty() {
        return Err(format!(
            "the config names columns no sample record of their table has (a misspelt name would guard nothing: a mask would leave the real column unmasked): {}",
            missing.join("; ")
        ));
    }
    let tables = tables_for_events(pipeline, events, dialect);
    if tables.is_empty() {
        return Err("no tables: give a config with [[tables]] or an event whose topics route somewhere".into());
    }
    let mut warnings = unsampled;
    let mut out = String::new();
    let mut statement = |sql: &str, notes: &[String], warnings: &mut Vec<String>| {
        for note in notes {
            out.push_str(&line_comment(&format!("warning: {note}")));
            out.push('\n');
            warnings.push(note.clone());
        }
        out.push_str(sql);
        out.push_str("\n\n");
    };
    for note in warnings.clone() {
        statement(&line_comment(&format!("warning: {note}")), &[], &mut Vec::new());
    }
    for (_, ddl) in &tables {
        statement(&ddl.sql, &ddl.warnings, &mut warnings);
    }
    let schemas: BTreeSet<String> = tables.iter().map(|(t, _)| t.target.schema.clone()).collect();
    for schema in &schemas {
        statement(&create_delete_ledger(schema, dialect), &[], &mut warnings);
    }
    if options.views {
        for (table, ddl) in &tables {
            let views = create_views(table, &table.target, &ddl.columns, dialect);
            for sql in &views.sql {
                statement(sql, &[], &mut warnings);
            }
            for note in &views.warnings {
                statement(&line_comment(&format!("warning: {note}")), &[], &mut Vec::new());
                warnings.push(note.clone());
            }
        }
    }
    if let Some(user) = &options.grants {
        let grantees: Vec<Grantee<'_>> = tables
            .iter()
            .map(|(table, _)| Grantee { target: &table.target, alters: table.drift == DriftPolicy::Add })
            .collect();
        statement(&grants(user, &grantees).join("\n"), &[], &mut warnings);
    }
    Ok((out, warnings))
}

/// `cdc ddl`: print the DDL for `config` (or the default routing) typed from `events`.
pub fn run(config: Option<&Path>, dialect: DdlFlavor, events: &[PathBuf], options: &Options) -> Result<(), String> {
    if let Some(user) = &options.grants
        && (user.trim().is_empty() || user.contains('\0'))
    {
        return Err("--grants: a database user name, e.g. IAMR:<the ingest function's role name>".into());
    }
    let config = crate::load_config(config)?;
    let pipeline = Pipeline::new(Arc::new(config), Some(DDL_KEY)).map_err(|e| e.to_string())?;
    let texts: Vec<Vec<u8>> = events
        .iter()
        .map(|path| std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display())))
        .collect::<Result<_, _>>()?;
    let events: Vec<MskEvent<'_>> = texts
        .iter()
        .zip(events)
        .map(|(text, path)| MskEvent::parse(text).map_err(|e| format!("{}: {e}", path.display())))
        .collect::<Result<_, _>>()?;
    let (script, warnings) = script(&pipeline, &events, dialect, options)?;
    // Whatever a type, view or record could not get right is said twice: on stderr for the
    // person running this, and in the DDL for whoever reads it later.
    for warning in &warnings {
        eprintln!("cdc ddl: warning: {}", line_comment(warning).trim_start_matches("-- "));
    }
    print!("{script}");
    Ok(())
}
