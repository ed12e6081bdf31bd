//! Every sample event in `events/` through the pipeline, checked against an independent
//! reading of the same file and against the `cdc explain` contract.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cdc_pipeline::explain::explain;
use cdc_pipeline::plan::plan;
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};
use cdc_tests::{RawRecord, event_files, events_dir, example_config, hmac_hex, raw_records};
use serde_json::{Value, json};

const KEY: &[u8] = b"fixture-test-masking-key-0123456789abcdef";
/// 2026-11-24T12:00:00Z: the reference for `not_future`.
const NOW_MICROS: i64 = 1_795_521_600_000_000;

fn pipeline(config: Option<&Path>) -> Pipeline {
    let config = config.map_or_else(Config::default_routing, |p| Config::load(p).expect("example config is valid"));
    Pipeline::new(Arc::new(config), Some(KEY)).expect("pipeline")
}

/// The explain lines for a file, as JSON values.
fn explain_file(path: &Path, pipeline: &Pipeline) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap();
    let event = MskEvent::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), NOW_MICROS);
    assert_eq!(outcomes.len(), event.record_count(), "one outcome per record");
    batch.records().iter().zip(&outcomes).map(|(r, o)| serde_json::to_value(explain(r, o)).unwrap()).collect()
}

fn by_offset(lines: &[Value]) -> HashMap<(i64, i64), &Value> {
    lines.iter().map(|l| ((l["partition"].as_i64().unwrap(), l["offset"].as_i64().unwrap()), l)).collect()
}

/// The explain contract: field set and types, and the invariants between them.
fn assert_contract(line: &Value) {
    let fields = [
        "topic",
        "partition",
        "offset",
        "action",
        "table",
        "op",
        "position",
        "key",
        "row",
        "masked",
        "reasons",
        "skip_reason",
    ];
    for field in fields {
        assert!(line.get(field).is_some(), "missing `{field}` in {line}");
    }
    let action = line["action"].as_str().unwrap();
    match action {
        "upsert" | "delete" => {
            assert!(line["table"].is_string() && line["op"].is_string() && line["position"].is_string());
            assert!(line["key"].is_object() && line["row"].is_object());
            assert!(line["reasons"].as_array().unwrap().is_empty() && line["skip_reason"].is_null());
            let row = line["row"].as_object().unwrap();
            for (column, value) in line["key"].as_object().unwrap() {
                assert_eq!(row.get(column), Some(value), "key values are the row's values");
            }
            for name in row.keys() {
                assert_eq!(name, &name.to_lowercase(), "column names are lowercase");
            }
        }
        "skip" => {
            assert!(line["skip_reason"].is_string(), "{line}");
            assert!(line["key"].is_null() && line["row"].is_null());
        }
        "reject" => {
            assert!(!line["reasons"].as_array().unwrap().is_empty(), "a reject says why: {line}");
            assert!(line["key"].is_null() && line["row"].is_null(), "a reject never shows values: {line}");
        }
        other => panic!("unknown action {other}"),
    }
}

#[test]
fn every_sample_event_honours_the_explain_contract() {
    let files = event_files();
    assert!(files.len() >= 10, "events/ holds the samples");
    for pipeline in [pipeline(Some(&example_config())), pipeline(None)] {
        for file in &files {
            let lines = explain_file(file, &pipeline);
            let raw = raw_records(file);
            assert_eq!(lines.len(), raw.len(), "{}", file.display());
            for (line, raw) in lines.iter().zip(&raw) {
                assert_contract(line);
                assert_eq!(
                    (
                        line["topic"].as_str().unwrap(),
                        line["partition"].as_i64().unwrap(),
                        line["offset"].as_i64().unwrap()
                    ),
                    (raw.topic.as_str(), raw.partition, raw.offset),
                    "event order"
                );
            }
        }
    }
}

/// Upserted rows carry the source values, converted; masked columns never the raw value.
#[test]
fn rows_match_the_source_and_masks_hide_it() {
    let pipeline = pipeline(Some(&example_config()));
    for file in event_files() {
        let lines = explain_file(&file, &pipeline);
        for (line, raw) in lines.iter().zip(raw_records(&file)) {
            if line["action"] == "delete" {
                // A delete writes its key only: the stored row keeps its values (soft mode).
                assert_eq!(line["row"], line["key"], "{line}");
                assert_eq!(line["key"]["id"], *raw.row_field("ID").unwrap_or(&json!(line["key"]["id"])));
                continue;
            }
            if line["action"] != "upsert" {
                continue;
            }
            let row = &line["row"];
            assert_eq!(row["id"], *raw.row_field("ID").unwrap());
            assert_eq!(row["firstname"], *raw.row_field("FirstName").unwrap());
            assert_eq!(row["state"], *raw.row_field("State").unwrap());
            let ssn = raw.row_field("SSN").unwrap().as_str().unwrap();
            assert_eq!(row["ssn"], json!(hmac_hex(KEY, ssn.as_bytes())), "{}", file.display());
            let dob_ms = raw.row_field("DOB").unwrap().as_i64().unwrap();
            let year = chrono_year(dob_ms);
            assert_eq!(row["dob"], json!(format!("{year:04}-01-01T00:00:00.000000")));
            assert_eq!(line["masked"], json!(["ssn", "dob"]));
            let text = line.to_string();
            assert!(!text.contains(ssn), "raw SSN leaked in {text}");
        }
    }
}

fn chrono_year(ms: i64) -> i64 {
    // Civil year of an epoch-millisecond instant (Howard Hinnant's days-to-civil).
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

#[test]
fn snapshot_update_delete_and_payload_only() {
    let pipeline = pipeline(Some(&example_config()));
    let dir = events_dir();
    let snapshot = explain_file(&dir.join("01-patientinfo-snapshot.json"), &pipeline);
    assert!(snapshot.iter().all(|l| l["action"] == "upsert" && l["op"] == "r"));
    // A SQL Server snapshot has one commit LSN and no change LSN: equal positions.
    assert!(snapshot.windows(2).all(|w| w[0]["position"] == w[1]["position"]));
    let create = explain_file(&dir.join("02-patientinfo-create.json"), &pipeline);
    assert!(
        create[0]["position"].as_str() > snapshot[0]["position"].as_str(),
        "streamed changes sort after the snapshot"
    );

    let update = explain_file(&dir.join("03-patientinfo-update.json"), &pipeline);
    assert_eq!((update[0]["op"].clone(), update[0]["row"]["state"].clone()), (json!("u"), json!("WA")));

    let delete = explain_file(&dir.join("04-patientinfo-delete.json"), &pipeline);
    assert_eq!(delete[0]["action"], "delete");
    assert_eq!(delete[0]["key"], json!({"id": 1002}));
    // The tombstone is a delete of its key without a source position (`tombstones =
    // "delete"`, the default); after its delete in the same batch the plan skips it.
    assert_eq!(
        (delete[1]["action"].clone(), delete[1]["key"].clone(), delete[1]["position"].clone()),
        (json!("delete"), json!({"id": 1002}), json!(""))
    );

    // No schema in the messages: the config's type hints decode DOB as a timestamp.
    let payload_only = explain_file(&dir.join("05-patientinfo-payload-only.json"), &pipeline);
    assert_eq!(payload_only[0]["row"]["lastname"], "O'Brien");
    assert_eq!(payload_only[0]["row"]["dob"], "1979-01-01T00:00:00.000000");
    assert_eq!(payload_only[1]["row"]["firstname"], "Wéi");
}

#[test]
fn invalid_records_are_rejected_with_every_reason() {
    let lines = explain_file(&events_dir().join("06-patientinfo-invalid.json"), &pipeline(Some(&example_config())));
    let lines = by_offset(&lines);
    let reasons = |offset: i64| -> (Value, Value) {
        let line = lines[&(0, offset)];
        (line["stage"].clone(), line["reasons"].clone())
    };
    let col = |c: &str, r: &str| json!({"column": c, "rule": r});
    let rec = |r: &str| json!({"column": null, "rule": r});
    assert_eq!(reasons(9), (json!("validate"), json!([col("ssn", "pattern")])));
    assert_eq!(reasons(10), (json!("validate"), json!([col("dob", "not_future")])));
    assert_eq!(reasons(11), (json!("validate"), json!([col("state", "one_of")])));
    assert_eq!(reasons(12), (json!("validate"), json!([col("firstname", "max_bytes")])));
    assert_eq!(reasons(13), (json!("decode"), json!([rec("base64")])));
    assert_eq!(reasons(14), (json!("decode"), json!([rec("json")])));
    assert_eq!(reasons(15), (json!("validate"), json!([col("ssn", "pattern"), col("state", "one_of")])));
    assert_eq!(lines[&(0, 16)]["action"], "upsert", "the valid record of the batch still loads");
}

#[test]
fn multi_partition_batch_plans_the_latest_change_per_key() {
    let path = events_dir().join("07-patientinfo-multi-partition.json");
    let bytes = std::fs::read(&path).unwrap();
    let event = MskEvent::parse(&bytes).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline(Some(&example_config())).transform(&batch, &mut Caches::default(), NOW_MICROS);
    let plans = plan(&outcomes);
    assert_eq!(plans.len(), 1);
    let table = &plans[0];
    assert_eq!(table.target().to_string(), "public.patientinfo");
    let by_id: HashMap<String, (&str, bool, String)> = table
        .rows
        .iter()
        .map(|r| {
            let lastname =
                r.change.columns.iter().find(|c| &*c.name == "lastname").map(|c| c.value.text().into_owned());
            (r.change.key[0].text().into_owned(), (r.change.op.code(), r.change.deleted, lastname.unwrap_or_default()))
        })
        .collect();
    assert_eq!(by_id.len(), 4, "1003, 1004, 1006, 1007");
    assert_eq!(by_id["1003"], ("u", false, "Chen-Li".to_string()), "the later of two updates wins");
    assert!(by_id["1006"].1, "create then delete in one batch: the delete wins");
    assert_eq!(table.superseded(), 2, "1003's first update and 1006's create");
    assert_eq!(table.columns.first().map(|c| &**c), Some("id"), "key columns first");
}

#[test]
fn control_topics_are_skipped_with_reasons() {
    let lines = explain_file(&events_dir().join("08-debezium-control-topics.json"), &pipeline(Some(&example_config())));
    let reasons: Vec<&str> = lines.iter().map(|l| l["skip_reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, vec!["heartbeat", "schema_change", "transaction"]);
}

#[test]
fn default_routing_uses_the_kafka_key_and_last_topic_segment() {
    let lines = explain_file(&events_dir().join("02-patientinfo-create.json"), &pipeline(None));
    assert_eq!(lines[0]["table"], "public.patientinfo");
    assert_eq!(lines[0]["key"], json!({"id": 1004}));
    assert_eq!(lines[0]["masked"], json!([]), "no config, no masks");
    assert_eq!(lines[0]["row"]["dob"], "2001-05-09T00:00:00.000000", "schema types decode without hints");
}

#[test]
fn aws_samples_parse_and_their_plain_text_values_are_rejected() {
    for name in ["aws-msk-sample.json", "self-managed-kafka-sample.json"] {
        let lines = explain_file(&events_dir().join(name), &pipeline(None));
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (lines[0]["action"].clone(), lines[0]["reasons"].clone()),
            (json!("reject"), json!([{"column": null, "rule": "json"}]))
        );
    }
}

#[test]
fn a_config_with_hmac_needs_a_key() {
    let config = Arc::new(Config::load(&example_config()).unwrap());
    let err = Pipeline::new(config, None).unwrap_err();
    assert!(err.to_string().contains("MASKING_KEY"), "{err}");
}

#[test]
fn raw_records_reader_sees_all_records() {
    let raw: Vec<RawRecord> = raw_records(&events_dir().join("07-patientinfo-multi-partition.json"));
    assert_eq!(raw.len(), 7);
}
