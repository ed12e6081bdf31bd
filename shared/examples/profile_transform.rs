//! One run of the full transform path on the 6 MB benchmark event, for profilers:
//! `valgrind --tool=callgrind --toggle-collect='profile_transform::measured*'
//! target/release/examples/profile_transform` counts the instructions of the path alone
//! (instruction counts do not depend on machine load). `profile_transform 1399 500` repeats
//! the path 500 times for `perf record`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::sql::render_plan;
use cdc_pipeline::synth::bulk_event;
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
    let bytes = bulk_event(records, 4, true);
    // A second argument repeats the path, for sampling profilers (`perf record`).
    let iterations: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut sql_bytes = 0;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..iterations {
        sql_bytes = measured(&pipeline, &bytes);
    }
    let allocations = (ALLOCATIONS.load(Ordering::Relaxed) - before) / iterations;
    println!(
        "{records} records, {} bytes of event, {sql_bytes} bytes of SQL, {allocations} allocations ({:.1} per record)",
        bytes.len(),
        allocations as f64 / records as f64
    );
}

/// The path measured by the benchmarks: event bytes to rendered apply SQL.
#[inline(never)]
fn measured(pipeline: &Pipeline, bytes: &[u8]) -> usize {
    let event = MskEvent::parse(bytes).unwrap();
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), 1_795_521_600_000_000);
    let plans = plan(&outcomes);
    let mut sql_bytes = 0;
    for table in &plans {
        let rendered = render_plan(table, 0);
        sql_bytes += rendered.transactions.iter().flat_map(|t| &t.statements).map(String::len).sum::<usize>();
    }
    sql_bytes
}
