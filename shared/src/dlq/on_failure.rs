//! What Lambda writes to an S3 (or Kafka-topic) on-failure destination for an MSK or
//! self-managed Kafka event source mapping, read for replay: the original event, or an error
//! naming the offsets when the record does not hold it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::format::{Contents, ReadError};
use crate::event::{EventParseError, MskEvent};

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

/// One on-failure record (the caller saw a top-level `requestContext`).
pub(super) fn read(body: &str) -> Result<Contents<'_>, ReadError> {
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

/// An on-failure record without its payload: what `cdc dlq` shows of it. Every text is a
/// coordinate or AWS's condition name (letters, digits, `.`, `_`, `-`; `?` where the record
/// holds anything else), never the record's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnFailureSummary {
    /// `requestContext.condition` (`RetryAttemptsExhausted`, `MaximumPayloadSizeExceeded`;
    /// `unknown` when absent).
    pub condition: String,
    /// `requestContext.approximateInvokeCount` (1 when absent): the batch's attempts.
    pub invoke_count: u32,
    /// `KafkaBatchInfo.recordsInfo`: (`<topic>-<partition>`, first offset, last offset), in
    /// key order.
    pub batches: Vec<(String, String, String)>,
    /// Whether the record holds the event (`payload`), so that a replay can take it up.
    pub has_payload: bool,
}

/// [`OnFailureSummary`] of one on-failure record (the caller saw a top-level
/// `requestContext`).
pub(super) fn summarize(body: &str) -> Result<OnFailureSummary, ReadError> {
    let record: OnFailureRecord<'_> =
        serde_json::from_str(body).map_err(|e| ReadError::OnFailure(crate::redact::parser_message(&e.to_string())))?;
    let batches = record.kafka_batch_info.map(|info| info.records_info).unwrap_or_default();
    Ok(OnFailureSummary {
        condition: record.request_context.condition.as_deref().and_then(coordinate).unwrap_or("unknown").to_string(),
        invoke_count: record.request_context.approximate_invoke_count.unwrap_or(1),
        batches: batches
            .iter()
            .map(|(tp, r)| (coordinate(tp).unwrap_or("?").to_string(), offset_text(&r.first), offset_text(&r.last)))
            .collect(),
        has_payload: record.payload.is_some_and(|p| p.get().trim() != "null"),
    })
}

/// Parse the event held by an on-failure record (kept for error messages).
pub fn on_failure_event(event_json: &str) -> Result<MskEvent<'_>, EventParseError> {
    MskEvent::parse(event_json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlq::read;

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

    const DOCUMENTED_S3: &str = include_str!("../../../events/on-failure/s3-retry-attempts-exhausted.json");
    const DOCUMENTED_TOO_LARGE: &str = include_str!("../../../events/on-failure/s3-maximum-payload-size-exceeded.json");
    const DOCUMENTED_KAFKA_TOPIC: &str = include_str!("../../../events/on-failure/kafka-topic-destination.json");
    const MULTI_PARTITION_EVENT: &str = include_str!("../../../events/07-patientinfo-multi-partition.json");
    const CREATE_EVENT: &str = include_str!("../../../events/02-patientinfo-create.json");

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
    fn an_on_failure_summary_names_the_batches_never_the_payload() {
        use crate::dlq::{Summary, summarize};
        let Summary::OnFailure(summary) = summarize(DOCUMENTED_S3).unwrap() else { panic!("on-failure") };
        assert_eq!(
            (summary.condition.as_str(), summary.invoke_count, summary.has_payload),
            ("RetryAttemptsExhausted", 3, true)
        );
        assert!(!summary.batches.is_empty());
        let Summary::OnFailure(summary) = summarize(DOCUMENTED_TOO_LARGE).unwrap() else { panic!("on-failure") };
        assert_eq!(summary.condition, "MaximumPayloadSizeExceeded");
        assert!(!summary.has_payload);
        assert_eq!(
            summary.batches,
            [("sqlsrv.sampledb.dbo.patientinfo-0".to_string(), "0".to_string(), "2".to_string())]
        );
        let mut named = json(DOCUMENTED_S3);
        named["requestContext"]["condition"] = json(r#""Jane Doe 123-45-6789""#);
        let Summary::OnFailure(summary) = summarize(&named.to_string()).unwrap() else { panic!("on-failure") };
        assert_eq!(summary.condition, "unknown", "not a condition name: not repeated");
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
}
