//! SQL rendering throughput: the apply SQL for a 10,000-row plan of `patientinfo` changes.

use std::hint::black_box;
use std::sync::Arc;

use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::sql::render_plan;
use cdc_pipeline::synth::bulk_event;
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn render(c: &mut Criterion) {
    let path = test_services::repo_root().join("config/pipeline.toml");
    let pipeline =
        Pipeline::new(Arc::new(Config::load(&path).unwrap()), Some(b"benchmark-masking-key-0123456789abcdef012"))
            .unwrap();
    let bytes = bulk_event(10_000, 4, true);
    let event = MskEvent::parse(&bytes).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_795_521_600_000_000);
    let plans = plan(&outcomes);
    let table = &plans[0];
    let rendered = render_plan(table, 1_795_521_600_000_000);
    let sql_bytes: usize = rendered.transactions.iter().flat_map(|t| &t.statements).map(String::len).sum();
    eprintln!(
        "10,000 rows → {} transaction(s), {} statements, {sql_bytes} bytes of SQL",
        rendered.transactions.len(),
        rendered.transactions.iter().map(|t| t.statements.len()).sum::<usize>()
    );
    let mut group = c.benchmark_group("sql_render");
    group.throughput(Throughput::Bytes(sql_bytes as u64));
    group.bench_function("apply_sql_10k_rows", |b| {
        b.iter(|| render_plan(black_box(table), black_box(1_795_521_600_000_000)))
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
