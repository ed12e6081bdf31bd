//! The S3 dead-letter store: JSON Lines objects, one per invocation, stage and
//! topic-partition, under
//! `<prefix>/<stage>/<topic>/<partition>/<yyyy>/<mm>/<dd>/<first>-<last>-<request id>.jsonl`
//! (offsets zero-padded to 20 digits, so key order is offset order).
//!
//! Each line carries the record exactly as received (base64 key and value, headers,
//! coordinates) and why it failed (stage, column and rule names, error class) — never a
//! decoded value. The reader also accepts what an MSK or self-managed Kafka event source
//! mapping writes to an S3 on-failure destination: one JSON object whose `payload` is the
//! whole original event as an escaped JSON string (see [`read`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use serde::{Deserialize, Serialize};

use crate::event::{Header, KafkaRecord, MskEvent, borrowed_opt_str};
use crate::outcome::{Reason, Stage};
use crate::temporal;

pub const FORMAT_VERSION: u32 = 1;

/// One line of a dead-letter object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter<'a> {
    pub format: u32,
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    pub partition: i64,
    pub offset: i64,
    pub timestamp: i64,
    #[serde(rename = "timestampType", default, borrow, deserialize_with = "borrowed_opt_str")]
    pub timestamp_type: Option<Cow<'a, str>>,
    /// Base64, exactly as received.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub key: Option<Cow<'a, str>>,
    /// Base64, exactly as received.
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    pub value: Option<Cow<'a, str>>,
    #[serde(default, with = "headers_format")]
    pub headers: Vec<(String, Vec<u8>)>,
    /// The stage that rejected the record: `decode`, `route`, `validate`, `drift` or `load`
    /// (records replayed from an on-failure destination are dead-lettered by the stage that
    /// rejects them in the replay).
    pub stage: Cow<'a, str>,
    pub reasons: Vec<Reason>,
    #[serde(default)]
    pub error_class: Option<Cow<'a, str>>,
    /// How many times the record has been dead-lettered (1 on first failure).
    pub attempts: u32,
    /// RFC 3339 UTC.
    pub failed_at: Cow<'a, str>,
    pub function: Cow<'a, str>,
    pub request_id: Cow<'a, str>,
    /// The masking key's version (Secrets Manager `VersionId`) the writer masked with: the
    /// raw record is here, and a replay masks it with the key of its own cold start.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none", deserialize_with = "borrowed_opt_str")]
    pub mask_key_version: Option<Cow<'a, str>>,
}

mod headers_format {
    use serde::Deserialize;
    use serde::de::Deserializer;
    use serde::ser::{SerializeSeq, Serializer};
    use std::collections::BTreeMap;

    /// Lambda's shape: a list of single-entry maps of name → signed bytes.
    pub fn serialize<S: Serializer>(headers: &[(String, Vec<u8>)], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(headers.len()))?;
        for (name, value) in headers {
            let signed: Vec<i8> = value.iter().map(|&b| b as i8).collect();
            let mut entry = BTreeMap::new();
            entry.insert(name.as_str(), signed);
            seq.serialize_element(&entry)?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, Vec<u8>)>, D::Error> {
        let list: Vec<BTreeMap<String, Vec<i16>>> = Vec::deserialize(d)?;
        Ok(list
            .into_iter()
            .flat_map(|m| m.into_iter().map(|(k, v)| (k, v.into_iter().map(|n| n as u8).collect())))
            .collect())
    }
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
            headers: self.headers.iter().map(|(n, v)| Header { name: Cow::Borrowed(n), value: v.clone() }).collect(),
        }
    }
}

/// Who is writing, for the lines and the object keys.
#[derive(Debug, Clone)]
pub struct Writer<'c> {
    pub function: &'c str,
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
    pub record: &'r KafkaRecord<'r>,
    pub stage: Stage,
    pub reasons: Vec<Reason>,
    pub error_class: Option<&'static str>,
    /// Dead-letter attempts before this one (0 for a first failure).
    pub previous_attempts: u32,
}

/// One object to write: its key and JSONL body.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub key: String,
    pub body: String,
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

/// Group failures into objects: one per (stage, topic, partition), lines in offset order.
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
                    headers: f.record.headers.iter().map(|h| (h.name.to_string(), h.value.clone())).collect(),
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

/// What an object held.
#[derive(Debug)]
pub enum Contents<'a> {
    /// Our JSONL lines.
    DeadLetters(Vec<DeadLetter<'a>>),
    /// An event source mapping's on-failure record: the original event and how often Lambda
    /// tried it.
    OnFailure { event_json: String, invoke_count: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("line {line} is not a dead-letter record: {message}")]
    Line { line: usize, message: String },
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
    NoPayload { condition: String, batches: String },
}

/// What Lambda writes to an S3 on-failure destination for an MSK or self-managed Kafka event
/// source mapping (<https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html>,
/// "S3 destination example invocation record"): `requestContext`, `responseContext` (null for
/// `MaximumPayloadSizeExceeded`), `version`, `timestamp`, `KafkaBatchInfo` and `payload`, "the
/// original invocation record as an escaped JSON string". A Kafka-topic destination carries
/// the event as a JSON object instead
/// (<https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure-destination.html>); both
/// are read. Fields not named here are ignored.
#[derive(Deserialize)]
struct OnFailureRecord<'a> {
    #[serde(rename = "requestContext")]
    request_context: OnFailureContext,
    #[serde(rename = "KafkaBatchInfo", default)]
    kafka_batch_info: Option<KafkaBatchInfo>,
    #[serde(default, borrow)]
    payload: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct OnFailureContext {
    #[serde(default)]
    condition: Option<String>,
    #[serde(rename = "approximateInvokeCount", default)]
    approximate_invoke_count: Option<u32>,
}

#[derive(Deserialize)]
struct KafkaBatchInfo {
    /// `"<topic>-<partition>"` → the batch's offsets there (S3, SNS and SQS destinations).
    #[serde(rename = "recordsInfo", default)]
    records_info: BTreeMap<String, RecordsInfo>,
}

#[derive(Deserialize)]
struct RecordsInfo {
    #[serde(rename = "firstRecordOffset", default)]
    first: Option<serde_json::Value>,
    #[serde(rename = "lastRecordOffset", default)]
    last: Option<serde_json::Value>,
}

/// Text fit for an error message: record coordinates and AWS's condition names only
/// (letters, digits, `.`, `_`, `-`), never anything else from the object.
fn coordinate(text: &str) -> Option<&str> {
    let fits = !text.is_empty()
        && text.len() <= 255
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    fits.then_some(text)
}

fn offset_text(value: &Option<serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(s)) => coordinate(s).unwrap_or("?").to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => "?".into(),
    }
}

fn read_on_failure(body: &str) -> Result<Contents<'_>, ReadError> {
    let record: OnFailureRecord<'_> =
        serde_json::from_str(body).map_err(|e| ReadError::OnFailure(crate::redact::parser_message(&e.to_string())))?;
    let invoke_count = record.request_context.approximate_invoke_count.unwrap_or(1);
    let event_json = match record.payload.map(|p| p.get().trim_start()) {
        Some(text) if text.starts_with('"') => serde_json::from_str::<String>(text)
            .map_err(|e| ReadError::OnFailure(format!("payload: {}", crate::redact::parser_message(&e.to_string()))))?,
        Some(text) if text.starts_with('{') => text.to_string(),
        None => {
            let condition =
                record.request_context.condition.as_deref().and_then(coordinate).unwrap_or("unknown").to_string();
            let batches = record
                .kafka_batch_info
                .map(|info| {
                    info.records_info
                        .iter()
                        .map(|(tp, r)| {
                            let tp = coordinate(tp).unwrap_or("?");
                            format!("{tp} offsets {}-{}", offset_text(&r.first), offset_text(&r.last))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "offsets the record does not give".into());
            return Err(ReadError::NoPayload { condition, batches });
        }
        Some(_) => return Err(ReadError::OnFailure("payload is neither a JSON string nor an object".into())),
    };
    Ok(Contents::OnFailure { event_json, invoke_count })
}

/// Parse an object's body: our JSON Lines, or one (compact or pretty-printed) on-failure
/// record, told apart by its top-level `requestContext`.
pub fn read(body: &str) -> Result<Contents<'_>, ReadError> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Ok(Contents::DeadLetters(Vec::new()));
    }
    // Our lines never name `requestContext` at the top level; a string of one could hold the
    // word (a header name), so a body that reads as neither keeps the on-failure error.
    if trimmed.starts_with('{') && trimmed.contains("\"requestContext\"") {
        match read_on_failure(trimmed) {
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

/// Parse the event held by an on-failure record (kept for error messages).
pub fn on_failure_event(event_json: &str) -> Result<MskEvent<'_>, crate::event::EventParseError> {
    MskEvent::parse(event_json.as_bytes())
}

/// Where dead letters go and how they are encrypted.
#[derive(Debug, Clone)]
pub struct Store {
    pub client: Client,
    pub bucket: String,
    pub prefix: String,
    /// Replayed objects move here (`<archive prefix>/<original key>`).
    pub archive_prefix: String,
    /// Records dead-lettered more than the replay's attempts cap go here instead of `prefix`,
    /// out of every default replay's way (`<quarantine prefix>/<stage>/…`).
    pub quarantine_prefix: String,
    /// SSE-KMS with this key (and an S3 Bucket Key) on every write. `None`: no encryption
    /// header, so the bucket's default encryption applies — the template's SSE-KMS key; S3
    /// encrypts every new object with SSE-S3 at least
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/default-encryption-faq.html>).
    pub kms_key_id: Option<String>,
}

/// One page of a listing: keys in key order with their last-modified time (epoch seconds),
/// and the token of the next page.
#[derive(Debug, Default)]
pub struct Page {
    pub keys: Vec<(String, i64)>,
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} of s3://{bucket}/{key} failed: {code}")]
pub struct StoreError {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub code: String,
}

fn s3_error<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError {
    use aws_sdk_s3::error::SdkError;
    let code = match &err {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("Unknown").to_string(),
        SdkError::TimeoutError(_) => "Timeout".into(),
        SdkError::DispatchFailure(_) => "DispatchFailure".into(),
        SdkError::ResponseError(_) => "UnreadableResponse".into(),
        _ => "Unknown".into(),
    };
    StoreError { operation, bucket: bucket.into(), key: key.into(), code }
}

impl Store {
    fn with_encryption(
        &self,
        request: aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        match &self.kms_key_id {
            Some(key) => {
                request.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(key).bucket_key_enabled(true)
            }
            None => request,
        }
    }

    /// Write one object, encrypted at rest.
    pub async fn put(&self, object: &Object) -> Result<(), StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object.key)
            .content_type("application/x-ndjson")
            .body(ByteStream::from(object.body.clone().into_bytes()));
        self.with_encryption(request).send().await.map_err(|e| s3_error("PutObject", &self.bucket, &object.key, e))?;
        Ok(())
    }

    /// Write every object, or none: if one write fails, every object of the set is deleted
    /// again (best effort) so that the retried batch does not leave a second copy. Failed
    /// writes are deleted too: a write whose answer was lost may have been stored, and
    /// deleting a key that does not exist is harmless.
    pub async fn put_all(&self, objects: &[Object]) -> Result<(), StoreError> {
        let results = futures_util::future::join_all(objects.iter().map(|o| self.put(o))).await;
        if let Some(error) = results.iter().find_map(|r| r.as_ref().err()) {
            let error = StoreError {
                operation: error.operation,
                bucket: error.bucket.clone(),
                key: error.key.clone(),
                code: error.code.clone(),
            };
            let deletes = objects.iter().map(|object| self.delete(&self.bucket, &object.key));
            let _ = futures_util::future::join_all(deletes).await;
            return Err(error);
        }
        Ok(())
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<String, StoreError> {
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("GetObject", bucket, key, e))?;
        let bytes = output.body.collect().await.map_err(|_| StoreError {
            operation: "GetObject",
            bucket: bucket.into(),
            key: key.into(),
            code: "BodyReadFailed".into(),
        })?;
        String::from_utf8(bytes.into_bytes().to_vec()).map_err(|_| StoreError {
            operation: "GetObject",
            bucket: bucket.into(),
            key: key.into(),
            code: "NotUtf8".into(),
        })
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", bucket, key, e))?;
        Ok(())
    }

    /// Move an object under the archive prefix: copy (encrypted), then delete the original.
    pub async fn archive(&self, bucket: &str, key: &str) -> Result<String, StoreError> {
        let target = format!("{}/{key}", self.archive_prefix.trim_end_matches('/'));
        let source = format!("{bucket}/{}", url_encode_key(key));
        let request = self.client.copy_object().bucket(bucket).key(&target).copy_source(source);
        // Without an encryption header the copy takes the bucket's default encryption, not the
        // source object's (CopyObject, "Server-side encryption").
        let request = match &self.kms_key_id {
            Some(kms) => {
                request.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(kms).bucket_key_enabled(true)
            }
            None => request,
        };
        request.send().await.map_err(|e| s3_error("CopyObject", bucket, &target, e))?;
        self.delete(bucket, key).await?;
        Ok(target)
    }

    /// One page (at most `max_keys`; S3 caps a page at 1,000) of the keys under `prefix` after
    /// `start_after`, from the page `token` names (`None`: the first). Pages, not the whole
    /// listing: a replay starts on the first page however many objects wait.
    pub async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
        max_keys: i32,
    ) -> Result<Page, StoreError> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .set_continuation_token(token.map(str::to_string))
            .max_keys(max_keys)
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", bucket, prefix, e))?;
        let keys = output
            .contents()
            .iter()
            .filter_map(|o| o.key().map(|k| (k.to_string(), o.last_modified().map_or(0, |t| t.secs()))))
            .collect();
        let next = match output.next_continuation_token() {
            Some(next) if output.is_truncated() == Some(true) => Some(next.to_string()),
            _ => None,
        };
        Ok(Page { keys, next })
    }
}

/// Percent-encode a key for `CopySource` (slashes kept).
fn url_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn objects_group_by_stage_and_partition_with_sortable_keys() {
        let records = [record(12), record(10), record(11)];
        let failed = vec![
            Failed {
                record: &records[0],
                stage: Stage::Validate,
                reasons: vec![Reason::column("ssn".into(), "pattern")],
                error_class: None,
                previous_attempts: 0,
            },
            Failed {
                record: &records[1],
                stage: Stage::Validate,
                reasons: vec![Reason::record("missing_key")],
                error_class: None,
                previous_attempts: 0,
            },
            Failed {
                record: &records[2],
                stage: Stage::Load,
                reasons: vec![Reason::record("rejected_by_database")],
                error_class: Some("invalid_value"),
                previous_attempts: 2,
            },
        ];
        let writer = Writer {
            function: "ingest",
            request_id: "req-1",
            failed_at_micros: 1_795_521_600_000_000,
            key_suffix: None,
            mask_key_version: Some("v-7"),
        };
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
        assert_eq!(lines[0].headers, vec![("h".to_string(), vec![104, 0xc3, 0xa9])]);
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
    fn reads_an_on_failure_record() {
        let body = r#"{
          "requestContext": {"requestId": "316aa6d0", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:ingest",
                             "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 4},
          "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
          "version": "1.0", "timestamp": "2019-11-14T00:38:06.021Z",
          "KafkaBatchInfo": {"batchSize": 1, "recordsInfo": {"t-0": {"firstRecordOffset": "49601189658422359378836298521827638475320189012309704722"}}},
          "payload": "{\"eventSource\":\"aws:kafka\",\"records\":{\"t-0\":[{\"topic\":\"t\",\"partition\":0,\"offset\":5,\"timestamp\":1}]}}"
        }"#;
        let Contents::OnFailure { event_json, invoke_count } = read(body).unwrap() else { panic!("on-failure") };
        assert_eq!(invoke_count, 4);
        assert_eq!(on_failure_event(&event_json).unwrap().records[0].1[0].offset, 5);
    }

    const DOCUMENTED_S3: &str = include_str!("../../events/on-failure/s3-retry-attempts-exhausted.json");
    const DOCUMENTED_TOO_LARGE: &str = include_str!("../../events/on-failure/s3-maximum-payload-size-exceeded.json");
    const DOCUMENTED_KAFKA_TOPIC: &str = include_str!("../../events/on-failure/kafka-topic-destination.json");
    const MULTI_PARTITION_EVENT: &str = include_str!("../../events/07-patientinfo-multi-partition.json");
    const CREATE_EVENT: &str = include_str!("../../events/02-patientinfo-create.json");

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn reads_the_documented_s3_record_pretty_printed_and_on_one_line() {
        assert!(DOCUMENTED_S3.lines().count() > 20, "the fixture is pretty-printed, as AWS shows it");
        let compact = serde_json::to_string(&json(DOCUMENTED_S3)).unwrap();
        assert_eq!(compact.lines().count(), 1);
        for body in [DOCUMENTED_S3, compact.as_str()] {
            let Contents::OnFailure { event_json, invoke_count } = read(body).unwrap() else { panic!("on-failure") };
            assert_eq!(invoke_count, 3, "requestContext.approximateInvokeCount");
            assert_eq!(json(&event_json), json(MULTI_PARTITION_EVENT), "the escaped payload is the whole event");
            let event = on_failure_event(&event_json).unwrap();
            assert_eq!(event.record_count(), 7);
        }
    }

    #[test]
    fn reads_a_kafka_topic_destination_record_whose_payload_is_an_object() {
        assert!(json(DOCUMENTED_KAFKA_TOPIC)["payload"].is_object());
        let Contents::OnFailure { event_json, invoke_count } = read(DOCUMENTED_KAFKA_TOPIC).unwrap() else {
            panic!("on-failure")
        };
        assert_eq!(invoke_count, 3);
        assert_eq!(json(&event_json), json(CREATE_EVENT));
        assert_eq!(on_failure_event(&event_json).unwrap().records[0].1[0].offset, 3);
    }

    #[test]
    fn a_record_without_its_payload_is_an_error_that_names_the_offsets_only() {
        let err = read(DOCUMENTED_TOO_LARGE).unwrap_err();
        assert!(matches!(err, ReadError::NoPayload { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("condition MaximumPayloadSizeExceeded"), "{message}");
        assert!(message.contains("sqlsrv.sampledb.dbo.patientinfo-0 offsets 0-2"), "{message}");
        // With the payload, the same record (responseContext null) replays like any other.
        let mut with_payload = json(DOCUMENTED_TOO_LARGE);
        with_payload["payload"] = serde_json::Value::String(MULTI_PARTITION_EVENT.into());
        let Contents::OnFailure { event_json, .. } = read(&with_payload.to_string()).unwrap() else { panic!() };
        assert_eq!(event_json, MULTI_PARTITION_EVENT);
        // `"payload": null` is no payload either.
        with_payload["payload"] = serde_json::Value::Null;
        assert!(matches!(read(&with_payload.to_string()), Err(ReadError::NoPayload { .. })));
    }

    #[test]
    fn unreadable_on_failure_records_are_errors_without_their_values() {
        let mut record = json(DOCUMENTED_S3);
        record["payload"] = json("987654321");
        let err = read(&record.to_string()).unwrap_err();
        assert!(matches!(err, ReadError::OnFailure(_)), "{err}");
        record["payload"] = json(r#""{\"records\": 5""#);
        let Contents::OnFailure { event_json, .. } = read(&record.to_string()).unwrap() else { panic!() };
        assert!(on_failure_event(&event_json).is_err(), "a payload that is not an event fails at replay");
        record["requestContext"]["approximateInvokeCount"] = json(r#""Jane Doe""#);
        let err = read(&record.to_string()).unwrap_err();
        assert!(matches!(err, ReadError::OnFailure(_)), "{err}");
        assert!(!err.to_string().contains("Jane"), "{err}");
        let truncated = &DOCUMENTED_S3[..DOCUMENTED_S3.len() / 2];
        assert!(matches!(read(truncated), Err(ReadError::OnFailure(_))), "not a JSONL line error");
    }

    #[test]
    fn a_dead_letter_that_mentions_request_context_is_still_a_dead_letter() {
        let record =
            KafkaRecord { headers: vec![Header { name: "requestContext".into(), value: b"x".to_vec() }], ..record(7) };
        let failed = [Failed {
            record: &record,
            stage: Stage::Validate,
            reasons: vec![Reason::record("missing_key")],
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

    #[test]
    fn rejects_garbage_with_the_line_number() {
        let err = read("{\"format\":1}\nnot json\n").unwrap_err();
        assert!(matches!(err, ReadError::Line { line: 1, .. }), "{err}");
    }

    #[test]
    fn copy_source_keys_are_encoded() {
        assert_eq!(url_encode_key("a/b c+d.jsonl"), "a/b%20c%2Bd.jsonl");
    }
}
