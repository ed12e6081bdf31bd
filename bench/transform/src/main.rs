//! `bench-transform`: throughput of the whole transform path on one MSK event file, measured
//! the same way as its Python peer (`bench/python_peer/transform.py`) so that the two can be
//! compared side by side (`bench/compare.py`).
//!
//! ```text
//! bench-transform EVENT.json --config FILE [--iterations N] [--now-micros T]
//! bench-transform write-event (--records N | --max-bytes B) --out FILE
//! ```
//!
//! Each timed iteration starts from the event bytes: `MskEvent::parse` → `DecodedBatch` →
//! `Pipeline::transform` (fresh `Caches`, like a cold function) → `plan` → the apply SQL of
//! every table plan (`redshift::sql::build_transactions`). One JSON line is printed.
//! The masking key is `MASKING_KEY` (default [`DEFAULT_MASKING_KEY`]); `--now-micros` fixes
//! the clock (`not_future` and `_cdc_loaded_at`) so that both peers render identical SQL.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_pipeline::plan::plan;
use cdc_pipeline::redshift::sql::render_plan;
use cdc_pipeline::synth::bulk_event;
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Outcome, Pipeline};
use sha2::{Digest, Sha256};

/// The key both peers use when `MASKING_KEY` is not set.
const DEFAULT_MASKING_KEY: &str = "benchmark-masking-key-0123456789abcdef012";
const DEFAULT_ITERATIONS: usize = 20;
const USAGE: &str = "usage: bench-transform EVENT.json --config FILE [--iterations N] [--now-micros T]\n       \
                     bench-transform write-event (--records N | --max-bytes B) --out FILE";

/// What one run of the full path produced.
struct RunResult {
    planned_rows: usize,
    rejected: usize,
    statements: usize,
    sql_bytes: usize,
    first_masked_ssn: Option<String>,
    /// SHA-256 of every statement followed by `;\n`, only when asked for (outside timing).
    sql_sha256: Option<String>,
}

/// The full path from the event bytes to the apply SQL.
fn full_path(bytes: &[u8], pipeline: &Pipeline, now_micros: i64, digest: bool) -> RunResult {
    let event = MskEvent::parse(bytes).expect("the event parses");
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline.transform(&batch, &mut Caches::default(), now_micros);
    let plans = plan(&outcomes);
    let mut hasher = digest.then(Sha256::new);
    let mut result = RunResult {
        planned_rows: 0,
        rejected: outcomes.iter().filter(|o| matches!(o, Outcome::Reject(_))).count(),
        statements: 0,
        sql_bytes: 0,
        first_masked_ssn: None,
        sql_sha256: None,
    };
    for table_plan in &plans {
        let rendered = render_plan(table_plan, now_micros);
        result.planned_rows += table_plan.rows.len();
        for statement in rendered.transactions.iter().flat_map(|tx| &tx.statements) {
            result.statements += 1;
            result.sql_bytes += statement.len();
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(statement.as_bytes());
                hasher.update(b";\n");
            }
        }
    }
    result.first_masked_ssn = plans
        .first()
        .and_then(|p| p.rows.first())
        .and_then(|row| row.change.columns.iter().find(|c| &*c.name == "ssn"))
        .map(|c| c.value.text().into_owned());
    result.sql_sha256 = hasher.map(|h| h.finalize().iter().map(|b| format!("{b:02x}")).collect());
    result
}

/// Sorts `times` and returns their median in seconds.
fn median_seconds(times: &mut [Duration]) -> f64 {
    times.sort();
    let n = times.len();
    let median = if n % 2 == 1 { times[n / 2] } else { (times[n / 2 - 1] + times[n / 2]) / 2 };
    median.as_secs_f64()
}

/// CPU time of this thread so far (Linux `/proc/thread-self/schedstat`; it advances at
/// scheduler ticks, so only long spans are exact). Less disturbed than wall time when other
/// jobs share the machine. `None` elsewhere.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(stat.split_whitespace().next()?.parse().ok()?))
}

struct BenchArgs {
    event: PathBuf,
    config: PathBuf,
    iterations: usize,
    now_micros: Option<i64>,
}

fn value_of<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value.parse().map_err(|_| format!("{flag}: not a valid value: {value}"))
}

fn parse_bench_args(args: Vec<String>) -> Result<BenchArgs, String> {
    let (mut event, mut config, mut iterations, mut now) = (None, None, DEFAULT_ITERATIONS, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(value_of::<PathBuf>("--config", args.next())?),
            "--iterations" => iterations = value_of("--iterations", args.next())?,
            "--now-micros" => now = Some(value_of("--now-micros", args.next())?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if event.is_none() => event = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    if iterations == 0 {
        return Err("--iterations must be at least 1".into());
    }
    Ok(BenchArgs {
        event: event.ok_or("the event file is missing")?,
        config: config.ok_or("--config is missing")?,
        iterations,
        now_micros: now,
    })
}

fn bench(args: BenchArgs) -> Result<(), String> {
    let bytes = std::fs::read(&args.event).map_err(|e| format!("{}: {e}", args.event.display()))?;
    let config = Config::load(&args.config).map_err(|e| e.to_string())?;
    let key = std::env::var("MASKING_KEY").unwrap_or_else(|_| DEFAULT_MASKING_KEY.to_string());
    let pipeline = Pipeline::new(Arc::new(config), Some(key.as_bytes())).map_err(|e| e.to_string())?;
    let now = args.now_micros.unwrap_or_else(cdc_pipeline::temporal::now_micros);
    let records = MskEvent::parse(&bytes).map_err(|e| e.to_string())?.record_count();

    // One untimed run: warms the allocator and page cache, and gives the digest.
    let reference = full_path(&bytes, &pipeline, now, true);
    let mut times = Vec::with_capacity(args.iterations);
    let cpu_started = thread_cpu_time();
    for _ in 0..args.iterations {
        let started = Instant::now();
        let result = std::hint::black_box(full_path(std::hint::black_box(&bytes), &pipeline, now, false));
        times.push(started.elapsed());
        assert_eq!(result.sql_bytes, reference.sql_bytes, "every iteration renders the same SQL");
    }
    // Mean CPU time per iteration, over the whole loop.
    let mean_cpu_s = cpu_started
        .zip(thread_cpu_time())
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64() / args.iterations as f64);
    let median_s = median_seconds(&mut times);
    let line = serde_json::json!({
        "impl": "rust",
        "records": records,
        "event_bytes": bytes.len(),
        "iterations": args.iterations,
        "median_s": median_s,
        "best_s": times[0].as_secs_f64(),
        "records_per_s": records as f64 / median_s,
        "mean_cpu_s": mean_cpu_s,
        "planned_rows": reference.planned_rows,
        "rejected": reference.rejected,
        "statements": reference.statements,
        "sql_bytes": reference.sql_bytes,
        "sql_sha256": reference.sql_sha256,
        "first_masked_ssn": reference.first_masked_ssn,
    });
    println!("{line}");
    Ok(())
}

/// The most records whose benchmark event stays within `max_bytes` (as the criterion bench
/// sizes its event at Lambda's 6 MB payload limit).
fn records_within(max_bytes: usize) -> usize {
    let per_record = (bulk_event(200, 4, true).len() - bulk_event(100, 4, true).len()) / 100;
    let mut count = max_bytes / per_record + 1;
    while count > 0 && bulk_event(count, 4, true).len() > max_bytes {
        count -= 1;
    }
    count
}

fn write_event(args: Vec<String>) -> Result<(), String> {
    let (mut records, mut max_bytes, mut out) = (None, None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--records" => records = Some(value_of::<usize>("--records", args.next())?),
            "--max-bytes" => max_bytes = Some(value_of::<usize>("--max-bytes", args.next())?),
            "--out" => out = Some(value_of::<PathBuf>("--out", args.next())?),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    let records = match (records, max_bytes) {
        (Some(records), None) => records,
        (None, Some(max_bytes)) => records_within(max_bytes),
        _ => return Err("give one of --records and --max-bytes".into()),
    };
    let out = out.ok_or("--out is missing")?;
    let bytes = bulk_event(records, 4, true);
    std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    let line = serde_json::json!({"records": records, "event_bytes": bytes.len(), "out": out.to_string_lossy()});
    println!("{line}");
    Ok(())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("write-event") => write_event(args.split_off(1)),
        Some(_) => parse_bench_args(args).and_then(bench),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench-transform: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
