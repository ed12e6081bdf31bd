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
//!   payload-only envelope), with a null key;
//! - a whole MSK event (`{"records": {…}}`, as in `events/`): its records as they are,
//!   coordinates, timestamps and headers kept.
//!
//! With `--avro confluent|glue`, every key and value that is a JsonConverter document
//! (`{"schema","payload"}`) is written as Connect's `AvroConverter` writes it
//! (`cdc_pipeline::avro::encode`) in that registry's wire format; registry frames stay as they
//! are; the others (payload-only or broken JSON, bytes that are no JSON) stay as they are, each
//! named on stderr. The schemas go to
//! `--schemas DIR` as `confluent-<id>.avsc` / `glue-<uuid>.avsc` (what `cdc explain --schemas`
//! reads; Confluent ids count up from the highest in DIR, Glue version ids are derived from the
//! schema text), or with `--glue-registry NAME` into that AWS Glue registry (made when missing;
//! each schema named after its Avro record), whose version ids the frames then carry. With
//! `--registry-integration` they are written as the event source mapping's own registry
//! integration delivers them (`EventRecordFormat` `SOURCE`): the bare datum, and
//! `{"dataFormat": "AVRO", "schemaId": …}` in `keySchemaMetadata`/`valueSchemaMetadata`.
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
use cdc_pipeline::avro::frame::SchemaRef;
use cdc_pipeline::debezium::Entries;
use cdc_pipeline::event::{Header, KafkaRecord, SchemaMetadata};
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
    /// Write JsonConverter keys and values as Avro in this registry's wire format.
    #[arg(long, value_enum, requires = "schema_store")]
    pub avro: Option<AvroFormat>,
    /// With --avro: the directory the schemas are written to (made when missing).
    #[arg(long, group = "schema_store", requires = "avro")]
    pub schemas: Option<std::path::PathBuf>,
    /// With --avro glue: register the schemas in this AWS Glue Schema Registry (AWS_* settings,
    /// AWS_ENDPOINT_URL_GLUE for a local one) instead of writing them to a directory.
    #[arg(long, group = "schema_store", requires = "avro")]
    pub glue_registry: Option<String>,
    /// With --avro: write each Avro key and value as the event source mapping's own schema
    /// registry integration delivers it with `EventRecordFormat` `SOURCE`: the datum without
    /// the registry's header, and the schema id in `keySchemaMetadata`/`valueSchemaMetadata`.
    #[arg(long, requires = "avro")]
    pub registry_integration: bool,
    /// Input files, read in order; `-` for standard input.
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

/// The schema registry wire format of `--avro`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AvroFormat {
    /// Magic byte 0, a 4-byte schema id.
    Confluent,
    /// Header version 3, compression 0, the 16-byte schema version UUID.
    Glue,
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
    /// A key and value of an event input that are not base64 (an event made to be rejected):
    /// written back as they came.
    raw: [Option<String>; 2],
    /// The schema metadata of the key and value (`--registry-integration`, or as an event
    /// input carried it): data format and schema id.
    metadata: [Option<(String, String)>; 2],
    /// `file:line` of the document, for messages.
    at: String,
}

/// The document kinds, by their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Event,
    Kcat,
    KeyValue,
    Value,
}

fn kind(entries: &Entries<'_>) -> Kind {
    let keys: Vec<&str> = entries.0.iter().map(|(k, _)| k.as_ref()).collect();
    let has = |k: &str| keys.contains(&k);
    if has("records") && entries.get("records").is_some_and(|r| r.get().starts_with('{')) {
        Kind::Event
    } else if has("payload") && !has("schema") {
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
        raw: [None, None],
        metadata: [None, None],
        at,
    })
}

fn document_record(entries: &Entries<'_>, kind: Kind, raw: &RawValue, args: &Args, at: String) -> Result<Made, String> {
    let topic = args.topic.clone().ok_or_else(|| {
        format!("{at}: a key/value or value document names no topic: give --topic (kcat -J lines carry theirs)")
    })?;
    let (key, value) = match kind {
        Kind::KeyValue => (json_bytes(entries.get("key")), json_bytes(entries.get("value"))),
        Kind::Value | Kind::Kcat | Kind::Event => (None, json_bytes(Some(raw))),
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
        raw: [None, None],
        metadata: [None, None],
        at,
    })
}

/// The records of a whole MSK event, as they are.
fn event_records(raw: &RawValue, at: &str, out: &mut Vec<Made>) -> Result<(), String> {
    let event = MskEvent::parse(raw.get().as_bytes()).map_err(|e| format!("{at}: not an MSK event: {e}"))?;
    for record in event.records_in_order() {
        let bytes = |text: &Option<Cow<'_, str>>| text.as_deref().and_then(|t| BASE64.decode(t).ok());
        let raw =
            |text: &Option<Cow<'_, str>>| text.as_deref().filter(|t| BASE64.decode(t).is_err()).map(str::to_string);
        out.push(Made {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: Some(record.offset),
            timestamp: record.timestamp,
            timestamp_type: match record.timestamp_type.as_deref() {
                Some("CREATE_TIME") => Some("CREATE_TIME"),
                Some("LOG_APPEND_TIME") => Some("LOG_APPEND_TIME"),
                _ => None,
            },
            key: bytes(&record.key),
            value: bytes(&record.value),
            headers: record.headers.iter().map(|h| (h.name.to_string(), h.value.clone())).collect(),
            raw: [raw(&record.key), raw(&record.value)],
            metadata: [&record.key_schema_metadata, &record.value_schema_metadata].map(|m| {
                m.as_ref().map(|m| {
                    (
                        m.data_format.as_deref().unwrap_or("").to_string(),
                        m.schema_id.as_deref().unwrap_or("").to_string(),
                    )
                })
            }),
            at: format!("{at} ({}-{}@{})", record.topic, record.partition, record.offset),
        });
    }
    Ok(())
}

/// Where `--avro` puts the schemas, and the ids they get.
enum SchemaStore {
    Directory {
        dir: std::path::PathBuf,
        ids: HashMap<(bool, String), SchemaRef>,
        next_confluent: u64,
    },
    Glue {
        registry: String,
        ids: HashMap<String, SchemaRef>,
        client: aws_sdk_glue::Client,
        runtime: tokio::runtime::Runtime,
    },
}

impl SchemaStore {
    fn open(args: &Args) -> Result<SchemaStore, String> {
        if let Some(registry) = &args.glue_registry {
            if args.avro != Some(AvroFormat::Glue) {
                return Err("--glue-registry goes with --avro glue".into());
            }
            if registry.is_empty()
                || registry.len() > 255
                || !registry.chars().all(|c| c.is_ascii_alphanumeric() || "-_$#.".contains(c))
            {
                return Err("--glue-registry must be a Glue registry name: 1-255 letters, digits and -_$#.".into());
            }
            let runtime = crate::run::runtime()?;
            let sdk = runtime.block_on(cdc_pipeline::wiring::sdk_config());
            return Ok(SchemaStore::Glue {
                registry: registry.clone(),
                ids: HashMap::new(),
                client: aws_sdk_glue::Client::new(&sdk),
                runtime,
            });
        }
        let dir = args.schemas.clone().ok_or("--avro needs --schemas DIR or --glue-registry NAME")?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: cannot make: {}", dir.display(), e.kind()))?;
        // What DIR already holds keeps its id.
        let mut ids = HashMap::new();
        let mut next_confluent: u64 = 1;
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: cannot read: {}", dir.display(), e.kind()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(schema) = path.file_name().and_then(|n| n.to_str()).and_then(schema_of_file_name) else {
                continue;
            };
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: cannot read: {}", path.display(), e.kind()))?;
            if let SchemaRef::Confluent(id) = schema {
                next_confluent = next_confluent.max(u64::from(id) + 1);
            }
            ids.insert((matches!(schema, SchemaRef::Glue(_)), text), schema);
        }
        Ok(SchemaStore::Directory { dir, ids, next_confluent })
    }

    /// The id of `encoded`'s schema in `format`, stored on first use.
    fn id(&mut self, format: AvroFormat, schema: &str) -> Result<SchemaRef, String> {
        match self {
            SchemaStore::Directory { dir, ids, next_confluent } => {
                let slot = (format == AvroFormat::Glue, schema.to_string());
                if let Some(id) = ids.get(&slot) {
                    return Ok(*id);
                }
                let id = match format {
                    AvroFormat::Confluent => {
                        // Confluent's ids are Java ints.
                        let id = u32::try_from(*next_confluent).ok().filter(|id| *id <= i32::MAX as u32).ok_or_else(
                            || format!("{}: no Confluent schema id is left after the highest there", dir.display()),
                        )?;
                        *next_confluent += 1;
                        SchemaRef::Confluent(id)
                    }
                    AvroFormat::Glue => SchemaRef::Glue(derived_uuid(schema)),
                };
                let path = dir.join(file_name(id));
                // Never over another schema: a file of this name with other text is an error.
                if let Ok(existing) = std::fs::read_to_string(&path)
                    && existing != schema
                {
                    return Err(format!("{}: holds another schema under this id", path.display()));
                }
                std::fs::write(&path, schema).map_err(|e| format!("{}: cannot write: {}", path.display(), e.kind()))?;
                ids.insert(slot, id);
                Ok(id)
            }
            SchemaStore::Glue { registry, ids, client, runtime } => {
                if let Some(id) = ids.get(schema) {
                    return Ok(*id);
                }
                let id = runtime.block_on(glue_register(client, registry, schema))?;
                ids.insert(schema.to_string(), id);
                Ok(id)
            }
        }
    }
}

/// `confluent-<id>.avsc`, `glue-<uuid>.avsc`: the files `cdc explain --schemas` reads.
pub fn file_name(schema: SchemaRef) -> String {
    match schema {
        SchemaRef::Confluent(id) => format!("confluent-{id}.avsc"),
        SchemaRef::Glue(_) => format!("{}.avsc", schema.to_string().replace(':', "-")),
    }
}

/// The schema a file name names (the inverse of [`file_name`]).
pub fn schema_of_file_name(name: &str) -> Option<SchemaRef> {
    let name = name.strip_suffix(".avsc")?;
    match (name.strip_prefix("confluent-"), name.strip_prefix("glue-")) {
        (Some(id), _) => SchemaRef::from_id(id).filter(|s| matches!(s, SchemaRef::Confluent(_))),
        (_, Some(id)) => SchemaRef::from_id(id).filter(|s| matches!(s, SchemaRef::Glue(_))),
        _ => None,
    }
}

/// A version-8 (custom) UUID from the schema text's SHA-256: the same schema, the same id.
fn derived_uuid(schema: &str) -> [u8; 16] {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(schema.as_bytes());
    let mut uuid: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    uuid[6] = (uuid[6] & 0x0f) | 0x80;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// Register `schema` in the Glue registry `registry` (made when missing) under its Avro
/// record's full name, and give its version id: the existing version when Glue already has
/// this definition.
async fn glue_register(client: &aws_sdk_glue::Client, registry: &str, schema: &str) -> Result<SchemaRef, String> {
    use aws_sdk_glue::error::ProvideErrorMetadata;
    use aws_sdk_glue::types::{Compatibility, DataFormat, RegistryId, SchemaId};
    let code = |e: &dyn ProvideErrorMetadata| e.code().unwrap_or("request failed").to_string();
    let parsed: serde_json::Value =
        serde_json::from_str(schema).map_err(|_| "an Avro schema that is no JSON".to_string())?;
    let name = match (parsed.get("namespace").and_then(|n| n.as_str()), parsed.get("name").and_then(|n| n.as_str())) {
        (Some(ns), Some(n)) => format!("{ns}.{n}"),
        (None, Some(n)) => n.to_string(),
        _ => return Err("an Avro schema without a record name cannot be registered by name".into()),
    };
    let uuid = |id: Option<&str>| -> Result<SchemaRef, String> {
        let id = id.ok_or("Glue gave no SchemaVersionId")?;
        SchemaRef::from_id(id)
            .filter(|s| matches!(s, SchemaRef::Glue(_)))
            .ok_or_else(|| "Glue gave a SchemaVersionId that is no UUID".to_string())
    };
    if let Err(e) =
        client.get_registry().registry_id(RegistryId::builder().registry_name(registry).build()).send().await
    {
        if e.code() != Some("EntityNotFoundException") {
            return Err(format!("Glue GetRegistry {registry}: {}", code(&e)));
        }
        client
            .create_registry()
            .registry_name(registry)
            .send()
            .await
            .map_err(|e| format!("Glue CreateRegistry {registry}: {}", code(&e)))?;
    }
    let id = SchemaId::builder().registry_name(registry).schema_name(&name).build();
    match client.get_schema_by_definition().schema_id(id.clone()).schema_definition(schema).send().await {
        Ok(found) => return uuid(found.schema_version_id()),
        Err(e) if e.code() == Some("EntityNotFoundException") => {}
        Err(e) => return Err(format!("Glue GetSchemaByDefinition {name}: {}", code(&e))),
    }
    match client.get_schema().schema_id(id.clone()).send().await {
        Ok(_) => {
            let version = client.register_schema_version().schema_id(id).schema_definition(schema).send().await;
            uuid(version.map_err(|e| format!("Glue RegisterSchemaVersion {name}: {}", code(&e)))?.schema_version_id())
        }
        Err(e) if e.code() == Some("EntityNotFoundException") => {
            let created = client
                .create_schema()
                .registry_id(RegistryId::builder().registry_name(registry).build())
                .schema_name(&name)
                .data_format(DataFormat::Avro)
                .compatibility(Compatibility::None)
                .schema_definition(schema)
                .send()
                .await
                .map_err(|e| format!("Glue CreateSchema {name}: {}", code(&e)))?;
            uuid(created.schema_version_id())
        }
        Err(e) => Err(format!("Glue GetSchema {name}: {}", code(&e))),
    }
}

/// `--avro`: every JsonConverter key and value as a registry frame; the others named on
/// stderr and left.
fn write_avro(args: &Args, format: AvroFormat, made: &mut [Made]) -> Result<(), String> {
    let mut store = SchemaStore::open(args)?;
    for record in made.iter_mut() {
        for (field, raw) in ["key", "value"].iter().zip(&record.raw) {
            if raw.is_some() {
                eprintln!("cdc make-event: {}: {field} left as it was: not base64", record.at);
            }
        }
        for (slot, (field, bytes)) in [("key", &mut record.key), ("value", &mut record.value)].into_iter().enumerate() {
            // A datum the registry integration delivered: kept with its metadata.
            if record.metadata[slot].is_some() {
                continue;
            }
            // Already a registry frame (an Avro event given again): kept, nothing to say.
            if bytes.as_deref().is_some_and(cdc_pipeline::avro::frame::is_frame) {
                continue;
            }
            let Some(text) = bytes.as_deref().and_then(|b| std::str::from_utf8(b).ok()) else {
                if bytes.is_some() {
                    eprintln!("cdc make-event: {}: {field} left as it was: not UTF-8 JSON text", record.at);
                }
                continue;
            };
            match cdc_pipeline::avro::encode::from_connect_json(text) {
                Ok(encoded) => {
                    let id = store.id(format, &encoded.schema)?;
                    if args.registry_integration {
                        // The schema id as the mapping writes it: Confluent's number, Glue's UUID.
                        let text = id.to_string();
                        let schema_id = text.split_once(':').map_or(text.as_str(), |(_, id)| id).to_string();
                        record.metadata[slot] = Some(("AVRO".to_string(), schema_id));
                        *bytes = Some(encoded.datum);
                    } else {
                        *bytes = Some(cdc_pipeline::avro::frame::write(id, &encoded.datum));
                    }
                }
                Err(e) => eprintln!("cdc make-event: {}: {field} left as it was: {e}", record.at),
            }
        }
    }
    Ok(())
}

/// `{"dataFormat", "schemaId"}` of a record.
fn metadata((format, id): &(String, String)) -> SchemaMetadata<'_> {
    SchemaMetadata { data_format: Some(Cow::Borrowed(format)), schema_id: Some(Cow::Borrowed(id)) }
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
            Kind::Event => {
                event_records(raw, &at, out)?;
                continue;
            }
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
    if let Some(format) = args.avro {
        write_avro(args, format, &mut made)?;
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
                key: r.raw[0].clone().map(Cow::Owned).or_else(|| r.key.as_ref().map(|k| Cow::Owned(BASE64.encode(k)))),
                value: r.raw[1]
                    .clone()
                    .map(Cow::Owned)
                    .or_else(|| r.value.as_ref().map(|v| Cow::Owned(BASE64.encode(v)))),
                headers: r
                    .headers
                    .iter()
                    .map(|(name, value)| Header { name: Cow::Owned(name.clone()), value: value.clone() })
                    .collect(),
                key_schema_metadata: r.metadata[0].as_ref().map(metadata),
                value_schema_metadata: r.metadata[1].as_ref().map(metadata),
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
