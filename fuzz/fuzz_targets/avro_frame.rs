//! A schema-registry frame (arbitrary bytes) through `avro::frame::parse` and, with one of a
//! few fixed Debezium-like Avro schemas, `AvroSchema::to_connect_json`, then the text through
//! the JSON decoder (`Pipeline::transform` on a one-record batch whose value is the frame).
//!
//! Input layout: one control byte (bits 0-1: which schema; bit 2: the bytes are a bare datum
//! the event source mapping's registry integration delivered, its schema id in
//! `valueSchemaMetadata`, rather than a frame), then the bytes.
//!
//! Invariants: nothing panics; a text `to_connect_json` returns is JSON with `schema` and
//! `payload`; `DecodedBatch::read_avro` leaves exactly one outcome for the record, and a reject
//! has a reason.
#![no_main]

use std::sync::{Arc, LazyLock};

use cdc_pipeline::avro::connect::AvroSchema;
use cdc_pipeline::avro::frame;
use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Outcome, Pipeline};
use libfuzzer_sys::fuzz_target;

const SCHEMAS: [&str; 4] = [
    r#"{"type":"record","name":"Envelope","namespace":"f.db.dbo.t","connect.name":"f.db.dbo.t.Envelope","fields":[
        {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
            {"name":"id","type":"int"},
            {"name":"d","type":["null",{"type":"bytes","logicalType":"decimal","precision":10,"scale":2,
                "connect.name":"org.apache.kafka.connect.data.Decimal","connect.parameters":{"scale":"2"}}],"default":null},
            {"name":"ts","type":["null",{"type":"long","connect.name":"io.debezium.time.MicroTimestamp"}],"default":null}]}],"default":null},
        {"name":"after","type":["null","Value"],"default":null},
        {"name":"source","type":{"type":"record","name":"Source","fields":[
            {"name":"connector","type":"string"},{"name":"commit_lsn","type":["null","string"],"default":null},
            {"name":"change_lsn","type":["null","string"],"default":null}]}},
        {"name":"op","type":"string"},{"name":"ts_ms","type":["null","long"],"default":null}]}"#,
    r#"{"type":"record","name":"K","connect.name":"K","fields":[{"name":"id","type":"long"},{"name":"m","type":{"type":"map","values":"double"}}]}"#,
    r#"{"type":"record","name":"A","connect.name":"A","fields":[{"name":"xs","type":{"type":"array","items":["null","string"]}},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},{"name":"f","type":{"type":"fixed","name":"F","size":4}}]}"#,
    r#"{"type":"record","name":"R","connect.name":"R","fields":[{"name":"inner","type":["null",{"type":"record","name":"I","fields":[
        {"name":"n","type":{"type":"int","connect.type":"int16"}}]}],"default":null},{"name":"v","type":"float"}]}"#,
];

static PARSED: LazyLock<Vec<Arc<AvroSchema>>> =
    LazyLock::new(|| SCHEMAS.iter().map(|s| Arc::new(AvroSchema::parse("fuzz", s).expect("a fixed schema"))).collect());
static PIPELINE: LazyLock<Pipeline> = LazyLock::new(|| {
    Pipeline::new(Arc::new(Config::default_routing()), Some(b"fuzz-avro-masking-key-0123456789abcdef")).unwrap()
});

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else { return };
    let schema = &PARSED[usize::from(control & 3)];
    if let Ok(frame) = frame::parse(bytes)
        && let Ok(text) = schema.to_connect_json(&frame.datum)
    {
        let json: serde_json::Value = serde_json::from_str(&text).expect("to_connect_json writes JSON");
        assert!(json.get("schema").is_some() && json.get("payload").is_some(), "{text}");
    }
    let text = if control & 4 == 0 {
        let mut record = RecordSpec::new("f.db.dbo.t", 0, 0, 1, Some("{\"id\":1}"), None);
        record.value = Some(bytes.to_vec());
        msk_event_text(&[record])
    } else {
        use base64::Engine as _;
        let value = base64::engine::general_purpose::STANDARD.encode(bytes);
        serde_json::json!({"records": {"f.db.dbo.t-0": [{"topic": "f.db.dbo.t", "partition": 0, "offset": 0,
            "timestamp": 1, "key": null, "value": value, "valueSchemaMetadata": {"dataFormat": "AVRO", "schemaId": "1"}}]}})
        .to_string()
    };
    let event = MskEvent::parse(text.as_bytes()).expect("a well-formed event");
    let mut batch = DecodedBatch::from_event(&event);
    batch.read_avro(&|_| Some(Ok(schema.clone())));
    let outcomes = PIPELINE.transform(&batch, &mut Caches::default(), 0);
    assert_eq!(outcomes.len(), 1);
    if let Outcome::Reject(reject) = &outcomes[0] {
        assert!(!reject.reasons.is_empty());
    }
});
