//! The records of one invocation with their keys and values base64-decoded into a single
//! buffer: one allocation for the whole batch instead of two per record, and every later
//! stage borrows its strings from here.
//!
//! It only decodes: what the bytes mean (Debezium JSON, a key) is the transform's to find out.

use base64::Engine as _;
use base64::engine::general_purpose::PAD;
use base64::engine::simd::Simd;
use std::sync::LazyLock;

use crate::avro::AvroError;
use crate::avro::connect::{AvroSchema, Reader};
use crate::avro::frame::{self, SchemaRef};
use crate::event::{KafkaRecord, MskEvent, SchemaMetadata};
use crate::rule::Rule;

/// Kafka keys and values are most of an event's bytes. The SIMD engine (AVX2 on x86-64, NEON on
/// Graviton) decodes them several times faster than the scalar one, with the same strict rules.
static BASE64: LazyLock<Simd> = LazyLock::new(|| Simd::standard(PAD));

#[derive(Debug, Clone, Copy)]
enum Span {
    Absent,
    Invalid,
    At(usize, usize),
    /// The JsonConverter text an Avro key or value became ([`DecodedBatch::read_avro`]), in
    /// the batch's second buffer.
    Read(usize, usize),
    /// A bare Avro datum whose schema the event source mapping named (its schema registry
    /// integration with `EventRecordFormat` `SOURCE`: the registry's header stripped).
    Datum(usize, usize, SchemaRef),
    Rejected(Rule),
}

/// How a key or value the event source mapping's schema registry integration handled is to be
/// read: as a datum of the named schema, or rejected (not Avro; an id that is neither
/// Confluent's nor Glue's).
fn metadata_span(metadata: Option<&SchemaMetadata<'_>>, span: Span) -> Span {
    let (Some(metadata), Span::At(start, end)) = (metadata, span) else { return span };
    if !metadata.data_format.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("AVRO")) {
        // Protobuf and JSON Schema records: the pipeline reads Avro only.
        return Span::Rejected(Rule::AvroSchema);
    }
    match metadata.schema_id.as_deref().and_then(SchemaRef::from_id) {
        Some(schema) => Span::Datum(start, end, schema),
        None => Span::Rejected(Rule::AvroSchemaUnknown),
    }
}

/// Decoded key or value bytes of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'b> {
    /// Null or missing in the event.
    Absent,
    /// Not valid base64.
    Invalid,
    /// The decoded bytes (standard base64 alphabet, padded), borrowed from the batch's buffer;
    /// empty for an empty string in the event.
    Bytes(&'b [u8]),
    /// A schema-registry frame that could not be read ([`DecodedBatch::read_avro`]): the rule.
    Rejected(Rule),
}

/// One invocation's records, in processing order, with every key and value decoded. Record
/// `i` of [`DecodedBatch::records`] is the record [`DecodedBatch::key`] and
/// [`DecodedBatch::value`] answer for at index `i`; outcomes and rejects name records by that
/// index.
#[derive(Debug)]
pub struct DecodedBatch<'e> {
    records: Vec<&'e KafkaRecord<'e>>,
    buf: Vec<u8>,
    /// The JsonConverter texts of the Avro keys and values, one after another.
    read: Vec<u8>,
    spans: Vec<(Span, Span)>,
}

impl<'e> DecodedBatch<'e> {
    /// All records of an event, ordered by topic, partition, offset.
    pub fn from_event(event: &'e MskEvent<'e>) -> DecodedBatch<'e> {
        DecodedBatch::from_records(event.records_in_order())
    }

    /// Records in the order given.
    pub fn from_records(records: Vec<&'e KafkaRecord<'e>>) -> DecodedBatch<'e> {
        // Every valid text decodes to at most 3 bytes per 4 characters. A zeroed allocation
        // this large comes straight from the OS's zero pages, with no memset to pay for.
        let bound = |text: &Option<std::borrow::Cow<'_, str>>| text.as_ref().map_or(0, |t| t.len().div_ceil(4) * 3);
        let capacity = records.iter().map(|r| bound(&r.key) + bound(&r.value)).sum::<usize>();
        let mut buf = vec![0u8; capacity];
        let mut end = 0;
        let mut decode = |text: Option<&str>| -> Span {
            let Some(text) = text else { return Span::Absent };
            match BASE64.decode_slice(text, &mut buf[end..]) {
                Ok(length) => {
                    end += length;
                    Span::At(end - length, end)
                }
                Err(_) => Span::Invalid,
            }
        };
        let spans = records
            .iter()
            .map(|r| {
                let key = metadata_span(r.key_schema_metadata.as_ref(), decode(r.key.as_deref()));
                let value = metadata_span(r.value_schema_metadata.as_ref(), decode(r.value.as_deref()));
                (key, value)
            })
            .collect();
        buf.truncate(end);
        DecodedBatch { records, buf, read: Vec::new(), spans }
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch has no records (an event with an empty `records` map).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records as received (key and value still base64), in batch order.
    pub fn records(&self) -> &[&'e KafkaRecord<'e>] {
        &self.records
    }

    fn payload(&self, span: Span) -> Payload<'_> {
        match span {
            Span::Absent => Payload::Absent,
            Span::Invalid => Payload::Invalid,
            Span::At(start, end) => Payload::Bytes(&self.buf[start..end]),
            Span::Read(start, end) => Payload::Bytes(&self.read[start..end]),
            // Not read through a registry (none configured): a registry's record all the same.
            Span::Datum(..) => Payload::Rejected(Rule::ConverterBinary),
            Span::Rejected(rule) => Payload::Rejected(rule),
        }
    }

    /// Replace every key and value that is a schema-registry frame with the JsonConverter's
    /// text of the record it holds ([`AvroSchema::to_connect_json`]), so the transform reads it
    /// as JSON. `lookup` gives a frame's schema: `None` when the registry does not have it
    /// (`avro_schema_unknown`), an error when its text is no Avro schema (`avro_schema`). A
    /// frame cut short or a datum that does not match its schema is `avro_data`. A datum the
    /// event source mapping's registry integration delivered (its header stripped, the schema
    /// id in `keySchemaMetadata`/`valueSchemaMetadata`) is read the same way; one it delivered
    /// as JSON text is `registry_json_format`. Each failure stops its own record only
    /// ([`Payload::Rejected`]).
    pub fn read_avro(&mut self, lookup: &dyn Fn(SchemaRef) -> Found) {
        // Each schema looked up, and its reader made, once for the batch.
        let schemas: Vec<(SchemaRef, Found)> = self.schema_refs().into_iter().map(|r| (r, lookup(r))).collect();
        let readers: Readers<'_> = schemas
            .iter()
            .map(|(r, found)| {
                let reader = match found {
                    None => Err(Rule::AvroSchemaUnknown),
                    Some(Err(e)) => Err(e.rule()),
                    Some(Ok(schema)) => schema.reader().map_err(|e| e.rule()),
                };
                (*r, reader)
            })
            .collect();
        for i in 0..self.spans.len() {
            for value in [false, true] {
                let span = if value { self.spans[i].1 } else { self.spans[i].0 };
                let read = match span {
                    Span::At(start, end) if frame::is_frame(&self.buf[start..end]) => {
                        match frame::parse(&self.buf[start..end]) {
                            Err(e) => Err(e.rule()),
                            Ok(frame) => read_datum(&readers, frame.schema, &frame.datum, &mut self.read),
                        }
                    }
                    Span::Datum(start, end, schema) => {
                        let bytes = &self.buf[start..end];
                        read_datum(&readers, schema, bytes, &mut self.read).map_err(|rule| {
                            // A mapping set to deliver JSON: its text is no datum of the schema.
                            if rule == Rule::AvroData && is_json_object(bytes) {
                                Rule::RegistryJsonFormat
                            } else {
                                rule
                            }
                        })
                    }
                    _ => continue,
                };
                let new = match read {
                    Ok(start) => Span::Read(start, self.read.len()),
                    Err(rule) => Span::Rejected(rule),
                };
                if value {
                    self.spans[i].1 = new;
                } else {
                    self.spans[i].0 = new;
                }
            }
        }
    }

    /// The schemas the batch's registry frames and datums (keys and values) name, each once,
    /// in first-seen order: what [`DecodedBatch::read_avro`]'s lookup will be asked for. Bytes
    /// that open like a frame but are no whole one name none (they are rejected as
    /// `avro_data`).
    pub fn schema_refs(&self) -> Vec<SchemaRef> {
        let mut refs = Vec::new();
        for span in self.spans.iter().flat_map(|(k, v)| [*k, *v]) {
            let schema = match span {
                Span::At(start, end) => frame::schema_of(&self.buf[start..end]),
                Span::Datum(_, _, schema) => Some(schema),
                _ => None,
            };
            if let Some(schema) = schema
                && !refs.contains(&schema)
            {
                refs.push(schema);
            }
        }
        refs
    }

    /// The Kafka key of record `index`, decoded. Panics if `index >= len()`.
    pub fn key(&self, index: usize) -> Payload<'_> {
        self.payload(self.spans[index].0)
    }

    /// The Kafka value of record `index`, decoded ([`Payload::Absent`] for a tombstone).
    /// Panics if `index >= len()`.
    pub fn value(&self, index: usize) -> Payload<'_> {
        self.payload(self.spans[index].1)
    }

    /// Total decoded bytes of all keys and values (the base64-decoded buffer, and the
    /// JsonConverter texts of Avro ones).
    pub fn decoded_bytes(&self) -> usize {
        self.buf.len() + self.read.len()
    }
}

/// What a lookup of [`DecodedBatch::read_avro`] gives for one schema.
type Found = Option<Result<std::sync::Arc<AvroSchema>, AvroError>>;

/// The readers of a batch's schemas, or the rule that stops each one's records.
type Readers<'s> = std::collections::HashMap<SchemaRef, Result<Reader<'s>, Rule>>;

/// Append the JsonConverter text of `datum` under `schema` to `out`: where it starts, or the
/// rule that stops it (`out` unchanged then).
fn read_datum(readers: &Readers<'_>, schema: SchemaRef, datum: &[u8], out: &mut Vec<u8>) -> Result<usize, Rule> {
    let start = out.len();
    match readers.get(&schema) {
        None => Err(Rule::AvroSchemaUnknown),
        Some(Err(rule)) => Err(*rule),
        Some(Ok(reader)) => reader.write_connect_json(datum, out).map(|()| start).map_err(|e| e.rule()),
    }
}

/// Whether `bytes` are a whole JSON object (what the event source mapping sends with
/// `EventRecordFormat` `JSON`).
fn is_json_object(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_into_one_buffer() {
        let json = r#"{"records":{"t-0":[
            {"topic":"t","partition":0,"offset":2,"timestamp":1,"key":"aw==","value":"djI="},
            {"topic":"t","partition":0,"offset":1,"timestamp":1,"value":null},
            {"topic":"t","partition":0,"offset":3,"timestamp":1,"key":"@@@","value":"dg=="}]}}"#;
        let event = MskEvent::parse(json.as_bytes()).unwrap();
        let batch = DecodedBatch::from_event(&event);
        assert_eq!(batch.records()[0].offset, 1, "ordered by offset");
        assert_eq!((batch.key(0), batch.value(0)), (Payload::Absent, Payload::Absent));
        assert_eq!((batch.key(1), batch.value(1)), (Payload::Bytes(b"k"), Payload::Bytes(b"v2")));
        assert_eq!((batch.key(2), batch.value(2)), (Payload::Invalid, Payload::Bytes(b"v")));
        assert_eq!(batch.decoded_bytes(), 4);
    }
}
