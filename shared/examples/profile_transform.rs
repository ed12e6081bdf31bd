//! One run of the full transform path on the 6 MB benchmark event, for profilers:
//! `valgrind --tool=callgrind --toggle-collect='profile_transform::measured*'
//! target/release/examples/profile_transform` counts the instructions of the path alone
//! (instruction counts do not depend on machine load). `profile_transform 1399 500` repeats
//! the path 500 times for `perf record`; a third argument `avro` runs the same changes as
//! Avro records (Confluent frames, schemas already cached). It prints the allocations per
//! record and writes them to `$CARGO_TARGET_DIR/criterion/alloc-transform-<json|avro>.json`
//! for `scripts/bench-report.py`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cdc_pipeline::avro::connect::AvroSchema;
use cdc_pipeline::avro::frame::SchemaRef;
use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::sql::render_plan;
use cdc_pipeline::synth::{avro_event, bulk_event};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Pipeline};

/// Counts heap allocations, to report allocations per record.
struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let records: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_399);
    let path = test_services::repo_root().join("config/pipeline.toml");
    let pipeline =
        Pipeline::new(Arc::new(Config::load(&path).unwrap()), Some(b"profile-masking-key-0123456789abcdef012345"))
            .unwrap();
    let json = bulk_event(records, 4, true);
    // A second argument repeats the path, for sampling profilers (`perf record`).
    let iterations: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let format = std::env::args().nth(3).unwrap_or_else(|| "json".into());
    let (bytes, schemas) = match format.as_str() {
        "json" => (json, Schemas::new()),
        "avro" => {
            let (bytes, texts) = avro_event(&json);
            let schemas = texts
                .iter()
                .map(|(id, text)| (*id, Arc::new(AvroSchema::parse(&id.to_string(), text).unwrap())))
                .collect();
            (bytes, schemas)
        }
        other => {
            eprintln!("profile_transform: the format is json or avro, not {other}");
            std::process::exit(2);
        }
    };
    let mut sql_bytes = 0;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..iterations {
        sql_bytes = measured(&pipeline, &bytes, &schemas);
    }
    let allocations = (ALLOCATIONS.load(Ordering::Relaxed) - before) / iterations;
    let per_record = allocations as f64 / records as f64;
    println!(
        "{format}: {records} records, {} bytes of event, {sql_bytes} bytes of SQL, {allocations} allocations ({per_record:.1} per record)",
        bytes.len(),
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| test_services::repo_root().join("target"), std::path::PathBuf::from);
    let dir = target.join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let line = format!(
        "{{\"format\":\"{format}\",\"records\":{records},\"bytes\":{},\"allocations_per_record\":{per_record:.2}}}\n",
        bytes.len()
    );
    let _ = std::fs::write(dir.join(format!("alloc-transform-{format}.json")), line);
}

/// The Avro schemas a warm function holds (empty for JSON).
type Schemas = std::collections::HashMap<SchemaRef, Arc<AvroSchema>>;

/// The path measured by the benchmarks: event bytes to rendered apply SQL.
#[inline(never)]
fn measured(pipeline: &Pipeline, bytes: &[u8], schemas: &Schemas) -> usize {
    let event = MskEvent::parse(bytes).unwrap();
    let mut batch = DecodedBatch::from_event(&event);
    if !schemas.is_empty() {
        batch.read_avro(&|schema| schemas.get(&schema).cloned().map(Ok));
    }
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_795_521_600_000_000);
    let plans = plan(&outcomes);
    let mut sql_bytes = 0;
    for table in &plans {
        let rendered = render_plan(table, 0);
        sql_bytes += rendered.transactions.iter().flat_map(|t| &t.statements).map(String::len).sum::<usize>();
    }
    sql_bytes
}
