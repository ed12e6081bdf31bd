//! `MskEvent::parse` on arbitrary bytes.
//!
//! Invariants:
//! - parsing never panics, whatever the bytes (an error names a path);
//! - an event that parses can be ordered, base64-decoded into a `DecodedBatch`, and
//!   re-serialised with `serde_json::to_vec`; the re-serialised text parses again and
//!   gives the same records (topic, partition, offset, timestamp, key, value, headers)
//!   in the same order.
#![no_main]

use cdc_pipeline::batch::Payload;
use cdc_pipeline::event::KafkaRecord;
use cdc_pipeline::{DecodedBatch, MskEvent};
use libfuzzer_sys::fuzz_target;

type Coordinates<'a> = (&'a str, i64, i64, i64, Option<&'a str>, Option<&'a str>, Vec<(&'a str, &'a [u8])>);

fn coordinates<'a>(record: &'a KafkaRecord<'a>) -> Coordinates<'a> {
    (
        &record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        record.key.as_deref(),
        record.value.as_deref(),
        record.headers.iter().map(|h| (h.name.as_ref(), h.value.as_slice())).collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let event = match MskEvent::parse(data) {
        Ok(event) => event,
        Err(err) => {
            assert!(!err.path.is_empty(), "a parse error names a path: {err}");
            return;
        }
    };

    let ordered = event.records_in_order();
    assert_eq!(ordered.len(), event.record_count());
    for pair in ordered.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            (a.topic.as_ref(), a.partition, a.offset) <= (b.topic.as_ref(), b.partition, b.offset),
            "records_in_order is sorted"
        );
    }

    let batch = DecodedBatch::from_event(&event);
    assert_eq!(batch.len(), ordered.len());
    let mut decoded = 0;
    for i in 0..batch.len() {
        let record = batch.records()[i];
        for (text, payload) in [(record.key.as_deref(), batch.key(i)), (record.value.as_deref(), batch.value(i))] {
            match (text, payload) {
                (None, Payload::Absent) | (Some(_), Payload::Invalid) => {}
                (Some(text), Payload::Bytes(bytes)) => {
                    // base64 never decodes to more than 3/4 of its length.
                    assert!(bytes.len() <= text.len() / 4 * 3 + 3);
                    decoded += bytes.len();
                }
                (text, payload) => panic!("payload {payload:?} does not match text {text:?}"),
            }
        }
    }
    assert_eq!(decoded, batch.decoded_bytes());

    let text = serde_json::to_vec(&event).expect("a parsed event serialises");
    let again = match MskEvent::parse(&text) {
        Ok(again) => again,
        Err(err) => panic!("re-serialised event does not parse: {err}\n{}", String::from_utf8_lossy(&text)),
    };
    assert_eq!(again.record_count(), event.record_count());
    assert_eq!(again.records.len(), event.records.len(), "same topic-partition groups");
    for ((name_a, group_a), (name_b, group_b)) in event.records.iter().zip(&again.records) {
        assert_eq!(name_a, name_b);
        assert_eq!(group_a.len(), group_b.len());
    }
    let first: Vec<Coordinates<'_>> = event.records_in_order().into_iter().map(coordinates).collect();
    let second: Vec<Coordinates<'_>> = again.records_in_order().into_iter().map(coordinates).collect();
    assert_eq!(first, second, "re-serialised event gives the same records");
    assert_eq!(again.event_source, event.event_source);
    assert_eq!(again.event_source_arn, event.event_source_arn);
    assert_eq!(again.bootstrap_servers, event.bootstrap_servers);
});
