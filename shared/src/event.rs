//! The event Lambda delivers from an MSK (or self-managed Kafka) event source mapping.
//!
//! Our own types rather than `aws_lambda_events::kafka`: that crate loses a millisecond on
//! some timestamps, re-serialises them as strings and rejects a record without `headers`.
//! Strings borrow from the event text; key and value stay base64 exactly as received so
//! that dead-letter objects can carry them byte for byte.
//!
//! Owns the event's types, parsing and the processing order ([`MskEvent::records_in_order`]).
//! It must not copy what it can borrow or decode base64 (that is [`crate::batch`]'s), and
//! its errors never quote the input: they name a path and a kind.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// One invocation's payload from an MSK or self-managed Kafka event source mapping, as
/// Lambda documents it ([Lambda: Amazon MSK, "Example
/// event"](https://docs.aws.amazon.com/lambda/latest/dg/with-msk.html)). Unknown fields are
/// ignored; serializing writes Lambda's shape back (headers as signed bytes).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MskEvent<'a> {
    /// `aws:kafka` or `SelfManagedKafka`; informational only.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str", skip_serializing_if = "Option::is_none")]
    pub event_source: Option<Cow<'a, str>>,
    /// The MSK cluster's ARN (absent for self-managed Kafka); informational only.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str", skip_serializing_if = "Option::is_none")]
    pub event_source_arn: Option<Cow<'a, str>>,
    /// Comma-separated `host:port` brokers, as Lambda sends them; informational only.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str", skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<Cow<'a, str>>,
    /// `"topic-partition"` → records, in the order the event lists them.
    #[serde(borrow, deserialize_with = "ordered_map", serialize_with = "serialize_ordered_map")]
    pub records: RecordGroups<'a>,
}

/// `"topic-partition"` → records, in event order.
pub type RecordGroups<'a> = Vec<(Cow<'a, str>, Vec<KafkaRecord<'a>>)>;

/// One Kafka record of the event. `partition`, `offset` and `timestamp` are read leniently (a
/// number, an integral float or a decimal string: see `lenient`), since a self-managed Kafka
/// mapping has sent `"partition": "0"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaRecord<'a> {
    /// The topic name, case as in Kafka (e.g. `sqlserver.sampledb.dbo.patientinfo`).
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    /// The partition number within the topic (0-based).
    #[serde(deserialize_with = "crate::lenient::i64")]
    pub partition: i64,
    /// The record's offset in its partition: increases with every record the partition takes,
    /// and starts over when the topic is recreated.
    #[serde(deserialize_with = "crate::lenient::i64")]
    pub offset: i64,
    /// Epoch milliseconds, exactly as sent.
    #[serde(deserialize_with = "crate::lenient::i64")]
    pub timestamp: i64,
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str", skip_serializing_if = "Option::is_none")]
    /// `CREATE_TIME` (the producer's clock) or `LOG_APPEND_TIME` (the broker's), as Kafka
    /// stamps `timestamp`; informational only.
    pub timestamp_type: Option<Cow<'a, str>>,
    /// Base64 text; `None` when null or absent.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_base64")]
    pub key: Option<Cow<'a, str>>,
    /// Base64 text; `None` (a tombstone) when null or absent.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_base64")]
    pub value: Option<Cow<'a, str>>,
    /// The record's Kafka headers, in order (empty when `null` or absent).
    #[serde(default, borrow, deserialize_with = "headers")]
    pub headers: Vec<Header<'a>>,
    /// Set by the event source mapping's own schema registry integration for a key it
    /// validated (`SchemaValidationConfigs` `KEY`): the key is then the datum without the
    /// registry's header.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub key_schema_metadata: Option<SchemaMetadata<'a>>,
    /// The same for the value (`VALUE`).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub value_schema_metadata: Option<SchemaMetadata<'a>>,
}

/// What the event source mapping's schema registry integration says of a key or value it
/// deserialized ([Lambda: schema registries with Kafka event
/// sources](https://docs.aws.amazon.com/lambda/latest/dg/services-consume-kafka-events.html):
/// "Lambda adds metadata about the schema to the payload"; with `EventRecordFormat` `SOURCE`
/// "Lambda removes all schema metadata, such as the schema ID, before sending the record").
/// As the records carry it: `{"dataFormat": "AVRO", "schemaId": "1234"}` (Confluent: the
/// numeric id; Glue: the schema version UUID).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaMetadata<'a> {
    /// `AVRO`, `PROTOBUF` or `JSON`.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str", skip_serializing_if = "Option::is_none")]
    pub data_format: Option<Cow<'a, str>>,
    /// The registry's id of the schema.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str", skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<Cow<'a, str>>,
}

/// One Kafka header. Lambda sends each as a single-entry map of name → signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header's name, as the producer wrote it (may hold anything: never logged).
    pub name: Cow<'a, str>,
    /// The header's bytes: read from Java's signed bytes (-128..=127) or unsigned ones
    /// (0..=255), written back signed, as Lambda does.
    pub value: Vec<u8>,
}

/// A payload that is not an MSK event (the invocation fails, metric `EventsMalformed`). It
/// names where and what kind of fault, never the value found there.
#[derive(Debug, thiserror::Error)]
#[error("not a valid MSK event: {path}: {message}")]
pub struct EventParseError {
    /// JSON path of the offending field, e.g. `records.mytopic-0[3].timestamp`.
    pub path: String,
    /// What is wrong there, by kind and position only (see [`crate::redact`]): never a value.
    pub message: String,
}

/// `path` as serde_path_to_error prints it, with a Kafka header's name (a map key the producer
/// chose, which may hold anything) withheld as `…`: `records.t-0[0].headers[0].…[0]`.
fn value_free_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let mut in_headers = false;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(if in_headers { "…" } else { key });
                in_headers |= key == "headers";
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

impl<'a> MskEvent<'a> {
    /// Parse an event, borrowing strings from `json` (a key or value with JSON escapes is
    /// copied).
    ///
    /// Errors: [`EventParseError`] when `json` is not an event (not JSON, a missing `records`,
    /// `topic`, `partition`, `offset` or `timestamp`, a field of the wrong kind, a header byte
    /// outside -128..=255, trailing text); `path` names the field (`(event)` for the whole
    /// payload), with header names withheld.
    pub fn parse(json: &'a [u8]) -> Result<MskEvent<'a>, EventParseError> {
        match serde_json::from_slice(json) {
            Ok(event) => Ok(event),
            // Re-parse with path tracking only on the error path, to keep the hot path lean.
            Err(first) => {
                let mut de = serde_json::Deserializer::from_slice(json);
                let err = match serde_path_to_error::deserialize::<_, MskEvent<'_>>(&mut de) {
                    Err(err) => err,
                    // The event itself parsed: what failed is whatever follows it.
                    Ok(_) => {
                        let message = crate::redact::parser_message(&de.end().err().unwrap_or(first).to_string());
                        return Err(EventParseError { path: "(event)".into(), message });
                    }
                };
                let path = value_free_path(err.path());
                Err(EventParseError {
                    path: if path.is_empty() || path == "." { "(event)".into() } else { path },
                    message: crate::redact::parser_message(&err.into_inner().to_string()),
                })
            }
        }
    }

    /// Records in processing order: by topic, then partition, then offset.
    pub fn records_in_order(&self) -> Vec<&KafkaRecord<'a>> {
        let mut all: Vec<&KafkaRecord<'a>> = self.records.iter().flat_map(|(_, records)| records.iter()).collect();
        all.sort_by(|a, b| (a.topic.as_ref(), a.partition, a.offset).cmp(&(b.topic.as_ref(), b.partition, b.offset)));
        all
    }

    /// The number of records over all topic-partitions.
    pub fn record_count(&self) -> usize {
        self.records.iter().map(|(_, records)| records.len()).sum()
    }
}

fn ordered_map<'de, D>(deserializer: D) -> Result<RecordGroups<'de>, D::Error>
where
    D: Deserializer<'de>,
{
    struct OrderedMap;
    impl<'de> Visitor<'de> for OrderedMap {
        type Value = RecordGroups<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of \"topic-partition\" to a list of records")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                let records: Option<Vec<KafkaRecord<'de>>> = map.next_value()?;
                out.push((key, records.unwrap_or_default()));
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(OrderedMap)
}

fn serialize_ordered_map<S: Serializer>(
    records: &[(Cow<'_, str>, Vec<KafkaRecord<'_>>)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(records.iter().map(|(k, v)| (k, v)))
}

/// A string that borrows from the input unless it has escapes. serde's own `Cow<str>`
/// borrows only as a bare field marked `borrow`: inside an `Option`, or as a map key, it is
/// always copied — for the key and value of every record, a copy of most of the event.
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// `Option<Cow<str>>` that borrows: see [`CowStr`].
pub(crate) fn borrowed_opt_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<CowStr<'de>>::deserialize(deserializer)?.map(|s| s.0))
}

/// A record's key or value: base64 text, most of an event's bytes. Asked for bytes, serde_json
/// finds the closing quote with a SIMD search; asked for a string, it runs an 8-byte loop that
/// also looks for control characters (which the base64 decoder rejects anyway). UTF-8 is
/// checked here instead.
fn borrowed_opt_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct OptBase64;
    impl<'de> Visitor<'de> for OptBase64 {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("base64 text or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_bytes(OptBase64)
        }
        fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
            std::str::from_utf8(v).map(|s| Some(Cow::Borrowed(s))).map_err(|_| E::custom("invalid UTF-8 in a string"))
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            std::str::from_utf8(v)
                .map(|s| Some(Cow::Owned(s.to_owned())))
                .map_err(|_| E::custom("invalid UTF-8 in a string"))
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
    }
    deserializer.deserialize_option(OptBase64)
}

/// `deserialize_with` for a record's headers (the MSK event's and a dead letter's): Lambda's
/// list of single-entry maps, name → bytes (see [`header_byte`]); `null` is no headers.
pub(crate) fn headers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Header<'de>>, D::Error> {
    struct Headers;
    impl<'de> Visitor<'de> for Headers {
        type Value = Vec<Header<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of {name: [bytes]} maps")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(HeaderMap(entries)) = seq.next_element::<HeaderMap<'de>>()? {
                out.extend(entries);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(Headers)
}

struct HeaderMap<'a>(Vec<Header<'a>>);

impl<'de> Deserialize<'de> for HeaderMap<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HeaderMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of header name to a list of bytes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    let HeaderBytes(value) = map.next_value()?;
                    out.push(Header { name, value });
                }
                Ok(HeaderMap(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// One header byte from the number JSON carries for it. Lambda writes a header value as Java's
/// `byte[]`, signed (-128..=127); an event written by other tools may carry the same bytes
/// unsigned (0..=255). Both read as the byte they name; anything else is `None`, an error of
/// the event, never a byte wrapped modulo 256. The other half of the codec is
/// [`header_number`]: `header_byte(header_number(b).into()) == Some(b)` for every byte.
fn header_byte(number: i64) -> Option<u8> {
    match number {
        -128..=-1 => Some((number + 256) as u8),
        0..=255 => Some(number as u8),
        _ => None,
    }
}

/// The number written for a header byte: Java's signed `byte`, Lambda's form, so that a dead
/// letter carries a header exactly as the event did.
fn header_number(byte: u8) -> i8 {
    byte as i8
}

/// A header value read through [`header_byte`].
struct HeaderBytes(Vec<u8>);

impl<'de> Deserialize<'de> for HeaderBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HeaderBytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of bytes, -128..=255")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(number) = seq.next_element::<i64>()? {
                    bytes.push(
                        header_byte(number).ok_or_else(|| de::Error::custom("header byte out of range -128..=255"))?,
                    );
                }
                Ok(HeaderBytes(bytes))
            }
        }
        deserializer.deserialize_seq(V)
    }
}

/// A header value written through [`header_number`], without a copy.
struct SignedBytes<'a>(&'a [u8]);

impl Serialize for SignedBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|&byte| header_number(byte)))
    }
}

impl Serialize for Header<'_> {
    /// Back to Lambda's shape: `{name: [signed bytes]}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(std::iter::once((&self.name, SignedBytes(&self.value))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_SAMPLE: &str = r#"{
      "eventSource":"aws:kafka",
      "eventSourceArn":"arn:aws:kafka:us-east-1:123456789012:cluster/vpc-2priv-2pub/751d2973-a626-431c-9d4e-d7975eb44dd7-2",
      "bootstrapServers":"b-2.demo:9092,b-1.demo:9092",
      "records":{"mytopic-0":[{"topic":"mytopic","partition":0,"offset":15,"timestamp":1545084650987,
        "timestampType":"CREATE_TIME","key":"abcDEFghiJKLmnoPQRstuVWXyz1234==",
        "value":"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
        "headers":[{"headerKey":[104,101,97,100,101,114,86,97,108,117,101]}]}]}}"#;

    #[test]
    fn parses_the_aws_sample_exactly() {
        let event = MskEvent::parse(AWS_SAMPLE.as_bytes()).unwrap();
        assert_eq!(event.event_source.as_deref(), Some("aws:kafka"));
        let record = &event.records[0].1[0];
        assert_eq!(record.timestamp, 1_545_084_650_987, "no millisecond lost");
        assert_eq!(record.headers[0].name, "headerKey");
        assert_eq!(record.headers[0].value, b"headerValue");
        assert_eq!(record.value.as_deref(), Some("SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg=="));
    }

    #[test]
    fn keys_and_values_borrow_from_the_event() {
        let event = MskEvent::parse(AWS_SAMPLE.as_bytes()).unwrap();
        let record = &event.records[0].1[0];
        assert!(matches!(record.value, Some(Cow::Borrowed(_))), "the value is not copied");
        assert!(matches!(record.key, Some(Cow::Borrowed(_))), "the key is not copied");
        assert!(matches!(event.event_source, Some(Cow::Borrowed(_))));
        // An escaped string cannot be borrowed, and still decodes.
        let json =
            r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":1,"value":"QU\/B","key":null}]}}"#;
        let event = MskEvent::parse(json.as_bytes()).unwrap();
        assert_eq!(event.records[0].1[0].value.as_deref(), Some("QU/B"));
        assert_eq!(event.records[0].1[0].key, None);
        // A raw control character is the base64 decoder's to reject, for that record alone.
        let json = "{\"records\":{\"t-0\":[{\"topic\":\"t\",\"partition\":0,\"offset\":1,\"timestamp\":1,\"value\":\"QU\u{1}B\"}]}}";
        let event = MskEvent::parse(json.as_bytes()).unwrap();
        let batch = crate::DecodedBatch::from_event(&event);
        assert!(matches!(batch.value(0), crate::batch::Payload::Invalid));
        // Invalid UTF-8 is still an error of the event.
        let mut bytes =
            br#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":1,"value":"QU"#.to_vec();
        bytes.extend_from_slice(b"\xff\"}]}}");
        assert!(MskEvent::parse(&bytes).is_err());
    }

    #[test]
    fn trailing_characters_are_an_error_not_a_panic() {
        // Found by the msk_event fuzz target (fuzz/regressions/msk_event/).
        let err = MskEvent::parse(br#"{"records":{}}x"#).unwrap_err();
        assert_eq!(err.path, "(event)");
        assert!(err.message.contains("trailing characters"), "{}", err.message);
        assert!(MskEvent::parse(b"{\"records\":{}}  \n").is_ok(), "trailing whitespace is fine");
    }

    #[test]
    fn tolerates_missing_headers_key_value_and_string_partition() {
        let json = r#"{"eventSource":"SelfManagedKafka","records":{"t-0":[
            {"topic":"t","partition":"0","offset":"7","timestamp":1}]}}"#;
        let event = MskEvent::parse(json.as_bytes()).unwrap();
        let record = &event.records[0].1[0];
        assert_eq!((record.partition, record.offset), (0, 7));
        assert!(record.key.is_none() && record.value.is_none() && record.headers.is_empty());
    }

    #[test]
    fn signed_header_bytes_round_trip() {
        let json = r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":1,
            "headers":[{"h":[104,-61,-87]},{"h":[1]}]}]}}"#;
        let event = MskEvent::parse(json.as_bytes()).unwrap();
        let headers = &event.records[0].1[0].headers;
        assert_eq!(headers[0].value, "hé".as_bytes());
        assert_eq!(headers.len(), 2, "duplicate header names are kept");
        let back = serde_json::to_value(&headers[0]).unwrap();
        assert_eq!(back, serde_json::json!({"h": [104, -61, -87]}));
    }

    #[test]
    fn the_header_codec_reads_both_forms_writes_the_signed_one_and_never_wraps() {
        for byte in 0..=u8::MAX {
            assert_eq!(header_byte(header_number(byte).into()), Some(byte), "{byte}");
            assert_eq!(header_byte(byte.into()), Some(byte), "the unsigned form of {byte}");
        }
        for number in [-129, 256, 300, -200, 70_000, i64::MIN, i64::MAX] {
            assert_eq!(header_byte(number), None, "{number} is not a byte: no wrapping");
        }
        for bad in ["[256]", "[-129]", "[1.5]", "[\"a\"]"] {
            let json = format!(
                r#"{{"records":{{"t-0":[{{"topic":"t","partition":0,"offset":1,"timestamp":1,"headers":[{{"h":{bad}}}]}}]}}}}"#
            );
            assert!(MskEvent::parse(json.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let json = r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":1.5}]}}"#;
        let err = MskEvent::parse(json.as_bytes()).unwrap_err();
        assert_eq!(err.path, "records.t-0[0].timestamp");
        assert!(err.message.contains("fractional"), "{err}");
        let err = MskEvent::parse(b"{\"records\": 5}").unwrap_err();
        assert_eq!(err.path, "records");
        let err = MskEvent::parse(b"5").unwrap_err();
        assert_eq!(err.path, "(event)");
    }

    /// Review (issue 12): the redaction covers the message, not the path. serde_path_to_error
    /// names every map key on the way, and a header name is a map key the producer chose.
    #[test]
    fn review_the_error_path_does_not_echo_a_header_name() {
        let json = r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":1,
            "headers":[{"patient-123-45-6789":[70000]}]}]}}"#;
        let err = MskEvent::parse(json.as_bytes()).unwrap_err();
        assert!(!err.to_string().contains("123-45-6789"), "{err}");
    }

    #[test]
    fn orders_records_by_partition_then_offset() {
        let json = r#"{"records":{
            "t-1":[{"topic":"t","partition":1,"offset":5,"timestamp":1}],
            "t-0":[{"topic":"t","partition":0,"offset":9,"timestamp":1},
                   {"topic":"t","partition":0,"offset":3,"timestamp":1}]}}"#;
        let event = MskEvent::parse(json.as_bytes()).unwrap();
        let order: Vec<_> = event.records_in_order().iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(order, vec![(0, 3), (0, 9), (1, 5)]);
    }
}
