//! `cdc make-event`: messages as an operator sees them → one MSK event file, for `cdc explain`
//! and `cdc ingest`.
//!
//! Inputs are JSON documents, one after another (JSON Lines, or pretty-printed), each one of:
//! - a `kcat -J` line: `{"topic", "partition", "offset", "tstype", "ts", "broker", "headers",
//!   "key", "payload"}`, key and payload being the message's bytes as a JSON string, or null
//!   (kcat's `fmt_msg_output_json`, json.c; headers as `[name, value, …]` or, with kcat's JSON
//!   header map, `{name: [value, …]}`);
//! - a key/value document `{"key": …, "value": …}`: JSON values, written as the JsonConverter
//!   would write them (their JSON text, compact); a null or absent value is a tombstone;
//! - any other JSON object: a Debezium value document (the whole `{"schema","payload"}` or a
//!   payload-only envelope), with a null key.
//!
//! The event has Lambda's shape ([Lambda: MSK event
//! example](https://docs.aws.amazon.com/lambda/latest/dg/with-msk.html), as in
//! `events/aws-msk-sample.json`): base64 keys and values, a tombstone's value `null` as in the
//! samples, headers as signed bytes. Records are grouped by topic-partition and ordered by
//! offset; a document without an offset takes the next one of its partition, from 0. The same
//! input always gives the same file. Errors name the file, the line and what is wrong, never
//! the content.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cdc_pipeline::MskEvent;
use cdc_pipeline::debezium::Entries;
use cdc_pipeline::event::{Header, KafkaRecord};
use serde_json::value::RawValue;

/// The event's cluster, informational only (the pipeline reads neither): recognisably made.
const EVENT_SOURCE_ARN: &str =
    "arn:aws:kafka:us-east-1:123456789012:cluster/cdc-make-event/00000000-0000-0000-0000-000000000000-1";
const BOOTSTRAP_SERVERS: &str = "b-1.cdc-make-event.local:9098";

/// Where the documents come from and what they lack (README "`cdc make-event`").
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Topic of documents that do not name one (kcat lines carry theirs).
    #[arg(long)]
    pub topic: Option<String>,
    /// Partition of documents that do not name one.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: i32,
    /// Input files, read in order; `-` for standard input.
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

/// One record, owned, before the event is assembled.
struct Made {
    topic: String,
    partition: i64,
    offset: Option<i64>,
    timestamp: i64,
    timestamp_type: Option<&'static str>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    /// `file:line` of the document, for messages.
    at: String,
}

/// The document kinds, by their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kcat,
    KeyValue,
    Value,
}

fn kind(entries: &Entries<'_>) -> Kind {
    let keys: Vec<&str> = entries.0.iter().map(|(k, _)| k.as_ref()).collect();
    let has = |k: &str| keys.contains(&k);
    if has("payload") && !has("schema") {
        Kind::Kcat
    } else if !keys.is_empty() && keys.iter().all(|k| matches!(*k, "key" | "value")) {
        Kind::KeyValue
    } else {
        Kind::Value
    }
}

/// JSON text without the whitespace between tokens, as the JsonConverter writes it; strings
/// (and so every byte of a value) are kept exactly.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// A JSON value as message bytes (`null` → no bytes: a null key or a tombstone).
fn json_bytes(raw: Option<&RawValue>) -> Option<Vec<u8>> {
    raw.filter(|r| r.get() != "null").map(|r| compact(r.get()).into_bytes())
}

/// A kcat key or payload: the message's bytes as a JSON string, or null.
fn kcat_bytes(raw: Option<&RawValue>, field: &str, at: &str) -> Result<Option<Vec<u8>>, String> {
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(text) if text.starts_with('"') => serde_json::from_str::<String>(text)
            .map(|s| Some(s.into_bytes()))
            .map_err(|_| format!("{at}: `{field}` is not a valid JSON string")),
        Some(_) => Err(format!(
            "{at}: `{field}` is JSON, not the message's text: kcat decoded it (-s avro); run kcat -J \
             without -s, so that it prints the bytes the pipeline receives"
        )),
    }
}

fn int_field(entries: &Entries<'_>, field: &str, at: &str) -> Result<Option<i64>, String> {
    match entries.get(field).map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| format!("{at}: `{field}` must be an integer")),
    }
}

/// kcat's headers: `["name", "value" | null, …]`, or with its JSON header map
/// `{"name": ["value" | null, …]}`.
fn kcat_headers(raw: Option<&RawValue>, at: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let value = |v: &serde_json::Value, n: usize| match v {
        serde_json::Value::String(s) => Ok(s.clone().into_bytes()),
        serde_json::Value::Null => {
            Err(format!("{at}: header {n} has a null value, which an MSK event's headers (byte arrays) cannot carry"))
        }
        _ => Err(format!("{at}: header {n}'s value must be a string")),
    };
    match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(serde_json::Value::Null) => Ok(Vec::new()),
        Ok(serde_json::Value::Array(items)) => {
            if items.len() % 2 != 0 {
                return Err(format!("{at}: `headers` must alternate names and values (an even count)"));
            }
            items
                .chunks(2)
                .enumerate()
                .map(|(n, pair)| match &pair[0] {
                    serde_json::Value::String(name) => Ok((name.clone(), value(&pair[1], n)?)),
                    _ => Err(format!("{at}: header {n}'s name must be a string")),
                })
                .collect()
        }
        Ok(serde_json::Value::Object(map)) => {
            let mut out = Vec::new();
            for (name, values) in map {
                let serde_json::Value::Array(values) = values else {
                    return Err(format!("{at}: `headers` as a map takes a list of values per name"));
                };
                for v in &values {
                    out.push((name.clone(), value(v, out.len())?));
                }
            }
            Ok(out)
        }
        _ => Err(format!("{at}: `headers` must be a list (or kcat's header map)")),
    }
}

fn kcat_record(entries: &Entries<'_>, args: &Args, at: String) -> Result<Made, String> {
    for field in ["key_error", "payload_error"] {
        if entries.get(field).is_some() {
            return Err(format!("{at}: kcat could not deserialize this message (`{field}`): run kcat -J without -s"));
        }
    }
    let topic = match entries.get("topic").map(RawValue::get) {
        Some(text) if text != "null" => serde_json::from_str::<String>(text)
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("{at}: `topic` must be a non-empty string"))?,
        _ => args.topic.clone().ok_or_else(|| format!("{at}: no `topic`: give --topic"))?,
    };
    let partition = int_field(entries, "partition", &at)?.unwrap_or(i64::from(args.partition));
    let timestamp_type = match entries.get("tstype").map(RawValue::get) {
        Some("\"create\"") => Some("CREATE_TIME"),
        Some("\"logappend\"") => Some("LOG_APPEND_TIME"),
        None | Some("null") | Some("\"unknown\"") => None,
        Some(_) => return Err(format!("{at}: `tstype` must be create, logappend or unknown")),
    };
    Ok(Made {
        topic,
        partition,
        offset: int_field(entries, "offset", &at)?,
        // kcat leaves `ts` out when the broker has no timestamp: 0, as for documents.
        timestamp: int_field(entries, "ts", &at)?.unwrap_or(0),
        timestamp_type,
        key: kcat_bytes(entries.get("key"), "key", &at)?,
        value: kcat_bytes(entries.get("payload"), "payload", &at)?,
        headers: kcat_headers(entries.get("headers"), &at)?,
        at,
    })
}

fn document_record(entries: &Entries<'_>, kind: Kind, raw: &RawValue, args: &Args, at: String) -> Result<Made, String> {
    let topic = args.topic.clone().ok_or_else(|| {
        format!("{at}: a key/value or value document names no topic: give --topic (kcat -J lines carry theirs)")
    })?;
    let (key, value) = match kind {
        Kind::KeyValue => (json_bytes(entries.get("key")), json_bytes(entries.get("value"))),
        Kind::Value | Kind::Kcat => (None, json_bytes(Some(raw))),
    };
    Ok(Made {
        topic,
        partition: i64::from(args.partition),
        offset: None,
        timestamp: 0,
        timestamp_type: Some("CREATE_TIME"),
        key,
        value,
        headers: Vec::new(),
        at,
    })
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The records of one input's text, `name` naming it in messages.
fn read_documents(name: &str, text: &str, args: &Args, out: &mut Vec<Made>) -> Result<(), String> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    loop {
        let before = stream.byte_offset();
        let start = before + text[before..].len() - text[before..].trim_start().len();
        let at = format!("{name}:{}", line_of(text, start));
        let raw = match stream.next() {
            None => return Ok(()),
            Some(Ok(raw)) => raw,
            // serde_json's message can quote the input: only its position is kept.
            Some(Err(e)) => return Err(format!("{name}:{}: not valid JSON (column {})", e.line(), e.column())),
        };
        let entries = match Entries::parse(raw.get()) {
            Ok(entries) => entries,
            Err(_) => {
                return Err(format!(
                    "{at}: expected a JSON object: a kcat -J line, a {{\"key\", \"value\"}} document or a \
                     Debezium value"
                ));
            }
        };
        let made = match kind(&entries) {
            Kind::Kcat => kcat_record(&entries, args, at)?,
            kind => document_record(&entries, kind, raw, args, at)?,
        };
        if made.partition < 0 || made.partition > i64::from(i32::MAX) {
            return Err(format!("{}: `partition` must be 0 … 2147483647", made.at));
        }
        if made.offset.is_some_and(|o| o < 0) {
            return Err(format!("{}: `offset` must not be negative", made.at));
        }
        out.push(made);
    }
}

/// The event for `args`' inputs, as pretty JSON text.
///
/// Errors: an input that cannot be read, or a document that is not one of the three kinds or
/// lacks what its record needs (`file:line: …`); two records at one topic, partition and offset.
pub fn build(args: &Args) -> Result<String, String> {
    let mut made = Vec::new();
    for input in &args.inputs {
        let (name, text) = if input == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("<stdin>: cannot read: {}", e.kind()))?;
            ("<stdin>".to_string(), text)
        } else {
            let bytes = std::fs::read(input).map_err(|e| format!("{input}: cannot read: {}", e.kind()))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                let offset = e.utf8_error().valid_up_to();
                let line = e.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
                // kcat -J writes a binary key or payload (a schema-registry frame: Avro,
                // Protobuf) as its raw bytes inside the JSON string.
                format!(
                    "{input}:{line}: not UTF-8 text: kcat prints binary keys and payloads (a schema registry's \
                     Avro or Protobuf) as raw bytes, which make-event cannot read back; the pipeline rejects such \
                     records with rule converter_binary"
                )
            })?;
            (input.clone(), text)
        };
        read_documents(&name, &text, args, &mut made)?;
    }
    if made.is_empty() {
        return Err("no documents in the input".into());
    }
    // Offsets: given ones stay; the others continue their partition from the highest so far
    // (from 0), in input order.
    let mut next: HashMap<(String, i64), i64> = HashMap::new();
    let mut taken: HashMap<(String, i64, i64), String> = HashMap::new();
    for record in &mut made {
        let slot = (record.topic.clone(), record.partition);
        let offset = match record.offset {
            Some(offset) => offset,
            None => *next.get(&slot).unwrap_or(&0),
        };
        if let Some(first) = taken.insert((slot.0.clone(), slot.1, offset), record.at.clone()) {
            return Err(format!("{}: offset {offset} of its topic-partition is already {first}'s", record.at));
        }
        record.offset = Some(offset);
        let after = offset.checked_add(1).ok_or_else(|| format!("{}: `offset` is too large", record.at))?;
        let entry = next.entry(slot).or_insert(0);
        *entry = (*entry).max(after);
    }
    let mut groups: BTreeMap<(String, i64), Vec<&Made>> = BTreeMap::new();
    for record in &made {
        groups.entry((record.topic.clone(), record.partition)).or_default().push(record);
    }
    let mut records = Vec::with_capacity(groups.len());
    for ((topic, partition), mut group) in groups {
        group.sort_by_key(|r| r.offset);
        let group = group
            .into_iter()
            .map(|r| KafkaRecord {
                topic: Cow::Owned(r.topic.clone()),
                partition: r.partition,
                offset: r.offset.unwrap_or(0),
                timestamp: r.timestamp,
                timestamp_type: r.timestamp_type.map(Cow::Borrowed),
                key: r.key.as_ref().map(|k| Cow::Owned(BASE64.encode(k))),
                value: r.value.as_ref().map(|v| Cow::Owned(BASE64.encode(v))),
                headers: r
                    .headers
                    .iter()
                    .map(|(name, value)| Header { name: Cow::Owned(name.clone()), value: value.clone() })
                    .collect(),
            })
            .collect();
        records.push((Cow::Owned(format!("{topic}-{partition}")), group));
    }
    let event = MskEvent {
        event_source: Some(Cow::Borrowed("aws:kafka")),
        event_source_arn: Some(Cow::Borrowed(EVENT_SOURCE_ARN)),
        bootstrap_servers: Some(Cow::Borrowed(BOOTSTRAP_SERVERS)),
        records,
    };
    let mut text = serde_json::to_string_pretty(&event).map_err(|e| format!("cannot write the event: {e}"))?;
    text.push('\n');
    Ok(text)
}

/// Run the command: the event on stdout.
pub fn run(args: &Args) -> Result<(), String> {
    print!("{}", build(args)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_strings_and_drops_the_rest() {
        assert_eq!(compact("{ \"a b\" : [1, 2],\n \"c\":\"x \\\" y\" }"), r#"{"a b":[1,2],"c":"x \" y"}"#);
    }
}
