//! A Debezium message (arbitrary bytes, or fuzz JSON inside a valid envelope) through the
//! whole per-batch path: MSK event → `DecodedBatch` → `Pipeline::transform` → `plan` →
//! `explain` → apply SQL (`sql::build_transactions`).
//!
//! Input layout: one control byte, then up to three parts separated by 0xFF (a byte that
//! never occurs in UTF-8, so JSON seeds stay intact).
//!
//! control bits 0-1, mode:
//!   0  raw:      value = part0, key = part1
//!   1  after:    `{"before":null,"after":<part0>,"source":{…},"op":<op>,"ts_ms":…}`, key = part1
//!   2  wrapped:  `{"schema":<part0>,"payload":{"before":null,"after":<part1>,…}}`, key = part2
//!   3  before:   `{"before":<part0>,"after":null,"source":{…},"op":"d",…}`, key = part1
//! control bits 2-3, config: 0 config/pipeline.toml, 1 the fuzz config below, 2 default
//!   routing (no config file), 3 config/pipeline.toml with the fuzz topic (unroutable)
//! control bits 4-6, op for modes 1 and 2: c u r d t m c u
//! control bit 7: the record is sent twice (offsets 1 and 2), so `plan` merges a key.
//!
//! A missing key part means the key `{"ID":1}`; an empty key part means a null key.
//!
//! Invariants: nothing panics; exactly one outcome per record; a reject has at least one
//! reason; explain JSON of a reject has `key` and `row` null (and of a skip too); every
//! change is planned exactly once (as a winner or an earlier change); every planned row is
//! rendered exactly once (in a transaction or as oversized); no statement exceeds the size
//! limit or contains NUL; every configured mask was applied; key values are non-null and
//! not merged by a mask.
#![no_main]

use std::sync::{Arc, LazyLock};

use cdc_pipeline::config::Mask;
use cdc_pipeline::explain::explain;
use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::sql::{self, ApplySpec};
use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Outcome, Pipeline};
use libfuzzer_sys::fuzz_target;

const FUZZ_TOPIC: &str = "fuzz.db.dbo.t";

/// Every hint, rule and mask kind, keys from the Kafka key, NULs stripped.
const FUZZ_CONFIG: &str = r##"
[pipeline]
on_truncate = "reject"
on_message = "skip"
nul = "strip"
unroutable = "reject"

[[tables]]
topic = "fuzz.*"
target = "fuzz.t"
delete_mode = "hard"
drift = "add"
lock = true

[tables.columns.id]
type = "int64"
required = true
min = 0
max = 1000000

[tables.columns.amount]
type = "decimal"
scale = 2
min = "-1000.50"
max = 99999.99

[tables.columns.raw_amount]
type = "decimal_bytes"
scale = 3

[tables.columns.ratio]
type = "double"
min = -1.5
max = 1e300

[tables.columns.small]
type = "int16"

[tables.columns.flag]
type = "boolean"

[tables.columns.birthday]
type = "date"
min = 1900-01-01
max = "2100-12-31"
mask = "year"

[tables.columns.seen]
type = "timestamp_us"
not_future = true
mask = "year"

[tables.columns.seen_ns]
type = "timestamp_ns"
min = 1970-01-01T00:00:00
max = 2200-01-01T00:00:00

[tables.columns.stamp]
type = "timestamp"
mask = "year"

[tables.columns.alarm]
type = "time_us"

[tables.columns.wake]
type = "time"

[tables.columns.tick]
type = "time_ns"

[tables.columns.uid]
type = "uuid"

[tables.columns.doc]
type = "json"

[tables.columns.blob]
type = "bytes"

[tables.columns.name]
type = "string"
max_bytes = 20
pattern = '^[A-Za-z \x27-]*$'
mask = { type = "partial", keep_last = 2, char = "#" }

[tables.columns.state]
one_of = ["CA", "NY", "TX"]
mask = { type = "redact", with = "XX" }

[tables.columns.ssn]
mask = { type = "hmac", length = 12 }

[tables.columns.secret]
mask = "null"

[tables.columns.zoned]
type = "io.debezium.time.ZonedTimestamp"

[tables.columns.vdec]
type = "io.debezium.data.VariableScaleDecimal"
"##;

struct Setup {
    pipelines: [Pipeline; 4],
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let file = Config::parse(include_str!("../../config/pipeline.toml"), "pipeline.toml").expect("pipeline.toml");
    let fuzz = Config::parse(FUZZ_CONFIG, "fuzz.toml").expect("fuzz config");
    let make = |config: Config| {
        Pipeline::new(Arc::new(config), Some(b"fuzz-masking-key-0123456789abcdef0123456789")).expect("pipeline")
    };
    Setup { pipelines: [make(file.clone()), make(fuzz), make(Config::default_routing()), make(file)] }
});

const SOURCE: &str = r#"{"version":"2.7.3.Final","connector":"sqlserver","name":"sqlsrv","ts_ms":1764000000000,"snapshot":"false","db":"sampledb","sequence":null,"ts_us":1764000000000000,"ts_ns":1764000000000000000,"schema":"dbo","table":"patientinfo","change_lsn":"0000002c:000010c8:0002","commit_lsn":"0000002c:000010c8:0003","event_serial_no":1}"#;
const OPS: [&str; 8] = ["c", "u", "r", "d", "t", "m", "c", "u"];

fn envelope(before: &[u8], after: &[u8], op: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(before.len() + after.len() + SOURCE.len() + 96);
    out.extend_from_slice(b"{\"before\":");
    out.extend_from_slice(before);
    out.extend_from_slice(b",\"after\":");
    out.extend_from_slice(after);
    out.extend_from_slice(b",\"source\":");
    out.extend_from_slice(SOURCE.as_bytes());
    out.extend_from_slice(b",\"transaction\":null,\"op\":\"");
    out.extend_from_slice(op.as_bytes());
    out.extend_from_slice(b"\",\"ts_ms\":1764000000250}");
    out
}

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let Some((&control, body)) = data.split_first() else { return };
    let parts: Vec<&[u8]> = body.splitn(3, |&b| b == 0xff).collect();
    let part = |i: usize| parts.get(i).copied();
    let mode = control & 0b11;
    let config = (control >> 2) & 0b11;
    let op = OPS[usize::from((control >> 4) & 0b111)];
    let twice = control & 0x80 != 0;

    let (value, key) = match mode {
        0 => (part(0).unwrap_or_default().to_vec(), part(1)),
        1 => (envelope(b"null", part(0).unwrap_or_default(), op), part(1)),
        2 => {
            let mut wrapped = b"{\"schema\":".to_vec();
            wrapped.extend_from_slice(part(0).unwrap_or_default());
            wrapped.extend_from_slice(b",\"payload\":");
            wrapped.extend_from_slice(&envelope(b"null", part(1).unwrap_or(b"null"), op));
            wrapped.push(b'}');
            (wrapped, part(2))
        }
        _ => (envelope(part(0).unwrap_or_default(), b"null", "d"), part(1)),
    };
    let key: Option<Vec<u8>> = match key {
        None => Some(br#"{"ID":1}"#.to_vec()),
        Some([]) => None,
        Some(key) => Some(key.to_vec()),
    };
    let topic = match config {
        0 => cdc_pipeline::synth::TOPIC,
        _ => FUZZ_TOPIC,
    };
    let record = |offset: i64| RecordSpec {
        topic: topic.into(),
        partition: 0,
        offset,
        timestamp: 1_764_000_000_000 + offset,
        key: key.clone(),
        value: Some(value.clone()),
        raw_value: None,
    };
    let records: Vec<RecordSpec> = if twice { vec![record(2), record(1)] } else { vec![record(1)] };

    let text = msk_event_text(&records);
    let event = MskEvent::parse(text.as_bytes()).expect("synthetic events parse");
    let batch = DecodedBatch::from_event(&event);
    let pipeline = &SETUP.pipelines[usize::from(config)];
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_764_000_000_000_000);
    assert_eq!(outcomes.len(), records.len(), "exactly one outcome per record");

    let mut changes = 0;
    for (record, outcome) in batch.records().iter().zip(&outcomes) {
        match outcome {
            Outcome::Reject(reject) => assert!(!reject.reasons.is_empty(), "a reject has a reason"),
            Outcome::Change(change) => {
                changes += 1;
                assert_eq!(change.key.len(), change.key_columns.len(), "a value per key column");
                for name in change.key_columns.iter() {
                    assert!(change.columns.iter().any(|c| &c.name == name), "key column {name} is in the row");
                }
                // Every configured mask was applied: no unmasked value of a masked column leaves.
                for column in &change.columns {
                    let Some(mask) = change.table.column(&column.name).and_then(|c| c.mask.as_ref()) else { continue };
                    assert!(
                        change.masked.contains(&column.name),
                        "column {} has a mask but was not masked",
                        column.name
                    );
                    match mask {
                        Mask::Null => assert!(column.value.is_null()),
                        Mask::Redact { with } => {
                            assert!(column.value.is_null() || column.value.text() == with.as_str())
                        }
                        Mask::Hmac { length, .. } => assert!(
                            column.value.is_null()
                                || (column.value.text().len() == length.unwrap_or(64).min(64)
                                    && column.value.text().bytes().all(|b| b.is_ascii_hexdigit())),
                            "hmac output {:?}",
                            column.value
                        ),
                        _ => {}
                    }
                }
                // Keys must stay distinct and non-null after masking, or rows merge.
                for (name, value) in change.key_columns.iter().zip(&change.key) {
                    let mask = change.table.column(name).and_then(|c| c.mask.as_ref());
                    assert!(
                        !value.is_null() && mask.is_none_or(|m| m.keeps_keys_distinct()),
                        "key column {name} is {value:?} after mask {mask:?}"
                    );
                }
            }
            Outcome::Skip(_) => {}
        }
        let line = explain(record, outcome);
        let json = serde_json::to_value(&line).expect("explain serialises");
        match outcome {
            Outcome::Reject(_) => {
                assert_eq!(json["action"], "reject");
                assert!(json["key"].is_null() && json["row"].is_null(), "a reject shows no values: {json}");
                assert!(!json["reasons"].as_array().expect("reasons").is_empty());
            }
            Outcome::Skip(_) => {
                assert_eq!(json["action"], "skip");
                assert!(json["key"].is_null() && json["row"].is_null());
                assert!(json["skip_reason"].is_string());
            }
            Outcome::Change(_) => {
                assert!(json["action"] == "upsert" || json["action"] == "delete");
                assert!(json["key"].is_object() && json["row"].is_object());
            }
        }
        serde_json::to_string(&line).expect("explain line serialises");
    }

    let plans = plan(&outcomes);
    let planned: usize =
        plans.iter().map(|p| p.rows.len() + p.superseded() + p.regressed.len() + p.redundant_tombstones.len()).sum();
    assert_eq!(planned, changes, "every change is planned exactly once");
    for table_plan in &plans {
        let Some(first) = table_plan.rows.first() else { panic!("a plan without rows") };
        let key = first.change.key_columns.clone();
        for row in &table_plan.rows {
            assert_eq!(row.change.key_columns, key, "one key per table plan");
        }
        let spec = ApplySpec {
            target: table_plan.target(),
            columns: &table_plan.columns,
            key: &key,
            delete_mode: table_plan.table.delete_mode,
            lock: table_plan.table.lock,
            loaded_at_micros: 1_764_000_000_000_000,
            ledger: true,
            super_columns: &[],
        };
        // With `drift = "add"` the loader adds the columns the target lacks, by name.
        for column in &table_plan.columns {
            let statement = sql::add_column(table_plan.target(), column, "VARCHAR(256)");
            assert!(!statement.contains('\0'), "NUL reached the SQL: {statement:?}");
        }
        let rows: Vec<_> = table_plan.rows.iter().map(|r| r.change.as_ref()).collect();
        let rendered = sql::build_transactions(&spec, &rows);
        let mut seen: Vec<usize> = rendered
            .transactions
            .iter()
            .flat_map(|t| t.rows.iter().copied())
            .chain(rendered.oversized.iter().copied())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..rows.len()).collect::<Vec<_>>(), "every planned row rendered exactly once");
        for tx in &rendered.transactions {
            assert!(tx.statements.len() <= sql::MAX_STATEMENTS);
            for statement in &tx.statements {
                assert!(
                    statement.len() <= sql::MAX_STATEMENT_BYTES || !statement.starts_with("INSERT INTO \"_cdc_stage\"")
                );
                assert!(!statement.contains('\0'), "NUL reached the SQL: {statement:?}");
            }
        }
    }
}
