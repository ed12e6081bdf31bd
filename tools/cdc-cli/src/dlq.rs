//! `cdc dlq list` and `cdc dlq show`: what waits in the dead-letter bucket, told by
//! coordinates, stages, rules and attempts. A dead letter carries the raw record (its key and
//! value, base64): these commands read objects through [`dlq::summarize`], whose types have no
//! field for it, so no value can reach the output. Texts read from an object (topic, column
//! names, error classes, request ids) are printed only when they are plain names
//! ([`printable`]); anything else shows as `?`.
//!
//! The listing is the replay's ([`Store::listing`]): the same default prefix, the same
//! archive and quarantine prefixes passed over unless named.

use std::collections::BTreeMap;
use std::path::Path;

use cdc_pipeline::config::TableConfig;
use cdc_pipeline::dlq::{self, Coordinates, Store, Summary};
use cdc_pipeline::{Config, temporal, wiring};

use crate::run::{self, RunError};

/// Keys per listing request (S3's most).
const PAGE: i32 = 1000;

/// `text` when it is a plain name (letters, digits, `.`, `_`, `-`, `:`, `+`, `/`; at most 255
/// bytes): coordinates, rule and column names, ids, RFC 3339 times. Otherwise `?`: an object
/// someone wrote by hand must not print what it holds.
fn printable(text: &str) -> &str {
    let plain = !text.is_empty()
        && text.len() <= 255
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '+' | '/'));
    if plain { text } else { "?" }
}

/// Seconds since the epoch as RFC 3339 UTC.
fn rfc3339(seconds: i64) -> String {
    let mut text = String::new();
    temporal::write_timestamp(&mut text, seconds.saturating_mul(1_000_000), 'T');
    text.truncate(19);
    text.push('Z');
    text
}

/// The configuration (for the table a topic routes to) and the store, from the settings.
async fn setup(config: Option<&Path>) -> Result<(Config, Store), RunError> {
    let settings = run::settings(config, "dlq").map_err(RunError::Setup)?;
    let config = wiring::load_config(&settings.config).map_err(|e| RunError::Setup(e.to_string()))?;
    let (_, store) = wiring::clients(&wiring::sdk_config().await, &settings);
    Ok((config, store))
}

/// The table `topic` routes to, as the pipeline routes it; `(unrouted)` when none does.
fn table_of(config: &Config, topic: &str) -> String {
    let routed = match config.is_default_routing() {
        true => TableConfig::default_for_topic(topic).ok().map(|t| t.target.to_string()),
        false => config.table_for_topic(topic).map(|t| t.target.to_string()),
    };
    routed.unwrap_or_else(|| "(unrouted)".into())
}

/// Each reason as `column:rule`, or `rule` for the record.
fn reasons(line: &Coordinates<'_>) -> Vec<String> {
    line.reasons
        .iter()
        .map(|r| match &r.column {
            Some(column) => format!("{}:{}", printable(column), r.rule),
            None => r.rule.to_string(),
        })
        .collect()
}

/// `cdc dlq list [--prefix P] [--since TIME]`.
pub fn list(config: Option<&Path>, prefix: Option<&str>, since: Option<&str>) -> Result<(), RunError> {
    let since = since
        .map(|text| {
            temporal::parse_timestamp(text)
                .map(|micros| micros.div_euclid(1_000_000))
                .ok_or_else(|| RunError::Setup(format!("--since {text}: not an RFC 3339 time (2026-11-24T00:00:00Z)")))
        })
        .transpose()?;
    run::runtime().map_err(RunError::Setup)?.block_on(async {
        let (config, store) = setup(config).await?;
        let mut listing = store.listing(prefix, None, PAGE);
        let mut objects = 0;
        let mut records = 0;
        let mut unreadable = 0;
        // (table, stage, reason) → records; a record with two reasons counts under each.
        let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        let mut rows = Vec::new();
        while let Some((key, modified)) = listing.next(&store).await.map_err(|e| RunError::Handler(e.to_string()))? {
            if since.is_some_and(|s| modified < s) {
                continue;
            }
            objects += 1;
            let body = store.get(&store.bucket, &key).await.map_err(|e| RunError::Handler(e.to_string()))?;
            let line = match dlq::summarize(&body) {
                Err(e) => {
                    unreadable += 1;
                    format!("  {key}  modified {}  unreadable: {e}", rfc3339(modified))
                }
                Ok(Summary::DeadLetters(lines)) => {
                    records += lines.len();
                    for l in &lines {
                        let table = table_of(&config, printable(&l.topic));
                        let mut named = reasons(l);
                        if named.is_empty() {
                            named.push("(no reason)".into());
                        }
                        for reason in named {
                            *counts.entry((table.clone(), l.stage.as_str().into(), reason)).or_default() += 1;
                        }
                    }
                    let attempts = lines.iter().map(|l| l.attempts);
                    let (low, high) = (attempts.clone().min().unwrap_or(0), attempts.max().unwrap_or(0));
                    let attempts = if low == high { low.to_string() } else { format!("{low}-{high}") };
                    format!("  {key}  modified {}  records {}  attempts {attempts}", rfc3339(modified), lines.len())
                }
                Ok(Summary::OnFailure(summary)) => {
                    let batches: Vec<String> = summary
                        .batches
                        .iter()
                        .map(|(tp, first, last)| format!("{tp} offsets {first}-{last}"))
                        .collect();
                    for (tp, _, _) in &summary.batches {
                        let topic = tp.rsplit_once('-').map_or(tp.as_str(), |(topic, _)| topic);
                        let reason = format!("on-failure:{}", summary.condition);
                        *counts.entry((table_of(&config, topic), "(batch)".into(), reason)).or_default() += 1;
                    }
                    format!(
                        "  {key}  modified {}  on-failure record: {}, invoked {} times, {}{}",
                        rfc3339(modified),
                        summary.condition,
                        summary.invoke_count,
                        batches.join(", "),
                        if summary.has_payload { "" } else { " (no payload: re-read the offsets from the cluster)" }
                    )
                }
            };
            rows.push(line);
        }
        let since_text = since.map(|s| format!(" modified since {}", rfc3339(s))).unwrap_or_default();
        println!("s3://{}/{}{since_text}: {objects} objects, {records} records", store.bucket, listing.prefix());
        for row in rows {
            println!("{row}");
        }
        if !counts.is_empty() {
            println!("records by table, stage and reason:");
            for ((table, stage, reason), n) in counts {
                println!("  {table}  {stage}  {reason}  {n}");
            }
        }
        if unreadable > 0 {
            eprintln!("cdc: {unreadable} object(s) could not be read as dead letters (see `unreadable` above)");
        }
        Ok(())
    })
}

/// `cdc dlq show KEY`.
pub fn show(config: Option<&Path>, key: &str) -> Result<(), RunError> {
    run::runtime().map_err(RunError::Setup)?.block_on(async {
        let (config, store) = setup(config).await?;
        // The key as `dlq list` prints it, or the `s3://bucket/key` URL `dlq show` prints.
        let key = key.strip_prefix(&format!("s3://{}/", store.bucket)).unwrap_or(key);
        let body = store.get(&store.bucket, key).await.map_err(|e| match e.code.as_str() {
            // The key is the caller's input.
            "NoSuchKey" => RunError::Setup(format!("{key}: no such object in s3://{}", store.bucket)),
            _ => RunError::Handler(e.to_string()),
        })?;
        let summary = dlq::summarize(&body).map_err(|e| RunError::Handler(format!("{key}: {e}")))?;
        println!("s3://{}/{key}", store.bucket);
        match summary {
            Summary::DeadLetters(lines) => {
                for l in &lines {
                    println!(
                        "  {}-{} offset {}  table {}  timestamp {}  stage {}  reasons {}  error_class {}  attempts {}  \
                         failed_at {}  function {}  request_id {}  mask_key_version {}",
                        printable(&l.topic),
                        l.partition,
                        l.offset,
                        table_of(&config, printable(&l.topic)),
                        l.timestamp,
                        l.stage.as_str(),
                        reasons(l).join(","),
                        l.error_class.as_deref().map_or("-", printable),
                        l.attempts,
                        printable(&l.failed_at),
                        printable(&l.function),
                        printable(&l.request_id),
                        l.mask_key_version.as_deref().map_or("-", printable),
                    );
                }
            }
            Summary::OnFailure(summary) => {
                println!(
                    "  on-failure record: condition {}, invoked {} times, payload {}",
                    summary.condition,
                    summary.invoke_count,
                    if summary.has_payload { "present (replay takes it up)" } else { "absent" }
                );
                for (tp, first, last) in &summary.batches {
                    let topic = tp.rsplit_once('-').map_or(tp.as_str(), |(topic, _)| topic);
                    println!("  {tp} offsets {first}-{last}  table {}", table_of(&config, topic));
                }
            }
        }
        Ok(())
    })
}
