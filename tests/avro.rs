//! Connect's Avro mapping of Debezium types (issue 16, item 3): one row per type, the same
//! change written by the JsonConverter (its JSON twin) and by the AvroConverter (the Avro field
//! type as Connect's `AvroData` writes it, framed in Confluent's and in Glue's wire format) must
//! give the same `cdc explain` line — rows, positions, masks — once the Avro datum is read
//! back through `avro::connect`. The Avro side is written with `apache_avro` from a schema
//! written out here; only the envelope's plumbing (the `source` block) is derived from the
//! JSON twin.

use std::sync::Arc;

use apache_avro::types::Value as Avro;
use cdc_pipeline::avro::connect::AvroSchema;
use cdc_pipeline::avro::frame::{self, SchemaRef};
use cdc_pipeline::explain::explain;
use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};
use cdc_tests::debezium::{Column, Source, Table, column};
use serde_json::{Value, json};

const KEY: &[u8] = b"avro-twin-test-masking-key-0123456789abcd";
const TOPIC: &str = "sqlsrv.sampledb.dbo.vitals";

/// One Debezium type: its Connect schema (JSON), its Avro type (as AvroData writes it), and one
/// value in each form.
struct Row {
    what: &'static str,
    connect: Value,
    avro: Value,
    json: Value,
    datum: Avro,
}

fn row(what: &'static str, connect: Value, avro: Value, json: Value, datum: Avro) -> Row {
    Row { what, connect, avro, json, datum }
}

/// A Debezium or Connect logical type (`what` is its name): Connect type `connect`, Avro type
/// `avro` with `connect.name` and `connect.version`, as AvroData writes it.
fn named(what: &'static str, connect: &str, avro: &str, json: Value, datum: Avro) -> Row {
    row(
        what,
        json!({"type": connect, "name": what, "version": 1}),
        json!({"type": avro, "connect.version": 1, "connect.name": what}),
        json,
        datum,
    )
}

/// A Connect `Decimal` of precision 10 and scale 2: base64 of the unscaled bytes in JSON,
/// Avro `bytes` with `logicalType: decimal`.
fn decimal(what: &'static str, base64: &str, unscaled: &[u8]) -> Row {
    let parameters = json!({"scale": "2", "connect.decimal.precision": "10"});
    row(
        what,
        json!({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": parameters}),
        json!({"type": "bytes", "scale": 2, "precision": 10, "connect.version": 1, "connect.parameters": parameters,
               "connect.name": "org.apache.kafka.connect.data.Decimal", "logicalType": "decimal"}),
        json!(base64),
        Avro::Decimal(apache_avro::Decimal::from(unscaled.to_vec())),
    )
}

fn rows() -> Vec<Row> {
    vec![
        row("int32", json!({"type": "int32"}), json!("int"), json!(-42), Avro::Int(-42)),
        row("int16", json!({"type": "int16"}), json!({"type": "int", "connect.type": "int16"}), json!(7), Avro::Int(7)),
        row("int8", json!({"type": "int8"}), json!({"type": "int", "connect.type": "int8"}), json!(-3), Avro::Int(-3)),
        row(
            "int64 past 2^53",
            json!({"type": "int64"}),
            json!("long"),
            json!(9_007_199_254_740_993_i64),
            Avro::Long(9_007_199_254_740_993),
        ),
        row("double", json!({"type": "double"}), json!("double"), json!(1.5), Avro::Double(1.5)),
        row("float", json!({"type": "float"}), json!("float"), json!(0.25), Avro::Float(0.25)),
        // Not exact in binary: the JsonConverter writes the float32's own shortest form.
        row("float 1.1", json!({"type": "float"}), json!("float"), json!(1.1), Avro::Float(1.1)),
        row("double NaN", json!({"type": "double"}), json!("double"), json!("NaN"), Avro::Double(f64::NAN)),
        row(
            "double -Infinity",
            json!({"type": "double"}),
            json!("double"),
            json!("-Infinity"),
            Avro::Double(f64::NEG_INFINITY),
        ),
        row("boolean", json!({"type": "boolean"}), json!("boolean"), json!(true), Avro::Boolean(true)),
        row(
            "string",
            json!({"type": "string"}),
            json!("string"),
            json!("Zoë \"Q\" 😀"),
            Avro::String("Zoë \"Q\" 😀".into()),
        ),
        row("bytes", json!({"type": "bytes"}), json!("bytes"), json!("AQID"), Avro::Bytes(vec![1, 2, 3])),
        decimal("Decimal(10,2)", "MDk=", &[0x30, 0x39]),
        decimal("negative Decimal(10,2)", "/88=", &[0xff, 0xcf]),
        named("io.debezium.time.Date", "int32", "int", json!(19_000), Avro::Int(19_000)),
        named(
            "io.debezium.time.Timestamp",
            "int64",
            "long",
            json!(1_718_000_000_123_i64),
            Avro::Long(1_718_000_000_123),
        ),
        named(
            "io.debezium.time.MicroTimestamp",
            "int64",
            "long",
            json!(1_718_000_000_123_456_i64),
            Avro::Long(1_718_000_000_123_456),
        ),
        named(
            "io.debezium.time.NanoTimestamp",
            "int64",
            "long",
            json!(1_718_000_000_123_456_789_i64),
            Avro::Long(1_718_000_000_123_456_789),
        ),
        named("io.debezium.time.MicroTime", "int64", "long", json!(45_296_000_001_i64), Avro::Long(45_296_000_001)),
        named(
            "io.debezium.time.ZonedTimestamp",
            "string",
            "string",
            json!("2024-06-10T08:30:00.123456+02:00"),
            Avro::String("2024-06-10T08:30:00.123456+02:00".into()),
        ),
        row(
            "org.apache.kafka.connect.data.Date",
            json!({"type": "int32", "name": "org.apache.kafka.connect.data.Date", "version": 1}),
            json!({"type": "int", "connect.version": 1, "connect.name": "org.apache.kafka.connect.data.Date", "logicalType": "date"}),
            json!(-1),
            Avro::Date(-1),
        ),
        row(
            "org.apache.kafka.connect.data.Timestamp",
            json!({"type": "int64", "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}),
            json!({"type": "long", "connect.version": 1, "connect.name": "org.apache.kafka.connect.data.Timestamp",
                   "logicalType": "timestamp-millis"}),
            json!(1_718_000_000_123_i64),
            Avro::TimestampMillis(1_718_000_000_123),
        ),
        named(
            "io.debezium.data.Uuid",
            "string",
            "string",
            json!("0f8fad5b-d9cb-469f-a165-70867728950e"),
            Avro::String("0f8fad5b-d9cb-469f-a165-70867728950e".into()),
        ),
        named(
            "io.debezium.data.Json",
            "string",
            "string",
            json!("{\"a\":[1,2]}"),
            Avro::String("{\"a\":[1,2]}".into()),
        ),
        row(
            "io.debezium.data.Enum",
            json!({"type": "string", "name": "io.debezium.data.Enum", "version": 1, "parameters": {"allowed": "A,B"}}),
            json!({"type": "string", "connect.version": 1, "connect.parameters": {"allowed": "A,B"}, "connect.name": "io.debezium.data.Enum"}),
            json!("B"),
            Avro::String("B".into()),
        ),
        row(
            "io.debezium.data.VariableScaleDecimal",
            json!({"type": "struct", "name": "io.debezium.data.VariableScaleDecimal", "version": 1,
                   "fields": [{"type": "int32", "optional": false, "field": "scale"}, {"type": "bytes", "optional": false, "field": "value"}]}),
            json!({"type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
                   "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
                   "connect.version": 1, "connect.name": "io.debezium.data.VariableScaleDecimal"}),
            json!({"scale": 3, "value": "MDk="}),
            Avro::Record(vec![("scale".into(), Avro::Int(3)), ("value".into(), Avro::Bytes(vec![0x30, 0x39]))]),
        ),
    ]
}

/// The Avro type of an optional Connect field, and its value: a union with null.
fn optional(avro: &Value) -> Value {
    json!(["null", avro])
}

/// The Avro schema of the envelope of a table with `id` (key) and `v` of type `v_type`, with
/// the `source` block's fields as in `source` (strings, longs, nulls), as AvroData names them.
fn envelope_schema(v_type: &Value, source: &serde_json::Map<String, Value>) -> Value {
    let source_fields: Vec<Value> = source
        .iter()
        .map(|(name, value)| {
            let ty = match value {
                Value::Number(_) => json!(["null", "long"]),
                Value::Bool(_) => json!(["null", "boolean"]),
                _ => json!(["null", "string"]),
            };
            json!({"name": name, "type": ty, "default": null})
        })
        .collect();
    json!({
        "type": "record", "name": "Envelope", "namespace": TOPIC,
        "fields": [
            {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
                {"name": "id", "type": "int"},
                {"name": "v", "type": optional(v_type), "default": null}]}], "default": null},
            {"name": "after", "type": ["null", "Value"], "default": null},
            {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium.connector.sqlserver",
                "fields": source_fields}},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": null}
        ],
        "connect.version": 2, "connect.name": format!("{TOPIC}.Envelope")
    })
}

fn source_value(source: &serde_json::Map<String, Value>) -> Avro {
    Avro::Record(
        source
            .iter()
            .map(|(name, value)| {
                let v = match value {
                    Value::Null => Avro::Union(0, Box::new(Avro::Null)),
                    Value::Number(n) => Avro::Union(1, Box::new(Avro::Long(n.as_i64().expect("an integer")))),
                    Value::Bool(b) => Avro::Union(1, Box::new(Avro::Boolean(*b))),
                    Value::String(s) => Avro::Union(1, Box::new(Avro::String(s.clone()))),
                    other => panic!("source field {name}: {other}"),
                };
                (name.clone(), v)
            })
            .collect(),
    )
}

/// The JSON twin (the JsonConverter's value) and the Avro datum of a create of `id` with `v`.
fn twins(row: &Row, id: i32, null: bool) -> (RecordSpec, Vec<u8>, AvroSchema, String) {
    let table = Table::new(
        TOPIC,
        vec![column("id", "int32"), Column { name: "v".into(), schema: optional_connect(&row.connect) }],
        &["id"],
    );
    let v = if null { Value::Null } else { row.json.clone() };
    let json_twin = table.record(0, 0, "c", None, Some(json!({"id": id, "v": v})), &Source::sqlserver(1), true);
    let envelope: Value = serde_json::from_slice(json_twin.value.as_deref().expect("a value")).unwrap();
    let source = envelope["payload"]["source"].as_object().expect("a source block").clone();
    let ts_ms = envelope["payload"]["ts_ms"].as_i64().expect("ts_ms");
    let schema_text = envelope_schema(&row.avro, &source).to_string();
    let schema = apache_avro::Schema::parse_str(&schema_text).unwrap_or_else(|e| panic!("{}: {e}", row.what));
    let v = if null { Avro::Union(0, Box::new(Avro::Null)) } else { Avro::Union(1, Box::new(row.datum.clone())) };
    let after = Avro::Record(vec![("id".into(), Avro::Int(id)), ("v".into(), v)]);
    let value = Avro::Record(vec![
        ("before".into(), Avro::Union(0, Box::new(Avro::Null))),
        ("after".into(), Avro::Union(1, Box::new(after))),
        ("source".into(), source_value(&source)),
        ("op".into(), Avro::String("c".into())),
        ("ts_ms".into(), Avro::Union(1, Box::new(Avro::Long(ts_ms)))),
    ]);
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .unwrap_or_else(|e| panic!("{}: {e}", row.what));
    let parsed = AvroSchema::parse("confluent:7", &schema_text).unwrap_or_else(|e| panic!("{}: {e}", row.what));
    (json_twin, datum, parsed, schema_text)
}

fn optional_connect(connect: &Value) -> Value {
    let mut schema = connect.clone();
    schema["optional"] = json!(true);
    if schema["type"] == "struct" {
        for field in schema["fields"].as_array_mut().unwrap() {
            field["optional"] = json!(false);
        }
    }
    schema
}

/// `cdc explain`'s line for `record` under the default routing.
fn explained(record: &RecordSpec) -> Value {
    let pipeline = Pipeline::new(Arc::new(Config::default_routing()), Some(KEY)).unwrap();
    let text = msk_event_text(std::slice::from_ref(record));
    let event = MskEvent::parse(text.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 0);
    serde_json::to_value(explain(batch.records()[0], &outcomes[0])).unwrap()
}

#[test]
fn every_debezium_type_reads_the_same_from_avro_as_from_json() {
    for row in rows() {
        for null in [false, true] {
            let (json_twin, datum, schema, _) = twins(&row, 1, null);
            // Both wire formats carry the same datum.
            let mut confluent = vec![0, 0, 0, 0, 7];
            confluent.extend(&datum);
            let mut glue = vec![3, 0];
            glue.extend([0x11; 16]);
            glue.extend(&datum);
            for framed in [confluent, glue] {
                let frame = frame::parse(&framed).unwrap();
                assert!(matches!(frame.schema, SchemaRef::Confluent(7) | SchemaRef::Glue(_)));
                let text = schema.to_connect_json(&frame.datum).unwrap_or_else(|e| panic!("{}: {e}", row.what));
                let mut avro_twin = json_twin.clone();
                avro_twin.value = Some(text.clone().into_bytes());
                let (from_json, from_avro) = (explained(&json_twin), explained(&avro_twin));
                assert_eq!(from_avro, from_json, "{} (null {null}): {text}", row.what);
                assert_eq!(from_json["action"], "upsert", "{}: {from_json}", row.what);
            }
        }
    }
}

/// `cdc explain --schemas DIR` on an event of framed Avro records: each reads as its JSON twin;
/// a frame whose schema the directory lacks, a datum cut short and a schema that is no Avro
/// each reject their own record with their rule, naming no value.
#[test]
fn cdc_explain_reads_avro_records_through_a_schema_directory_and_rejects_per_record() {
    let dir = std::env::temp_dir().join(format!("cdc-avro-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rows = rows();
    let mut avro_records = Vec::new();
    let mut json_records = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let (mut json_twin, datum, _, schema_text) = twins(row, i as i32 + 1, false);
        json_twin.offset = i as i64;
        let id = 100 + i as u32;
        std::fs::write(dir.join(format!("confluent-{id}.avsc")), &schema_text).unwrap();
        let mut framed = vec![0];
        framed.extend(id.to_be_bytes());
        framed.extend(&datum);
        let mut avro = json_twin.clone();
        avro.value = Some(framed);
        avro_records.push(avro);
        json_records.push(json_twin);
    }
    // Three that cannot be read: an unknown schema id, a datum cut short, a schema that is no
    // Avro (a Protobuf definition under a Glue version id).
    let (base, datum, _, _) = twins(&rows[0], 900, false);
    let mut unknown = base.clone();
    unknown.offset = 900;
    unknown.value = Some([&[0, 0, 0, 0x30, 0x39][..], &datum].concat());
    let mut cut = base.clone();
    cut.offset = 901;
    cut.value = Some([&[0, 0, 0, 0, 100][..], &datum[..datum.len() - 2]].concat());
    let glue = [0x5a_u8; 16];
    std::fs::write(dir.join("glue-5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a.avsc"), "syntax = \"proto3\"; message M {}")
        .unwrap();
    let mut not_avro = base.clone();
    not_avro.offset = 902;
    not_avro.value = Some([&[3, 0][..], &glue, &datum].concat());
    avro_records.extend([unknown, cut, not_avro]);

    let write = |name: &str, records: &[RecordSpec]| {
        let path = dir.join(name);
        std::fs::write(&path, msk_event_text(records)).unwrap();
        path
    };
    let (avro_event, json_event) = (write("avro.json", &avro_records), write("json.json", &json_records));
    let run = |event: &std::path::Path| {
        let out = std::process::Command::new(cdc_tests::cli::cdc_binary())
            .args(["explain", "--config", "default", "--schemas", dir.to_str().unwrap(), event.to_str().unwrap()])
            .env("MASKING_KEY", std::str::from_utf8(KEY).unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let (from_avro, from_json) = (run(&avro_event), run(&json_event));
    let avro_lines: Vec<&str> = from_avro.lines().collect();
    let json_lines: Vec<&str> = from_json.lines().collect();
    assert_eq!(avro_lines.len(), rows.len() + 3);
    assert_eq!(&avro_lines[..rows.len()], &json_lines[..], "the Avro records read as their JSON twins");
    for (line, rule) in avro_lines[rows.len()..].iter().zip(["avro_schema_unknown", "avro_data", "avro_schema"]) {
        let line: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (line["action"].as_str(), line["reasons"][0]["rule"].as_str()),
            (Some("reject"), Some(rule)),
            "{line}"
        );
        assert!(line["row"].is_null(), "{line}");
    }
    // Without the directory, a framed record is the converter setting's reject, as before.
    let out = std::process::Command::new(cdc_tests::cli::cdc_binary())
        .args(["explain", "--config", "default", avro_event.to_str().unwrap()])
        .output()
        .unwrap();
    let first: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["reasons"][0]["rule"], "converter_binary", "{first}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `cdc args…` with the test's masking key and no `CDC_CONFIG`, which must exit 0: stdout and
/// stderr.
fn cdc_ok(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(cdc_tests::cli::cdc_binary())
        .args(args)
        .env("MASKING_KEY", std::str::from_utf8(KEY).unwrap())
        .env_remove("CDC_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "cdc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Issue 16's "done when": every sample in `events/`, rendered as Avro by the project's own
/// generator (`cdc make-event --avro`, Connect's `AvroData` mapping) in Confluent's and in
/// Glue's wire format, gives exactly the `cdc explain` lines of the JSON sample — rows,
/// positions, masks and rejects — under the example config. What the generator cannot render
/// (payload-only or broken JSON, non-JSON bytes) stays as it was and is named on stderr; the
/// test counts both kinds, so a generator that framed nothing would fail it.
#[test]
fn every_sample_reads_the_same_from_avro_in_both_wire_formats() {
    let root = cdc_tests::repo_root();
    let dir = std::env::temp_dir().join(format!("cdc-avro-samples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let schemas = dir.join("schemas");
    // The committed samples' schemas first, so that rendering an Avro sample again finds its ids.
    std::fs::create_dir_all(&schemas).unwrap();
    for entry in std::fs::read_dir(root.join("events/avro/schemas")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, schemas.join(path.file_name().unwrap())).unwrap();
    }
    let cdc = cdc_ok;
    let config = root.join("config/pipeline.toml");
    let config = config.to_str().unwrap();
    let (mut framed_total, mut samples) = (0, 0);
    let mut paths: Vec<_> = [root.join("events"), root.join("events/avro")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for sample in &paths {
        let sample_text = sample.to_str().unwrap();
        let (json_lines, _) =
            cdc(&["explain", "--config", config, "--schemas", schemas.to_str().unwrap(), sample_text]);
        for format in ["confluent", "glue"] {
            let (avro_event, notes) =
                cdc(&["make-event", "--avro", format, "--schemas", schemas.to_str().unwrap(), sample_text]);
            let avro_path = dir.join(format!("{format}-{}", sample.file_name().unwrap().to_str().unwrap()));
            std::fs::write(&avro_path, &avro_event).unwrap();
            // How many keys and values became frames, and how many were left (one note each).
            let event: Value = serde_json::from_str(&avro_event).unwrap();
            let (mut framed, mut left) = (0, 0);
            for record in event["records"].as_object().unwrap().values().flat_map(|r| r.as_array().unwrap()) {
                for field in ["key", "value"] {
                    let Some(text) = record[field].as_str() else { continue };
                    match base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text) {
                        Ok(bytes) if frame::is_frame(&bytes) => {
                            let wanted = if format == "glue" { 3 } else { 0 };
                            // An Avro sample's frames stay in their own format.
                            if !sample.parent().unwrap().ends_with("avro") {
                                assert_eq!(bytes[0], wanted, "{format} frame in {sample_text}");
                            }
                            framed += 1;
                        }
                        _ => left += 1,
                    }
                }
            }
            assert_eq!(notes.lines().count(), left, "every key or value left is named: {notes}");
            assert!(!notes.contains("123-45") && !notes.contains("Smith"), "a note shows a value: {notes}");
            framed_total += framed;
            let (avro_lines, _) = cdc(&[
                "explain",
                "--config",
                config,
                "--schemas",
                schemas.to_str().unwrap(),
                avro_path.to_str().unwrap(),
            ]);
            assert_eq!(avro_lines, json_lines, "{format} rendering of {sample_text}");
        }
        samples += 1;
    }
    assert!(samples >= 12, "the samples in events/: {samples}");
    // 01–04, 06 and 07 carry JsonConverter documents: about 30 keys and values per format.
    assert!(framed_total >= 40, "the generator framed only {framed_total} keys and values");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The paths of samples 01–04, the changes `events/avro/` renders as Avro.
fn samples_01_to_04() -> Vec<String> {
    ["01-patientinfo-snapshot", "02-patientinfo-create", "03-patientinfo-update", "04-patientinfo-delete"]
        .iter()
        .map(|n| cdc_tests::repo_root().join(format!("events/{n}.json")).to_str().unwrap().to_string())
        .collect()
}

/// The committed Avro samples (`events/avro/confluent-patientinfo.json`,
/// `events/avro/glue-patientinfo.json` and their schemas in `events/avro/schemas/`) are what the
/// generator makes of samples 01–04 today:
///
/// ```sh
/// cdc make-event --avro confluent --schemas events/avro/schemas events/0[1-4]-*.json > events/avro/confluent-patientinfo.json
/// cdc make-event --avro glue --schemas events/avro/schemas events/0[1-4]-*.json > events/avro/glue-patientinfo.json
/// ```
#[test]
fn the_avro_samples_are_what_the_generator_makes() {
    let root = cdc_tests::repo_root();
    let dir = std::env::temp_dir().join(format!("cdc-avro-regenerate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let inputs = samples_01_to_04();
    for (format, sample) in [("confluent", "avro/confluent-patientinfo.json"), ("glue", "avro/glue-patientinfo.json")] {
        let out = std::process::Command::new(cdc_tests::cli::cdc_binary())
            .args(["make-event", "--avro", format, "--schemas", dir.to_str().unwrap()])
            .args(&inputs)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let committed = std::fs::read_to_string(root.join("events").join(sample)).unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), committed, "events/{sample} is stale: regenerate it");
    }
    let mut made: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    made.sort();
    let mut committed: Vec<_> =
        std::fs::read_dir(root.join("events/avro/schemas")).unwrap().map(|e| e.unwrap().file_name()).collect();
    committed.sort();
    assert_eq!(made, committed);
    for name in &made {
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            std::fs::read(root.join("events/avro/schemas").join(name)).unwrap(),
            "events/avro/schemas/{name:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The event source mapping's own registry integration: with `EventRecordFormat` `SOURCE` each
/// datum comes without its header and with its schema id in `keySchemaMetadata` /
/// `valueSchemaMetadata` (`cdc make-event --registry-integration`), and reads as its JSON twin
/// under both registries' ids. With `JSON` the value is JSON text the pipeline cannot read
/// exactly (`registry_json_format`); a Protobuf schema is `avro_schema`; an id that is neither
/// Confluent's nor Glue's is `avro_schema_unknown`.
#[test]
fn records_the_trigger_deserialized_read_as_their_json_twins_and_json_delivery_is_refused() {
    let root = cdc_tests::repo_root();
    let dir = std::env::temp_dir().join(format!("cdc-avro-trigger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let schemas = dir.join("schemas");
    let inputs = samples_01_to_04();
    let cdc = |args: &[&str]| cdc_ok(args).0;
    let config = root.join("config/pipeline.toml");
    let config = config.to_str().unwrap();
    let mut json_lines = String::new();
    for input in &inputs {
        json_lines.push_str(&cdc(&["explain", "--config", config, input]));
    }
    std::fs::create_dir_all(&dir).unwrap();
    for format in ["confluent", "glue"] {
        let mut args =
            vec!["make-event", "--avro", format, "--registry-integration", "--schemas", schemas.to_str().unwrap()];
        args.extend(inputs.iter().map(String::as_str));
        let event = cdc(&args);
        // The same records framed: each delivered datum is its frame without the header (a
        // datum may well open with the byte 0, as a Debezium envelope with `before` null does).
        let framed = cdc(&[&args[..3], &args[4..]].concat());
        let values = |text: &str| -> Vec<(Option<Vec<u8>>, Value)> {
            let parsed: Value = serde_json::from_str(text).unwrap();
            parsed["records"]
                .as_object()
                .unwrap()
                .values()
                .flat_map(|r| r.as_array().unwrap().clone())
                .map(|r| {
                    let bytes = r["value"]
                        .as_str()
                        .map(|v| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v).unwrap());
                    (bytes, r["valueSchemaMetadata"].clone())
                })
                .collect()
        };
        let header = if format == "glue" { 18 } else { 5 };
        let (delivered, framed) = (values(&event), values(&framed));
        assert_eq!(delivered.len(), 7);
        for ((datum, metadata), (frame, _)) in delivered.iter().zip(&framed) {
            let (Some(datum), Some(frame)) = (datum, frame) else { continue };
            assert_eq!(&frame[header..], &datum[..], "the datum is the frame without its header");
            assert_eq!(metadata["dataFormat"], "AVRO");
            let id = metadata["schemaId"].as_str().unwrap();
            let expected = frame::schema_of(frame).unwrap().to_string();
            assert_eq!(expected.split_once(':').unwrap().1, id);
        }
        let path = dir.join(format!("{format}.json"));
        std::fs::write(&path, &event).unwrap();
        let lines =
            cdc(&["explain", "--config", config, "--schemas", schemas.to_str().unwrap(), path.to_str().unwrap()]);
        assert_eq!(lines, json_lines, "{format} records as the trigger delivers them");
    }

    // JSON delivery, a Protobuf schema, an id of neither registry.
    let json_text = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        br#"{"before": null, "after": {"id": 1}, "op": "c"}"#,
    );
    let datum = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0u8, 2]);
    let record = |offset: i64, value: &str, format: &str, id: &str| {
        json!({"topic": TOPIC, "partition": 0, "offset": offset, "timestamp": 1, "key": null, "value": value,
               "headers": [], "valueSchemaMetadata": {"dataFormat": format, "schemaId": id}})
    };
    let glue_id = std::fs::read_dir(&schemas)
        .unwrap()
        .filter_map(|e| {
            e.unwrap().file_name().to_str().and_then(|n| n.strip_prefix("glue-")).map(|n| n[..36].to_string())
        })
        .next()
        .unwrap();
    let event = json!({"eventSource": "aws:kafka", "records": {format!("{TOPIC}-0"): [
        record(1, &json_text, "AVRO", &glue_id),
        record(2, &datum, "PROTOBUF", "1"),
        record(3, &datum, "AVRO", "not-an-id"),
    ]}});
    let path = dir.join("refused.json");
    std::fs::write(&path, event.to_string()).unwrap();
    let lines = cdc(&["explain", "--config", config, "--schemas", schemas.to_str().unwrap(), path.to_str().unwrap()]);
    let rules: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["reasons"][0]["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rules, ["registry_json_format", "avro_schema", "avro_schema_unknown"]);
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert!(first["hints"][0].as_str().unwrap().contains("EventRecordFormat to SOURCE"), "{first}");
    std::fs::remove_dir_all(&dir).unwrap();
}
