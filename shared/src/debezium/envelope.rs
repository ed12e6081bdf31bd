//! The Debezium change-event envelope, with or without the JsonConverter's schema wrapper.
//!
//! Owns the envelope's shape: `op`, `before`/`after` (kept as raw JSON), the `source` fields
//! that order changes, the control messages (schema change, transaction marker, heartbeat),
//! and Kafka keys ([`decode_key`]). It must not read row values: that is
//! [`convert`](super::convert)'s, against the row's schema. Field meanings follow each
//! connector's "Data change events" section (Debezium's
//! [SQL Server](https://debezium.io/documentation/reference/stable/connectors/sqlserver.html),
//! [PostgreSQL](https://debezium.io/documentation/reference/stable/connectors/postgresql.html),
//! [MySQL](https://debezium.io/documentation/reference/stable/connectors/mysql.html) docs).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::schema::{MessageSchema, SchemaCache};
use crate::event::{CowStr, borrowed_opt_str};
use crate::rule::Rule;

/// An envelope operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `r`: snapshot read.
    Read,
    /// `c`
    Create,
    /// `u`
    Update,
    /// `d`
    Delete,
    /// `t`: truncate (PostgreSQL, MySQL; never SQL Server).
    Truncate,
    /// `m`: logical decoding message (PostgreSQL).
    Message,
}

impl Op {
    /// The op for its one-letter `op` code (`r`, `c`, `u`, `d`, `t`, `m`; lowercase only), or
    /// `None` for any other text.
    pub fn parse(code: &str) -> Option<Op> {
        Some(match code {
            "r" => Op::Read,
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "t" => Op::Truncate,
            "m" => Op::Message,
            _ => return None,
        })
    }

    /// The one-letter code Debezium writes, as `_cdc_op` stores it and `cdc explain` shows it.
    pub fn code(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
            Op::Message => "m",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The `source` block fields that order changes. Lenient about types that vary across
/// Debezium versions (`event_serial_no` as number or string, `snapshot` as bool or string).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Source<'a> {
    /// The connector's name as Debezium writes it, lowercase: `sqlserver`, `postgresql`,
    /// `mysql`, `mariadb`… It picks the position rule ([`position`](super::position)).
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub connector: Option<Cow<'a, str>>,
    /// When the change was committed in the source database, ms since the Unix epoch (for a
    /// snapshot read: when the row was read). Stored as `_cdc_source_ts`.
    #[serde(default, deserialize_with = "crate::lenient::opt_i64")]
    pub ts_ms: Option<i64>,
    // SQL Server
    /// SQL Server: the LSN of the transaction's commit, `xxxxxxxx:xxxxxxxx:xxxx` (hex).
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub commit_lsn: Option<Cow<'a, str>>,
    /// SQL Server: the LSN of the change itself, same form; null in snapshots.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub change_lsn: Option<Cow<'a, str>>,
    /// SQL Server: tells apart the events of one change (1 and 2 for a key change's delete and
    /// create; 2 for an update's new image).
    #[serde(default, deserialize_with = "crate::lenient::opt_i64")]
    pub event_serial_no: Option<i64>,
    // PostgreSQL
    /// PostgreSQL: the change's log sequence number, as an integer (byte position in the WAL).
    #[serde(default, deserialize_with = "crate::lenient::opt_i64")]
    pub lsn: Option<i64>,
    /// `["<last committed LSN>","<LSN>"]` as JSON text (Debezium writes it as a string; an
    /// array is taken as its text too).
    #[serde(default, borrow, deserialize_with = "opt_json_text")]
    pub sequence: Option<Cow<'a, str>>,
    /// PostgreSQL: the id of the change's transaction (`txId`).
    #[serde(default, rename = "txId", deserialize_with = "crate::lenient::opt_i64")]
    pub tx_id: Option<i64>,
    // MySQL / MariaDB
    /// MySQL, MariaDB: the id of the server where the change originated (from the binlog event
    /// header; not the server the connector reads).
    #[serde(default, deserialize_with = "crate::lenient::opt_i64")]
    pub server_id: Option<i64>,
    /// MySQL, MariaDB: the binlog file name, e.g. `mysql-bin.000003`.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub file: Option<Cow<'a, str>>,
    /// MySQL, MariaDB: the event's position in that binlog file, in bytes.
    #[serde(default, deserialize_with = "crate::lenient::opt_i64")]
    pub pos: Option<i64>,
    /// MySQL, MariaDB: the row's 0-based index within its binlog event.
    #[serde(default, deserialize_with = "crate::lenient::opt_i64")]
    pub row: Option<i64>,
    /// `server_uuid:transaction_id` (MySQL, `uuid:tag:transaction_id` with tagged GTIDs) or
    /// `domain-server-seq` (MariaDB); null without GTIDs and in snapshots.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub gtid: Option<Cow<'a, str>>,
}

/// A decoded change event. Row images stay raw until the row is decoded against its schema.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// What the change did (`r` for a snapshot read of an existing row).
    pub op: Op,
    /// The row image before the change, as raw JSON (`None` when null or absent: creates,
    /// reads, and updates whose source logs no old image).
    pub before: Option<&'a RawValue>,
    /// The row image after the change, as raw JSON (`None` when null or absent: deletes).
    pub after: Option<&'a RawValue>,
    /// The `source` block (`None` when null or absent).
    pub source: Option<Source<'a>>,
    /// When Debezium processed the event, ms since the Unix epoch (not the commit time: that
    /// is [`Source::ts_ms`]).
    pub ts_ms: Option<i64>,
    /// The message's Connect schema, when the JsonConverter wrote one (`schemas.enable`).
    pub schema: Option<Arc<MessageSchema>>,
}

/// What a data-topic message turned out to be.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per record and unpacked at once; a Box would cost an allocation"
)]
pub enum Message<'a> {
    /// A row change (any `op`, including `t` and `m`, which the transform skips or rejects).
    Change(Envelope<'a>),
    /// A schema-change event (`tableChanges`/`ddl`) on the data path.
    SchemaChange,
    /// A transaction BEGIN/END marker.
    Transaction,
    /// A heartbeat (`{"ts_ms": …}` only).
    Heartbeat,
}

/// Why a message could not be decoded. Rule names for reject reasons; never the content.
///
/// Three variants recognise what a Debezium connector writes under converter settings this
/// pipeline does not read, so that the reject names the setting to change
/// ([`Rule::remedy`]) instead of a generic `json`/`not_an_envelope`: MSK Connect's default
/// worker configuration is `StringConverter` for keys and values ([MSK Connect: Default worker
/// configuration](https://docs.aws.amazon.com/msk/latest/developerguide/msk-connect-workers.html)),
/// and the `unwrap` transform is the usual first step of a JDBC sink's tutorial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not UTF-8 JSON.
    #[error("the value is not UTF-8 JSON")]
    Json,
    /// JSON, but not an object with Debezium's envelope fields (an array, a primitive, or an
    /// object with `before`/`after`/`source` but no `op`).
    #[error("the value is JSON but no Debezium change event (no `op`)")]
    NotAnEnvelope,
    /// The `schema` half does not parse as a Connect schema.
    #[error("the value's `schema` is not a Kafka Connect schema")]
    Schema,
    /// An `op` other than r, c, u, d, t, m.
    #[error("the value's `op` is none of r, c, u, d, t, m")]
    UnknownOp,
    /// A `source` block with fields of the wrong type.
    #[error("the value's `source` block has a field of the wrong type")]
    Source,
    /// Kafka Connect's `StringConverter` wrote the value: `Struct.toString()` of the envelope,
    /// `Struct{after=Struct{…},source=Struct{…},op=c,ts_ms=…}`, which no parser can read back
    /// (strings are unquoted, bytes print as `[B@…`).
    #[error("the value was written by StringConverter (`Struct{{…}}`): {}", Rule::ConverterString.remedy().unwrap_or_default())]
    StringConverter,
    /// A flat row: what Debezium's `ExtractNewRecordState` (the "unwrap" transform) writes,
    /// the `after` image alone, maybe with `__op`, `__deleted` and `__source_*` fields. It has
    /// no source position to order changes by.
    #[error("the value is a flattened row (ExtractNewRecordState): {}", Rule::UnwrappedRecord.remedy().unwrap_or_default())]
    Unwrapped,
    /// A schema-registry frame: Confluent's wire format (magic byte 0, a 4-byte schema id, then
    /// Avro, Protobuf or JSON Schema data) or the AWS Glue Schema Registry's (header version
    /// byte 3, a compression byte 0 or 5, a 16-byte schema version id).
    #[error("the value is a schema-registry frame (Avro, Protobuf or JSON Schema): {}", Rule::ConverterBinary.remedy().unwrap_or_default())]
    SchemaRegistryFrame,
}

impl DecodeError {
    /// The rule a reject carries: `json`, `not_an_envelope`, `schema`, `unknown_op`,
    /// `source`, `converter_string`, `unwrapped_record`, `converter_binary`.
    pub fn rule(&self) -> Rule {
        match self {
            DecodeError::Json => Rule::Json,
            DecodeError::NotAnEnvelope => Rule::NotAnEnvelope,
            DecodeError::Schema => Rule::Schema,
            DecodeError::UnknownOp => Rule::UnknownOp,
            DecodeError::Source => Rule::Source,
            DecodeError::StringConverter => Rule::ConverterString,
            DecodeError::Unwrapped => Rule::UnwrappedRecord,
            DecodeError::SchemaRegistryFrame => Rule::ConverterBinary,
        }
    }
}

/// What `StringConverter` writes for a Connect struct: `Struct.toString()` starts with this
/// (Kafka's `org.apache.kafka.connect.data.Struct`).
const STRING_CONVERTER_STRUCT: &[u8] = b"Struct{";

/// A top-level JSON object without `op` that is no control message: is it a flattened row?
/// An object that carries any envelope field (`before`, `after`, `source`) is a broken
/// envelope instead. Everything else is a row as `ExtractNewRecordState` writes it
/// ([Debezium: New record state
/// extraction](https://debezium.io/documentation/reference/stable/transformations/event-flattening.html):
/// the `after` fields, plus `__`-prefixed `add.fields` such as `__op`, `__table`,
/// `__source_ts_ms`, and `__deleted` with `delete.handling.mode=rewrite`).
fn is_flattened_row(entries: &Entries<'_>) -> bool {
    // Debezium's `source` block (an object naming its `connector`), or both row images (each
    // an object or null), make a broken envelope; a column that happens to be called
    // `source`, `before` or `after` does not.
    let source_block = entries.get("source").is_some_and(|raw| {
        let raw = raw.get();
        raw.starts_with('{') && raw.contains("\"connector\"")
    });
    let image = |key: &str| entries.get(key).is_some_and(|raw| raw.get() == "null" || raw.get().starts_with('{'));
    let envelope = source_block || (image("before") && image("after"));
    !entries.0.is_empty() && !envelope
}

/// Only the fields, at most, of a message Debezium writes: so that a flat row (the unwrap
/// transform's output) whose table has a column of one of these names is not taken for it,
/// and skipped with its table's data.
fn only_fields(entries: &Entries<'_>, fields: &[&str]) -> bool {
    entries.0.iter().all(|(k, _)| fields.contains(&k.as_ref()))
}

/// A transaction metadata message ([Debezium: Transaction
/// metadata](https://debezium.io/documentation/reference/stable/connectors/sqlserver.html#sqlserver-transaction-metadata)):
/// `status` `BEGIN` or `END`, an `id`, and nothing but `ts_ms`, `event_count` and
/// `data_collections` besides.
fn is_transaction_marker(entries: &Entries<'_>) -> bool {
    let status = entries.get("status").and_then(|raw| serde_json::from_str::<&str>(raw.get()).ok());
    matches!(status, Some("BEGIN" | "END"))
        && entries.has("id")
        && only_fields(entries, &["status", "id", "ts_ms", "event_count", "data_collections"])
}

/// A schema change message (the connector's schema change topic): `ddl` or `tableChanges`,
/// with `databaseName` or `source`, and nothing but `ts_ms` and `schemaName` besides.
fn is_schema_change(entries: &Entries<'_>) -> bool {
    (entries.has("tableChanges") || entries.has("ddl"))
        && (entries.has("databaseName") || entries.has("source"))
        && only_fields(entries, &["source", "ts_ms", "databaseName", "schemaName", "ddl", "tableChanges"])
}

/// A JSON object as (key, raw value) pairs, in document order; keys borrow from the text
/// unless they hold escapes, values are never parsed.
pub struct Entries<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Entries<'a> {
    /// Split `text`, which must be one JSON object.
    ///
    /// Errors: serde_json's, when `text` is not a JSON object; callers map it to a
    /// [`DecodeError`] and drop its text, which can quote the input.
    pub fn parse(text: &'a str) -> Result<Entries<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The raw value of the first entry named exactly `key` (case-sensitive), if any.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// The JsonConverter wrapper has exactly `schema` and `payload`.
    fn is_schema_wrapper(&self) -> bool {
        self.0.len() == 2 && self.has("schema") && self.has("payload")
    }
}

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                    out.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Entries(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

fn non_null(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|r| r.get() != "null")
}

/// A message's top-level entries, the first byte of its payload (when wrapped) and its schema
/// (when present).
type Unwrapped<'a> = (Entries<'a>, Option<u8>, Option<Arc<MessageSchema>>);

const SCHEMA_PREFIX: &[u8] = b"{\"schema\":";
const PAYLOAD_INFIX: &[u8] = b",\"payload\":";

/// The JsonConverter repeats the same schema text in every message. When a message starts with
/// `{"schema":` followed by a schema text seen before, byte for byte, and `,"payload":`, only the
/// payload is parsed: the schema is known, and was validated when it was first seen.
fn unwrap_known_schema<'a>(bytes: &'a [u8], cache: &mut SchemaCache) -> Option<Unwrapped<'a>> {
    let rest = bytes.strip_prefix(SCHEMA_PREFIX)?;
    let (schema, length) = cache.known_prefix(rest)?;
    let payload = rest[length..].strip_prefix(PAYLOAD_INFIX)?;
    let text = std::str::from_utf8(payload).ok()?;
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Entries<'a>>();
    let entries = stream.next()?.ok()?;
    // Exactly the closing brace of the wrapper may follow.
    if text[stream.byte_offset()..].trim() != "}" {
        return None;
    }
    Some((entries, text.bytes().next(), Some(schema)))
}

/// Unwrap `{"schema","payload"}` if present: the payload's entries and the parsed schema.
fn unwrap_converter<'a>(bytes: &'a [u8], cache: &mut SchemaCache) -> Result<Unwrapped<'a>, DecodeError> {
    if let Some(unwrapped) = unwrap_known_schema(bytes, cache) {
        return Ok(unwrapped);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::Json)?;
    let top = Entries::parse(text).map_err(|_| DecodeError::NotAnEnvelope)?;
    if !top.is_schema_wrapper() {
        return Ok((top, None, None));
    }
    let schema = match non_null(top.get("schema")) {
        Some(raw) => Some(cache.get_or_parse(raw.get()).map_err(|_| DecodeError::Schema)?),
        None => None,
    };
    let payload = top.get("payload").ok_or(DecodeError::NotAnEnvelope)?;
    match Entries::parse(payload.get()) {
        Ok(entries) => Ok((entries, payload.get().bytes().next(), schema)),
        Err(_) => Err(DecodeError::NotAnEnvelope),
    }
}

/// Decode a Kafka value (already base64-decoded) from a Debezium data topic: a payload-only
/// envelope or the JsonConverter's `{"schema", "payload"}` wrapper. A schema text seen before
/// is not parsed again (`cache`).
///
/// Errors: [`DecodeError::SchemaRegistryFrame`] for a Confluent or Glue schema-registry frame;
/// `StringConverter` for `Struct{…}` text; `Json` for other bytes that are not UTF-8 JSON;
/// `Unwrapped` for an object without `op` or any envelope field that is no control message;
/// `NotAnEnvelope` for other JSON without `op` (an array, an envelope missing its `op`);
/// `Schema` for a schema that is not a Connect schema; `UnknownOp` for an `op` that is not one
/// of `r c u d t m`; `Source` for a `source` field of the wrong type.
pub fn decode_message<'a>(bytes: &'a [u8], cache: &mut SchemaCache) -> Result<Message<'a>, DecodeError> {
    // Converter mistakes first: they are whole-stream configuration errors, and naming them
    // is the point (a `json` reject would not say which setting to change).
    // A schema registry's frame (Confluent's or Glue's wire format, `avro::frame`).
    if crate::avro::frame::is_frame(bytes) {
        return Err(DecodeError::SchemaRegistryFrame);
    }
    if bytes.starts_with(STRING_CONVERTER_STRUCT) {
        return Err(DecodeError::StringConverter);
    }
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    // One cheap syntax check up front so that "not JSON" and "not an envelope" differ.
    let is_json = || std::str::from_utf8(bytes).is_ok_and(|t| serde_json::from_str::<de::IgnoredAny>(t).is_ok());
    if first != Some(b'{') {
        return Err(if is_json() { DecodeError::NotAnEnvelope } else { DecodeError::Json });
    }
    let (entries, _, schema) = unwrap_converter(bytes, cache)
        .map_err(|e| if e == DecodeError::NotAnEnvelope && !is_json() { DecodeError::Json } else { e })?;
    let op = match non_null(entries.get("op")) {
        Some(raw) => {
            let CowStr(code) = serde_json::from_str(raw.get()).map_err(|_| DecodeError::UnknownOp)?;
            Op::parse(&code).ok_or(DecodeError::UnknownOp)?
        }
        None => {
            if is_schema_change(&entries) {
                return Ok(Message::SchemaChange);
            }
            if is_transaction_marker(&entries) {
                return Ok(Message::Transaction);
            }
            if entries.0.len() == 1 && entries.has("ts_ms") {
                return Ok(Message::Heartbeat);
            }
            if is_flattened_row(&entries) {
                return Err(DecodeError::Unwrapped);
            }
            return Err(DecodeError::NotAnEnvelope);
        }
    };
    let source = match non_null(entries.get("source")) {
        Some(raw) => Some(serde_json::from_str::<Source<'a>>(raw.get()).map_err(|_| DecodeError::Source)?),
        None => None,
    };
    let ts_ms = non_null(entries.get("ts_ms")).and_then(|raw| raw.get().parse().ok());
    Ok(Message::Change(Envelope {
        op,
        before: non_null(entries.get("before")),
        after: non_null(entries.get("after")),
        source,
        ts_ms,
        schema,
    }))
}

/// A decoded Kafka key.
#[derive(Debug)]
pub enum Key<'a> {
    /// A struct key: field name → raw value, and the key schema if the message had one.
    Struct {
        /// The key's fields in document order, names as the source spells them (not yet
        /// lowercased).
        fields: Vec<(Cow<'a, str>, &'a RawValue)>,
        /// The key's Connect schema, when the JsonConverter wrote one.
        schema: Option<Arc<MessageSchema>>,
    },
    /// A primitive key (string, number): usable when the table declares one key column.
    Primitive(&'a RawValue),
}

/// Decode a Kafka key (already base64-decoded): a JSON object (wrapped or not) is a
/// [`Key::Struct`], any other JSON value (or a wrapper whose payload is one) a
/// [`Key::Primitive`].
///
/// Errors: [`DecodeError::Json`] when the bytes are not UTF-8 JSON.
pub fn decode_key<'a>(bytes: &'a [u8], cache: &mut SchemaCache) -> Result<Key<'a>, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::Json)?;
    if text.trim_start().starts_with('{') {
        if let Ok((entries, payload_first, schema)) = unwrap_converter(bytes, cache) {
            return Ok(Key::Struct { fields: entries.0, schema }).and_then(|key| match payload_first {
                Some(b'{') | None => Ok(key),
                // `{"schema":…,"payload":<primitive>}`: the payload itself is the key.
                Some(_) => primitive_payload(text),
            });
        }
        // A wrapper whose payload is a primitive does not parse as entries.
        return primitive_payload(text);
    }
    let raw: &'a RawValue = serde_json::from_str(text).map_err(|_| DecodeError::Json)?;
    Ok(Key::Primitive(raw))
}

fn primitive_payload(text: &str) -> Result<Key<'_>, DecodeError> {
    let top = Entries::parse(text).map_err(|_| DecodeError::Json)?;
    if !top.is_schema_wrapper() {
        return Err(DecodeError::Json);
    }
    top.get("payload").map(Key::Primitive).ok_or(DecodeError::Json)
}

/// A string as itself, any other JSON (an array) as its text, `null` as `None`.
fn opt_json_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    let raw: Option<&'de RawValue> = Option::deserialize(deserializer)?;
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(text) if text.starts_with('"') => {
            serde_json::from_str::<CowStr<'de>>(text).map(|CowStr(s)| Some(s)).map_err(de::Error::custom)
        }
        Some(text) => Ok(Some(Cow::Borrowed(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Message<'_>, DecodeError> {
        decode_message(text.as_bytes(), &mut SchemaCache::default())
    }

    #[test]
    fn payload_only_envelope() {
        let msg = decode(
            r#"{"before":null,"after":{"ID":1},"source":{"connector":"sqlserver","ts_ms":5,
                "snapshot":"false","commit_lsn":"0000002c:000010c8:0006","change_lsn":null,
                "event_serial_no":"1"},"op":"c","ts_ms":7}"#,
        )
        .unwrap();
        let Message::Change(env) = msg else { panic!("expected a change") };
        assert_eq!(env.op, Op::Create);
        assert!(env.before.is_none());
        assert_eq!(env.after.unwrap().get(), r#"{"ID":1}"#);
        let source = env.source.unwrap();
        assert_eq!(source.event_serial_no, Some(1), "string serial number tolerated");
        assert!(source.change_lsn.is_none());
        assert_eq!(env.ts_ms, Some(7));
    }

    #[test]
    fn schema_wrapped_envelope() {
        let msg = decode(
            r#"{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int32","optional":false,"field":"ID"}],"optional":true,"field":"after"}],"name":"x.Envelope"},
                "payload":{"before":null,"after":{"ID":1},"source":{"snapshot":true},"op":"r"}}"#,
        )
        .unwrap();
        let Message::Change(env) = msg else { panic!("expected a change") };
        assert_eq!(env.op, Op::Read);
        assert_eq!(env.schema.unwrap().row.as_ref().unwrap().fields[0].column.as_ref(), "id");
    }

    #[test]
    fn a_flat_row_whose_columns_look_like_a_control_message_is_an_unwrapped_record() {
        for row in [
            r#"{"id":7,"status":"active","name":"x"}"#,
            r#"{"id":7,"status":"BEGIN","name":"x"}"#,
            r#"{"id":10,"ddl":"x","name":"A"}"#,
            r#"{"id":11,"tableChanges":"x","databaseName":"d","notes":"n"}"#,
            r#"{"id":12,"source":"referral","before":"2024-01-01"}"#,
        ] {
            assert_eq!(decode(row).unwrap_err(), DecodeError::Unwrapped, "{row}");
        }
        // Debezium's own messages, in full, are still what they are.
        let end = r#"{"status":"END","id":"571:53195832","ts_ms":1486500577691,"event_count":2,"data_collections":[{"data_collection":"s1.a","event_count":1}]}"#;
        assert!(matches!(decode(end), Ok(Message::Transaction)));
        let begin = r#"{"status":"BEGIN","id":"571:53195829","ts_ms":1486500577125,"event_count":null,"data_collections":null}"#;
        assert!(matches!(decode(begin), Ok(Message::Transaction)));
        // An envelope that lost its `op` but has Debezium's `source` block stays a broken envelope.
        let broken = r#"{"before":null,"after":{"id":1},"source":{"connector":"sqlserver","name":"s"}}"#;
        assert_eq!(decode(broken).unwrap_err(), DecodeError::NotAnEnvelope);
    }

    #[test]
    fn control_messages() {
        assert!(matches!(decode(r#"{"ts_ms":1}"#), Ok(Message::Heartbeat)));
        assert!(matches!(
            decode(r#"{"status":"BEGIN","id":"0000002c:000010c8:0006","ts_ms":1}"#),
            Ok(Message::Transaction)
        ));
        assert!(matches!(
            decode(r#"{"source":{},"databaseName":"db","ddl":null,"tableChanges":[]}"#),
            Ok(Message::SchemaChange)
        ));
    }

    #[test]
    fn errors() {
        assert_eq!(decode("Hello, this is a test.").unwrap_err(), DecodeError::Json);
        assert_eq!(decode("{\"a\":").unwrap_err(), DecodeError::Json);
        assert_eq!(decode("[1,2]").unwrap_err(), DecodeError::NotAnEnvelope);
        assert_eq!(decode("{}").unwrap_err(), DecodeError::NotAnEnvelope);
        assert_eq!(decode(r#"{"before":null,"after":{"ID":1}}"#).unwrap_err(), DecodeError::NotAnEnvelope);
        assert_eq!(decode(r#"{"ID":1,"Name":"x"}"#).unwrap_err(), DecodeError::Unwrapped);
        assert_eq!(decode(r#"{"op":"x","after":{}}"#).unwrap_err(), DecodeError::UnknownOp);
        assert_eq!(decode(r#"{"op":"c","source":{"ts_ms":"soon"}}"#).unwrap_err(), DecodeError::Source);
        assert_eq!(decode_message(&[0xff, 0xfe], &mut SchemaCache::default()).unwrap_err(), DecodeError::Json);
    }

    /// `StringConverter` calls `toString()` on the envelope struct: Kafka's `Struct.toString`
    /// writes `Struct{` and each non-null field as `name=value`, comma-separated, nested structs
    /// the same way (org.apache.kafka.connect.data.Struct). This is the SQL Server sample's
    /// create event as MSK Connect's default worker configuration writes it.
    const STRING_CONVERTER_VALUE: &str = "Struct{after=Struct{ID=1004,FirstName=Aisha,LastName=Khan,State=IL,\
        SSN=123456789,DOB=1009843200000},source=Struct{version=2.7.3.Final,connector=sqlserver,name=sqlsrv,\
        ts_ms=1795168800000,snapshot=false,db=sampledb,schema=dbo,table=patientinfo,\
        change_lsn=0000002d:00000010:0002,commit_lsn=0000002d:00000010:0003,event_serial_no=1},op=c,\
        ts_ms=1795168800250}";

    #[test]
    fn string_converter_values_name_their_converter() {
        let error = decode(STRING_CONVERTER_VALUE).unwrap_err();
        assert_eq!(error, DecodeError::StringConverter);
        assert_eq!(error.rule(), Rule::ConverterString);
        let message = error.to_string();
        assert!(message.contains("value.converter=org.apache.kafka.connect.json.JsonConverter"), "{message}");
        assert!(!message.contains("Aisha") && !message.contains("123456789"), "never the value: {message}");
        // A heartbeat and a delete (`after` null is left out by Struct.toString) alike.
        assert_eq!(decode("Struct{ts_ms=1795161600000}").unwrap_err(), DecodeError::StringConverter);
        assert_eq!(
            decode("Struct{before=Struct{ID=1002},source=Struct{connector=sqlserver},op=d}").unwrap_err(),
            DecodeError::StringConverter
        );
        // Text that merely mentions a struct is still what it was.
        assert_eq!(decode("struct{a=1}").unwrap_err(), DecodeError::Json);
        assert_eq!(decode(" Struct{a=1}").unwrap_err(), DecodeError::Json);
    }

    /// What `ExtractNewRecordState` writes, in the shapes of Debezium's "New record state
    /// extraction" page: the `after` fields alone; with `add.fields=op,table,source.ts_ms`
    /// (`__op`, `__table`, `__source_ts_ms`); a rewritten delete (`__deleted: "true"`); and
    /// with `schemas.enable=true`, the row's own `….Value` struct schema around it.
    #[test]
    fn unwrapped_rows_are_told_apart_from_broken_envelopes() {
        let samples = [
            r#"{"ID":1004,"FirstName":"Aisha","LastName":"Khan","State":"IL","SSN":"123456789","DOB":1009843200000}"#,
            r#"{"ID":1004,"FirstName":"Aisha","__op":"c","__table":"patientinfo","__source_ts_ms":1795168800000}"#,
            r#"{"ID":1002,"FirstName":"Maria","__deleted":"true"}"#,
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"ID"},
                {"type":"string","optional":true,"field":"FirstName"},{"type":"string","optional":true,"field":"__op"}],
                "optional":false,"name":"sqlsrv.sampledb.dbo.patientinfo.Value"},
              "payload":{"ID":1004,"FirstName":"Aisha","__op":"c"}}"#,
        ];
        for sample in samples {
            let error = decode(sample).unwrap_err();
            assert_eq!(error, DecodeError::Unwrapped, "{sample}");
            assert_eq!(error.rule(), Rule::UnwrappedRecord);
            let message = error.to_string();
            assert!(message.contains("transforms=unwrap"), "{message}");
            assert!(!message.contains("Aisha"), "{message}");
        }
        // Control messages keep their meaning.
        assert!(matches!(decode(r#"{"ts_ms":1}"#), Ok(Message::Heartbeat)));
    }

    /// Confluent's wire format (magic byte 0, 4-byte schema id, Avro body) and the Glue Schema
    /// Registry's (version byte 3, compression byte 0 or 5, 16-byte schema version UUID).
    #[test]
    fn schema_registry_frames_are_named() {
        // Schema id 1, then the Avro encoding of a record starting with a long (zig-zag 2008 = 1004).
        let confluent: &[u8] = &[0, 0, 0, 0, 1, 0xb0, 0x0f, 0x02, 0x0a, b'A', b'i', b's', b'h', b'a'];
        let mut glue = vec![3, 0];
        glue.extend_from_slice(&[0x5a; 16]);
        glue.extend_from_slice(&[0xb0, 0x0f]);
        let mut glue_zlib = glue.clone();
        glue_zlib[1] = 5;
        for frame in [confluent, &glue, &glue_zlib] {
            let error = decode_message(frame, &mut SchemaCache::default()).unwrap_err();
            assert_eq!(error, DecodeError::SchemaRegistryFrame, "{frame:?}");
            assert_eq!(error.rule(), Rule::ConverterBinary);
            assert!(error.to_string().contains("value.converter=org.apache.kafka.connect.json.JsonConverter"));
        }
        // Too short to be a frame, or a byte 3 without a compression byte: just not JSON.
        for bytes in [&[0u8, 0, 1][..], &[3, 7, 0, 0], &[3, 0, 1]] {
            assert_eq!(decode_message(bytes, &mut SchemaCache::default()).unwrap_err(), DecodeError::Json, "{bytes:?}");
        }
    }

    #[test]
    fn keys() {
        let mut cache = SchemaCache::default();
        let Key::Struct { fields, schema } = decode_key(br#"{"ID":7}"#, &mut cache).unwrap() else { panic!() };
        assert_eq!((fields[0].0.as_ref(), fields[0].1.get()), ("ID", "7"));
        assert!(schema.is_none());
        let wrapped = br#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"ID"}],"name":"k.Key"},"payload":{"ID":7}}"#;
        let Key::Struct { fields, schema } = decode_key(wrapped, &mut cache).unwrap() else { panic!() };
        assert_eq!(fields[0].1.get(), "7");
        assert!(schema.is_some());
        assert!(matches!(decode_key(b"\"abc\"", &mut cache), Ok(Key::Primitive(_))));
        assert!(decode_key(b"not json", &mut cache).is_err());
    }
}
