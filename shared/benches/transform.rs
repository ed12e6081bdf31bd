//! The transform path (decode → validate → mask → plan → render the apply SQL) against the
//! cheapest thing any consumer must do: base64-decode each value and parse it with
//! `serde_json::Value`.
//!
//! Both start from the same event bytes and parse the event with the same parser, so the
//! ratio compares the work done per record. Events hold schema-enabled SQL Server
//! `patientinfo` messages: one at Lambda's 6 MB payload limit, one of 10,000 records.
//! `make bench` runs this and `scripts/bench-report.py` turns the estimates into tables.

use std::hint::black_box;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::PAD;
use base64::engine::simd::Simd;
use cdc_pipeline::avro::connect::AvroSchema;
use cdc_pipeline::avro::frame::SchemaRef;
use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::sql::render_plan;
use cdc_pipeline::synth::{avro_event, bulk_event};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Lambda's synchronous invocation payload limit.
const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
const NOW_MICROS: i64 = 1_795_521_600_000_000;

fn pipeline() -> Pipeline {
    let path = test_services::repo_root().join("config/pipeline.toml");
    let config = Config::load(&path).expect("example config");
    Pipeline::new(Arc::new(config), Some(b"benchmark-masking-key-0123456789abcdef012")).expect("pipeline")
}

/// The most records whose event stays within the payload limit.
fn records_at_payload_limit() -> usize {
    let per_record = (bulk_event(200, 4, true).len() - bulk_event(100, 4, true).len()) / 100;
    let mut count = LAMBDA_PAYLOAD_LIMIT / per_record;
    while bulk_event(count, 4, true).len() > LAMBDA_PAYLOAD_LIMIT {
        count -= 1;
    }
    count
}

fn full_path(bytes: &[u8], pipeline: &Pipeline) -> usize {
    let event = MskEvent::parse(bytes).expect("event parses");
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), NOW_MICROS);
    let plans = plan(&outcomes);
    let mut rows = 0;
    for table in &plans {
        rows += render_plan(table, NOW_MICROS).transactions.iter().map(|t| t.rows.len()).sum::<usize>();
    }
    rows
}

/// The Avro schemas of an event, parsed: what a warm function holds in its schema cache.
type Schemas = std::collections::HashMap<SchemaRef, Arc<AvroSchema>>;

/// The full path for an Avro event: the registry frames read with the cached schemas
/// (`DecodedBatch::read_avro`), then the same path as JSON.
fn avro_full_path(bytes: &[u8], pipeline: &Pipeline, schemas: &Schemas) -> (usize, Vec<String>) {
    let event = MskEvent::parse(bytes).expect("event parses");
    let mut batch = DecodedBatch::from_event(&event);
    batch.read_avro(&|schema| schemas.get(&schema).cloned().map(Ok));
    rendered(&batch, pipeline)
}

/// Rows and statements of the apply SQL of a decoded batch.
fn rendered(batch: &DecodedBatch<'_>, pipeline: &Pipeline) -> (usize, Vec<String>) {
    let outcomes = pipeline.transform(batch, &mut Caches::default(), NOW_MICROS);
    let plans = plan(&outcomes);
    let (mut rows, mut statements) = (0, Vec::new());
    for table in &plans {
        let sql = render_plan(table, NOW_MICROS);
        rows += sql.transactions.iter().map(|t| t.rows.len()).sum::<usize>();
        statements.extend(sql.transactions.into_iter().flat_map(|t| t.statements));
    }
    (rows, statements)
}

/// The baseline decodes base64 with the same SIMD engine as the pipeline, so the ratio
/// measures everything else.
fn baseline(bytes: &[u8]) -> usize {
    static BASE64: std::sync::LazyLock<Simd> = std::sync::LazyLock::new(|| Simd::standard(PAD));
    let event = MskEvent::parse(bytes).expect("event parses");
    let mut parsed = 0;
    for (_, records) in &event.records {
        for record in records {
            if let Some(value) = &record.value {
                let decoded = BASE64.decode(value.as_bytes()).expect("base64");
                let json: serde_json::Value = serde_json::from_slice(&decoded).expect("json");
                parsed += usize::from(!json.is_null());
            }
        }
    }
    parsed
}

/// Record what each input was, beside criterion's own output, for `scripts/bench-report.py`.
fn note_input(name: &str, records: usize, bytes: usize) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| test_services::repo_root().join("target"), std::path::PathBuf::from);
    let dir = target.join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let line = format!("{{\"input\":\"{name}\",\"records\":{records},\"bytes\":{bytes}}}\n");
    let path = dir.join(format!("input-{name}.json"));
    let _ = std::fs::write(path, line);
}

fn transform(c: &mut Criterion) {
    let pipeline = pipeline();
    let at_limit = records_at_payload_limit();
    for (name, count) in [("6MB", at_limit), ("10k", 10_000)] {
        let bytes = bulk_event(count, 4, true);
        assert_eq!(full_path(&bytes, &pipeline), count, "every record plans");
        assert_eq!(baseline(&bytes), count);
        note_input(&format!("transform-{name}"), count, bytes.len());
        // The same changes as Avro (Confluent frames): the same SQL, statement for statement.
        let (avro_bytes, texts) = avro_event(&bytes);
        let schemas: Schemas =
            texts.iter().map(|(id, text)| (*id, Arc::new(AvroSchema::parse(&id.to_string(), text).unwrap()))).collect();
        let json_sql = {
            let event = MskEvent::parse(&bytes).unwrap();
            rendered(&DecodedBatch::from_event(&event), &pipeline)
        };
        assert_eq!(avro_full_path(&avro_bytes, &pipeline, &schemas), json_sql, "Avro renders the JSON event's SQL");
        note_input(&format!("transform-{name}-avro"), count, avro_bytes.len());
        let mut group = c.benchmark_group(format!("transform/{name}"));
        group.throughput(Throughput::Elements(count as u64));
        group.sample_size(if count > 5_000 { 20 } else { 40 });
        group.bench_with_input(BenchmarkId::new("full_path_with_sql", count), &bytes, |b, bytes| {
            b.iter(|| full_path(black_box(bytes), &pipeline))
        });
        group.bench_with_input(BenchmarkId::new("avro_full_path_with_sql", count), &avro_bytes, |b, bytes| {
            b.iter(|| avro_full_path(black_box(bytes), &pipeline, &schemas))
        });
        group.bench_with_input(BenchmarkId::new("baseline_b64_serde_value", count), &bytes, |b, bytes| {
            b.iter(|| baseline(black_box(bytes)))
        });
        group.finish();
    }
}

criterion_group!(benches, transform);
criterion_main!(benches);
