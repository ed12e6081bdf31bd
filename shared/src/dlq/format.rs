//! The dead-letter format: one [`DeadLetter`] JSON line per failed record, grouped into
//! objects by stage and topic-partition ([`objects`]), and read back ([`read`]: our lines, or
//! an on-failure record). Pure: no I/O.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::event::{Header, KafkaRecord, SchemaMetadata, borrowed_opt_str};
use crate::outcome::{Reason, Stage};
use crate::row::known_reasons;
use crate::temporal;

/// The `format` number every line is written with: 1, the only version so far ([`read`] does
/// not look at it).
const FORMAT_VERSION: u32 = 1;

/// One line of a dead-letter object (README "Dead-letter objects"): the record exactly as
/// received, and why it failed. No field holds a decoded value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter<'a> {
    /// The line format's version: 1.
    pub format: u32,
    /// The record's topic.
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    /// The record's partition (0-based).
    pub partition: i64,
    /// The record's offset in its partition; the object's lines are in offset order.
    pub offset: i64,
    /// The record's Kafka timestamp, ms since the Unix epoch, as the event sent it.
    pub timestamp: i64,
    /// `CREATE_TIME` or `LOG_APPEND_TIME`, when the event named it.
    #[serde(rename = "timestampType", default, borrow, deserialize_with = "borrowed_opt_str")]
    pub timestamp_type: Option<Cow<'a, str>>,
    /// Base64, exactly as received.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub key: Option<Cow<'a, str>>,
    /// Base64, exactly as received.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub value: Option<Cow<'a, str>>,
    /// As the event carried them: Lambda's signed-byte lists, through the event's own codec
    /// (`crate::event::headers`), so a dead letter holds exactly the bytes the event did.
    #[serde(default, borrow, deserialize_with = "crate::event::headers")]
    pub headers: Vec<Header<'a>>,
    /// The event source mapping's schema metadata of the key, when its registry integration
    /// stripped the key's header (`keySchemaMetadata`): a replay needs it to read the key.
    #[serde(rename = "keySchemaMetadata", default, borrow, skip_serializing_if = "Option::is_none")]
    pub key_schema_metadata: Option<SchemaMetadata<'a>>,
    /// The same for the value (`valueSchemaMetadata`).
    #[serde(rename = "valueSchemaMetadata", default, borrow, skip_serializing_if = "Option::is_none")]
    pub value_schema_metadata: Option<SchemaMetadata<'a>>,
    /// The stage that rejected the record: `decode`, `route`, `validate`, `drift` or `load`
    /// (records replayed from an on-failure destination are dead-lettered by the stage that
    /// rejects them in the replay).
    pub stage: Cow<'a, str>,
    /// Every (column or record, rule) pair the record failed. Read leniently: a rule this
    /// version does not know is dropped ([`known_reasons`]); replay does not read them.
    #[serde(deserialize_with = "known_reasons")]
    pub reasons: Vec<Reason>,
    /// The database's error class (`invalid_value`, `numeric_overflow`…) of a row the
    /// database itself refused (`rejected_by_database`); `None` otherwise.
    #[serde(default)]
    pub error_class: Option<Cow<'a, str>>,
    /// How many times the record has been dead-lettered (1 on first failure).
    pub attempts: u32,
    /// When it failed: RFC 3339 UTC with milliseconds, `2026-11-24T08:15:00.123Z`.
    pub failed_at: Cow<'a, str>,
    /// The function that wrote the line (`AWS_LAMBDA_FUNCTION_NAME`, or `ingest`/`replay`).
    pub function: Cow<'a, str>,
    /// The writing invocation's request id (also in the object's key).
    pub request_id: Cow<'a, str>,
    /// The masking key's version (Secrets Manager `VersionId`) the writer masked with: the
    /// raw record is here, and a replay masks it with the key of its own cold start.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none", deserialize_with = "borrowed_opt_str")]
    pub mask_key_version: Option<Cow<'a, str>>,
}

impl<'a> DeadLetter<'a> {
    /// The Kafka record this line describes (for replay).
    pub fn to_record(&self) -> KafkaRecord<'_> {
        KafkaRecord {
            topic: Cow::Borrowed(&self.topic),
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type.as_deref().map(Cow::Borrowed),
            key: self.key.as_deref().map(Cow::Borrowed),
            value: self.value.as_deref().map(Cow::Borrowed),
            headers: self.headers.iter().map(borrowed_header).collect(),
            key_schema_metadata: self.key_schema_metadata.as_ref().map(borrowed_metadata),
            value_schema_metadata: self.value_schema_metadata.as_ref().map(borrowed_metadata),
        }
    }
}

fn borrowed_metadata<'m>(metadata: &'m SchemaMetadata<'_>) -> SchemaMetadata<'m> {
    SchemaMetadata {
        data_format: metadata.data_format.as_deref().map(Cow::Borrowed),
        schema_id: metadata.schema_id.as_deref().map(Cow::Borrowed),
    }
}

/// A header whose name borrows from `header` (the bytes are copied: a header is a few bytes).
fn borrowed_header<'h>(header: &'h Header<'_>) -> Header<'h> {
    Header { name: Cow::Borrowed(&header.name), value: header.value.clone() }
}

/// Who is writing, for the lines and the object keys.
#[derive(Debug, Clone)]
pub struct Writer<'c> {
    /// The function name written in every line.
    pub function: &'c str,
    /// The invocation's request id: in every line and every key.
    pub request_id: &'c str,
    /// When the records failed, epoch microseconds.
    pub failed_at_micros: i64,
    /// Appended to the request id in keys when one invocation writes for several batches
    /// (a replay, one batch per object): the same record range from two objects must not
    /// land on one key.
    pub key_suffix: Option<&'c str>,
    /// The masking key's version, when known.
    pub mask_key_version: Option<&'c str>,
}

/// A record that failed, with everything its dead-letter line needs.
#[derive(Debug, Clone)]
pub struct Failed<'r> {
    /// The record as received (base64 key and value): what the line carries.
    pub record: &'r KafkaRecord<'r>,
    /// Where it was rejected: the line's `stage` and the key's `<stage>` segment.
    pub stage: Stage,
    /// Why: every (column or record, rule) pair.
    pub reasons: Vec<Reason>,
    /// The database's error class, for a row the database refused.
    pub error_class: Option<&'static str>,
    /// Dead-letter attempts before this one (0 for a first failure).
    pub previous_attempts: u32,
}

/// One object to write: its key and JSONL body.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// The S3 key: `<prefix>/<stage>/<topic>/<partition>/<yyyy>/<mm>/<dd>/<first>-<last>-<request
    /// id>[-<suffix>].jsonl`, offsets zero-padded to 20 digits, the date the failure's (UTC).
    pub key: String,
    /// One [`DeadLetter`] JSON line per record, each ending in `\n`, in offset order.
    pub body: String,
    /// The number of lines in `body` (records in the object).
    pub records: usize,
}

fn rfc3339(micros: i64) -> String {
    let mut s = String::with_capacity(27);
    temporal::write_timestamp(&mut s, micros, 'T');
    s.truncate(23); // milliseconds
    s.push('Z');
    s
}

/// A key-safe path segment: topics may hold characters S3 keys should not.
fn segment(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect()
}

/// Group failures into objects: one per (stage, topic, partition), lines in offset order,
/// objects in (stage, topic, partition) order. Topic, request id and suffix are written into
/// keys with every character but ASCII letters, digits, `.`, `_` and `-` replaced by `_`.
pub fn objects(prefix: &str, writer: &Writer<'_>, failed: &[Failed<'_>]) -> Vec<Object> {
    let mut groups: BTreeMap<(&'static str, &str, i64), Vec<&Failed<'_>>> = BTreeMap::new();
    for f in failed {
        groups.entry((f.stage.as_str(), f.record.topic.as_ref(), f.record.partition)).or_default().push(f);
    }
    let failed_at = rfc3339(writer.failed_at_micros);
    let (year, month, day) = (&failed_at[0..4], &failed_at[5..7], &failed_at[8..10]);
    let prefix = prefix.trim_end_matches('/');
    groups
        .into_iter()
        .map(|((stage, topic, partition), mut lines)| {
            lines.sort_by_key(|f| f.record.offset);
            let first = lines.first().map_or(0, |f| f.record.offset);
            let last = lines.last().map_or(0, |f| f.record.offset);
            let mut key = String::new();
            if !prefix.is_empty() {
                key.push_str(prefix);
                key.push('/');
            }
            let _ = write!(
                key,
                "{stage}/{}/{partition}/{year}/{month}/{day}/{first:020}-{last:020}-{}",
                segment(topic),
                segment(writer.request_id)
            );
            if let Some(suffix) = writer.key_suffix {
                key.push('-');
                key.push_str(&segment(suffix));
            }
            key.push_str(".jsonl");
            let mut body = String::new();
            for f in &lines {
                let line = DeadLetter {
                    format: FORMAT_VERSION,
                    topic: Cow::Borrowed(&f.record.topic),
                    partition: f.record.partition,
                    offset: f.record.offset,
                    timestamp: f.record.timestamp,
                    timestamp_type: f.record.timestamp_type.as_deref().map(Cow::Borrowed),
                    key: f.record.key.as_deref().map(Cow::Borrowed),
                    value: f.record.value.as_deref().map(Cow::Borrowed),
                    headers: f.record.headers.iter().map(borrowed_header).collect(),
                    key_schema_metadata: f.record.key_schema_metadata.as_ref().map(borrowed_metadata),
                    value_schema_metadata: f.record.value_schema_metadata.as_ref().map(borrowed_metadata),
                    stage: Cow::Borrowed(stage),
                    reasons: f.reasons.clone(),
                    error_class: f.error_class.map(Cow::Borrowed),
                    attempts: f.previous_attempts + 1,
                    failed_at: Cow::Borrowed(&failed_at),
                    function: Cow::Borrowed(writer.function),
                    request_id: Cow::Borrowed(writer.request_id),
                    mask_key_version: writer.mask_key_version.map(Cow::Borrowed),
                };
                body.push_str(&serde_json::to_string(&line).expect("dead letters serialise"));
                body.push('\n');
            }
            Object { key, body, records: lines.len() }
        })
        .collect()
}

/// A dead-letter line without its record: where the record came from and why it failed, for
/// `cdc dlq list` and `cdc dlq show`. It has no field for the key, the value or the headers
/// (the raw record, which holds values): reading a line into it passes over them unread.
#[derive(Debug, Clone, PartialEq)]
pub struct Coordinates<'a> {
    /// The record's topic.
    pub topic: Cow<'a, str>,
    /// The record's partition.
    pub partition: i64,
    /// The record's offset.
    pub offset: i64,
    /// The record's Kafka timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// The stage that rejected it.
    pub stage: Stage,
    /// Every (column or record, rule) pair it failed (rules this version does not know are
    /// left out, as [`read`] does).
    pub reasons: Vec<Reason>,
    /// The database's error class, for a row the database refused.
    pub error_class: Option<Cow<'a, str>>,
    /// How many times it has been dead-lettered.
    pub attempts: u32,
    /// When it failed, as written (RFC 3339 UTC).
    pub failed_at: Cow<'a, str>,
    /// The function that wrote the line.
    pub function: Cow<'a, str>,
    /// The writing invocation's request id.
    pub request_id: Cow<'a, str>,
    /// The masking key's version the writer masked with, when known.
    pub mask_key_version: Option<Cow<'a, str>>,
}

/// A [`DeadLetter`] line as [`Coordinates`] read it: the same fields but the record's.
#[derive(Deserialize)]
struct CoordinatesLine<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
    partition: i64,
    offset: i64,
    timestamp: i64,
    #[serde(borrow)]
    stage: Cow<'a, str>,
    #[serde(deserialize_with = "known_reasons")]
    reasons: Vec<Reason>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    error_class: Option<Cow<'a, str>>,
    attempts: u32,
    #[serde(borrow)]
    failed_at: Cow<'a, str>,
    #[serde(borrow)]
    function: Cow<'a, str>,
    #[serde(borrow)]
    request_id: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    mask_key_version: Option<Cow<'a, str>>,
}

/// What an object holds, its records left out ([`summarize`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Summary<'a> {
    /// Our JSON Lines: one [`Coordinates`] per record, in the object's order.
    DeadLetters(Vec<Coordinates<'a>>),
    /// An event source mapping's on-failure record: its condition, invoke count and batches.
    OnFailure(super::on_failure::OnFailureSummary),
}

/// Read an object's body as [`read`] does, keeping only what says where its records came from
/// and why they failed: never a key, a value or a header. An on-failure record is summarized
/// from its `requestContext` and `KafkaBatchInfo` (with or without a payload).
///
/// Errors: [`ReadError::Line`] for the first line that is not a dead letter (a `stage` that is
/// none included); [`ReadError::OnFailure`] for an on-failure record that does not parse.
pub fn summarize(body: &str) -> Result<Summary<'_>, ReadError> {
    let trimmed = body.trim();
    if trimmed.starts_with('{') && trimmed.contains("\"requestContext\"") {
        match super::on_failure::summarize(trimmed) {
            Ok(summary) => return Ok(Summary::OnFailure(summary)),
            Err(e) => return summarize_lines(body).map_err(|_| e),
        }
    }
    summarize_lines(body)
}

fn summarize_lines(body: &str) -> Result<Summary<'_>, ReadError> {
    let mut lines = Vec::new();
    for (i, line) in body.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let unreadable = |message: String| ReadError::Line { line: i + 1, message };
        let read: CoordinatesLine<'_> =
            serde_json::from_str(line).map_err(|e| unreadable(crate::redact::parser_message(&e.to_string())))?;
        let stage = crate::metrics::STAGES
            .into_iter()
            .find(|s| s.as_str() == read.stage)
            .ok_or_else(|| unreadable("`stage` is not decode, route, validate, drift or load".into()))?;
        lines.push(Coordinates {
            topic: read.topic,
            partition: read.partition,
            offset: read.offset,
            timestamp: read.timestamp,
            stage,
            reasons: read.reasons,
            error_class: read.error_class,
            attempts: read.attempts,
            failed_at: read.failed_at,
            function: read.function,
            request_id: read.request_id,
            mask_key_version: read.mask_key_version,
        });
    }
    if lines.is_empty() && !body.trim().is_empty() {
        return Err(ReadError::Unknown("no lines".into()));
    }
    Ok(Summary::DeadLetters(lines))
}

/// What an object held.
#[derive(Debug)]
pub enum Contents<'a> {
    /// Our JSONL lines.
    DeadLetters(Vec<DeadLetter<'a>>),
    /// An event source mapping's on-failure record: the original event and how often Lambda
    /// tried it.
    OnFailure {
        /// The original invocation's MSK event, as JSON text (read it with
        /// [`on_failure_event`](super::on_failure_event)).
        event_json: String,
        /// `requestContext.approximateInvokeCount` (1 when absent).
        invoke_count: u32,
    },
}

/// An object that cannot be replayed. Messages name lines, fields and coordinates, never
/// content (parser messages go through [`crate::redact`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A line of a JSON Lines object that is not a [`DeadLetter`].
    #[error("line {line} is not a dead-letter record: {message}")]
    Line {
        /// The line number, from 1, blank lines counted.
        line: usize,
        /// The parser's message, values withheld.
        message: String,
    },
    /// Neither our lines nor an on-failure record.
    #[error("not a dead-letter object or an on-failure record: {0}")]
    Unknown(String),
    /// An on-failure record (it has `requestContext`) that does not parse as one.
    #[error("not a readable on-failure record: {0}")]
    OnFailure(String),
    /// An on-failure record that holds no event: only its coordinates. Nothing to replay; the
    /// records are still in the topic (within its retention) at those offsets.
    #[error(
        "on-failure record without a payload (condition {condition}): the batch is not in the object; \
         re-read it from the cluster while the topic retains it: {batches}"
    )]
    NoPayload {
        /// `requestContext.condition`, e.g. `MaximumPayloadSizeExceeded` (`unknown` when
        /// absent or not a plain name).
        condition: String,
        /// The batch's offsets from `KafkaBatchInfo`: `<topic>-<partition> offsets
        /// <first>-<last>`, comma-separated.
        batches: String,
    },
}

/// Parse an object's body: our JSON Lines, or one (compact or pretty-printed) on-failure
/// record, told apart by its top-level `requestContext`. An empty body is no lines.
///
/// Errors: [`ReadError::Line`] for the first line that is not a dead letter;
/// [`ReadError::OnFailure`] or [`ReadError::NoPayload`] for an on-failure record that cannot be
/// read or holds no event.
pub fn read(body: &str) -> Result<Contents<'_>, ReadError> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Ok(Contents::DeadLetters(Vec::new()));
    }
    // Our lines never name `requestContext` at the top level; a string of one could hold the
    // word (a header name), so a body that reads as neither keeps the on-failure error.
    if trimmed.starts_with('{') && trimmed.contains("\"requestContext\"") {
        match super::on_failure::read(trimmed) {
            Ok(contents) => return Ok(contents),
            Err(e @ ReadError::NoPayload { .. }) => return Err(e),
            Err(e) => return read_lines(body).map_err(|_| e),
        }
    }
    read_lines(body)
}

fn read_lines(body: &str) -> Result<Contents<'_>, ReadError> {
    let mut lines = Vec::new();
    for (i, line) in body.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let record: DeadLetter<'_> = serde_json::from_str(line)
            .map_err(|e| ReadError::Line { line: i + 1, message: crate::redact::parser_message(&e.to_string()) })?;
        lines.push(record);
    }
    if lines.is_empty() {
        return Err(ReadError::Unknown("no lines".into()));
    }
    Ok(Contents::DeadLetters(lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Rule;

    fn record(offset: i64) -> KafkaRecord<'static> {
        KafkaRecord {
            topic: "sqlsrv.db.dbo.t".into(),
            partition: 2,
            offset,
            timestamp: 1_795_000_000_123,
            timestamp_type: Some("CREATE_TIME".into()),
            key: Some("a2V5".into()),
            value: Some("dmFsdWU=".into()),
            headers: vec![Header { name: "h".into(), value: vec![104, 0xc3, 0xa9] }],
            key_schema_metadata: None,
            value_schema_metadata: None,
        }
    }

    /// `ingest`, request `req-1`, 2026-11-24 12:00 UTC, key version `v-7`.
    fn writer() -> Writer<'static> {
        Writer {
            function: "ingest",
            request_id: "req-1",
            failed_at_micros: 1_795_521_600_000_000,
            key_suffix: None,
            mask_key_version: Some("v-7"),
        }
    }

    #[test]
    fn objects_group_by_stage_and_partition_with_sortable_keys() {
        let records = [record(12), record(10), record(11)];
        let failed = vec![
            Failed {
                record: &records[0],
                stage: Stage::Validate,
                reasons: vec![Reason::column("ssn".into(), Rule::Pattern)],
                error_class: None,
                previous_attempts: 0,
            },
            Failed {
                record: &records[1],
                stage: Stage::Validate,
                reasons: vec![Reason::record(Rule::MissingKey)],
                error_class: None,
                previous_attempts: 0,
            },
            Failed {
                record: &records[2],
                stage: Stage::Load,
                reasons: vec![Reason::record(Rule::RejectedByDatabase)],
                error_class: Some("invalid_value"),
                previous_attempts: 2,
            },
        ];
        let writer = writer();
        let objects = objects("dead-letter/", &writer, &failed);
        assert_eq!(objects.len(), 2);
        assert_eq!(
            objects[0].key,
            "dead-letter/load/sqlsrv.db.dbo.t/2/2026/11/24/00000000000000000011-00000000000000000011-req-1.jsonl"
        );
        assert_eq!(
            objects[1].key,
            "dead-letter/validate/sqlsrv.db.dbo.t/2/2026/11/24/00000000000000000010-00000000000000000012-req-1.jsonl"
        );
        let Contents::DeadLetters(lines) = read(&objects[1].body).unwrap() else { panic!("dead letters") };
        assert_eq!(lines.iter().map(|l| l.offset).collect::<Vec<_>>(), vec![10, 12], "offset order");
        assert_eq!(lines[0].value.as_deref(), Some("dmFsdWU="), "value exactly as received");
        assert_eq!(lines[0].headers, vec![Header { name: "h".into(), value: vec![104, 0xc3, 0xa9] }]);
        assert_eq!(lines[0].attempts, 1);
        assert_eq!(lines[0].failed_at, "2026-11-24T12:00:00.000Z");
        let suffixed = super::objects("dead-letter", &Writer { key_suffix: Some("3"), ..writer.clone() }, &failed[2..]);
        assert!(suffixed[0].key.ends_with("-req-1-3.jsonl"), "{}", suffixed[0].key);
        let Contents::DeadLetters(load) = read(&objects[0].body).unwrap() else { panic!() };
        assert_eq!((load[0].attempts, load[0].error_class.as_deref()), (3, Some("invalid_value")));
        let back = load[0].to_record();
        assert_eq!((back.offset, back.key.as_deref(), back.timestamp), (11, Some("a2V5"), 1_795_000_000_123));
    }

    #[test]
    fn a_dead_letter_that_mentions_request_context_is_still_a_dead_letter() {
        let record =
            KafkaRecord { headers: vec![Header { name: "requestContext".into(), value: b"x".to_vec() }], ..record(7) };
        let failed = [Failed {
            record: &record,
            stage: Stage::Validate,
            reasons: vec![Reason::record(Rule::MissingKey)],
            error_class: None,
            previous_attempts: 0,
        }];
        let writer =
            Writer { function: "f", request_id: "r", failed_at_micros: 0, key_suffix: None, mask_key_version: None };
        let body = &objects("dead-letter", &writer, &failed)[0].body;
        assert!(body.contains("\"requestContext\""));
        let Contents::DeadLetters(lines) = read(body).unwrap() else { panic!("dead letters") };
        assert_eq!(lines[0].offset, 7);
        let two = format!("{body}{body}");
        let Contents::DeadLetters(lines) = read(&two).unwrap() else { panic!("dead letters") };
        assert_eq!(lines.len(), 2);
    }

    /// The header codec is the event's, both ways: a header goes MSK event → dead letter →
    /// replayed record byte for byte, signed or unsigned bytes alike, and a dead letter whose
    /// header holds a number that is no byte is refused rather than wrapped.
    #[test]
    fn headers_round_trip_from_the_event_through_a_dead_letter_to_the_replayed_record() {
        let event_json = r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":4,"timestamp":1,
            "headers":[{"h":[104,-61,-87]},{"signed":[-128,-1,0,127]},{"unsigned":[128,255]},{"h":[]}]}]}}"#;
        let event = crate::event::MskEvent::parse(event_json.as_bytes()).unwrap();
        let received = &event.records[0].1[0];
        let writer =
            Writer { function: "f", request_id: "r", failed_at_micros: 0, key_suffix: None, mask_key_version: None };
        let write = |record: &KafkaRecord<'_>| {
            let failed = [Failed {
                record,
                stage: Stage::Decode,
                reasons: vec![Reason::record(Rule::Json)],
                error_class: None,
                previous_attempts: 0,
            }];
            objects("dead-letter", &writer, &failed).remove(0).body
        };
        let body = write(received);
        let line: serde_json::Value = serde_json::from_str(body.trim_end()).unwrap();
        assert_eq!(
            line["headers"],
            serde_json::json!([{"h": [104, -61, -87]}, {"signed": [-128, -1, 0, 127]}, {"unsigned": [-128, -1]}, {"h": []}]),
            "Lambda's signed form, in order, duplicate names kept"
        );
        let Contents::DeadLetters(lines) = read(&body).unwrap() else { panic!("dead letters") };
        let replayed = lines[0].to_record();
        assert_eq!(replayed.headers, received.headers, "byte for byte");
        assert_eq!(replayed.headers[0].value, "hé".as_bytes());
        assert_eq!(replayed.headers[1].value, [0x80, 0xff, 0x00, 0x7f]);
        assert_eq!(replayed.headers[2].value, [0x80, 0xff]);
        assert_eq!(write(&replayed), body, "dead-lettered again, the same line");
        for not_a_byte in ["256", "-129", "300", "-200"] {
            let tampered = body.replace("[104,-61,-87]", &format!("[104,{not_a_byte},-87]"));
            assert_ne!(tampered, body);
            assert!(matches!(read(&tampered), Err(ReadError::Line { line: 1, .. })), "{not_a_byte} was read as a byte");
        }
    }

    #[test]
    fn a_summary_keeps_coordinates_and_reasons_and_never_the_record() {
        let records = [record(10), record(11)];
        let failed: Vec<Failed<'_>> = records
            .iter()
            .map(|record| Failed {
                record,
                stage: Stage::Validate,
                reasons: vec![Reason::column("ssn".into(), Rule::Pattern)],
                error_class: None,
                previous_attempts: 1,
            })
            .collect();
        let writer = writer();
        let body = &objects("dead-letter", &writer, &failed)[0].body;
        let Summary::DeadLetters(lines) = summarize(body).unwrap() else { panic!("dead letters") };
        assert_eq!(lines.iter().map(|l| l.offset).collect::<Vec<_>>(), [10, 11]);
        let first = &lines[0];
        assert_eq!(
            (first.topic.as_ref(), first.partition, first.stage, first.attempts),
            ("sqlsrv.db.dbo.t", 2, Stage::Validate, 2)
        );
        assert_eq!(first.reasons, vec![Reason::column("ssn".into(), Rule::Pattern)]);
        assert_eq!(
            (first.failed_at.as_ref(), first.mask_key_version.as_deref()),
            ("2026-11-24T12:00:00.000Z", Some("v-7"))
        );
        let shown = format!("{lines:?}");
        for raw in ["a2V5", "dmFsdWU="] {
            assert!(!shown.contains(raw), "the record is not read: {shown}");
        }
        let tampered = body.replacen("\"stage\":\"validate\"", "\"stage\":\"Jane Doe\"", 1);
        let err = summarize(&tampered).unwrap_err();
        assert!(matches!(err, ReadError::Line { line: 1, .. }) && !err.to_string().contains("Jane"), "{err}");
        assert_eq!(summarize("").unwrap(), Summary::DeadLetters(Vec::new()));
    }

    #[test]
    fn rejects_garbage_with_the_line_number() {
        let err = read("{\"format\":1}\nnot json\n").unwrap_err();
        assert!(matches!(err, ReadError::Line { line: 1, .. }), "{err}");
    }
}
