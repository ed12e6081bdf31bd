#!/usr/bin/env python3
"""Turn criterion's estimates into the tables of BENCHMARKS.md.

Usage: scripts/bench-report.py [CRITERION_DIR]   (default: $CARGO_TARGET_DIR/criterion or target/criterion)
"""
import glob
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")


def mean_seconds(group_dir, bench):
    paths = glob.glob(os.path.join(root, group_dir, bench, "*", "new", "estimates.json"))
    if not paths:
        return None
    with open(paths[0]) as f:
        return json.load(f)["mean"]["point_estimate"] / 1e9


def transform_table():
    rows = []
    for name in ("6MB", "10k"):
        try:
            with open(os.path.join(root, f"input-transform-{name}.json")) as f:
                info = json.load(f)
        except FileNotFoundError:
            continue
        full = mean_seconds(f"transform_{name}", "full_path_with_sql")
        base = mean_seconds(f"transform_{name}", "baseline_b64_serde_value")
        if full is None or base is None:
            continue
        n, size = info["records"], info["bytes"]
        avro = None
        try:
            with open(os.path.join(root, f"input-transform-{name}-avro.json")) as f:
                avro_size = json.load(f)["bytes"]
            avro_time = mean_seconds(f"transform_{name}", "avro_full_path_with_sql")
            if avro_time is not None:
                avro = (avro_size, avro_time)
        except FileNotFoundError:
            pass
        rows.append((name, n, size, full, base, avro))
    if not rows:
        return
    allocations = {}
    for fmt in ("json", "avro"):
        try:
            with open(os.path.join(root, f"alloc-transform-{fmt}.json")) as f:
                allocations[fmt] = json.load(f)["allocations_per_record"]
        except FileNotFoundError:
            pass
    alloc = lambda fmt, name: f"{allocations[fmt]:.1f}" if name == "6MB" and fmt in allocations else ""
    print("| event | records | event size | path | mean time | records/s | MB/s of event | allocations / record |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for name, n, size, full, base, avro in rows:
        lines = [("JSON", size, "full: decode→validate→mask→plan→SQL", full, alloc("json", name))]
        if avro:
            lines.append(("Avro", avro[0], "full, Avro (Confluent frames, schemas cached)", avro[1], alloc("avro", name)))
        lines.append(("JSON", size, "baseline: base64 + serde_json::Value", base, ""))
        for fmt, sz, label, t, a in lines:
            print(f"| {name} {fmt} | {n:,} | {sz / 1e6:.1f} MB | {label} | {t * 1e3:.1f} ms | {n / t:,.0f} | {sz / t / 1e6:.0f} | {a} |")
    print()
    print("| event | full path speed ÷ baseline speed | Avro full path time ÷ JSON full path time |")
    print("|---|---:|---:|")
    for name, n, size, full, base, avro in rows:
        ratio = f"{avro[1] / full:.2f}×" if avro else "n/a"
        print(f"| {name} | **{base / full:.2f}×** | {ratio} |")
    print()


def sql_table():
    path = os.path.join(root, "sql_render", "apply_sql_10k_rows", "new")
    try:
        with open(os.path.join(path, "estimates.json")) as f:
            mean = json.load(f)["mean"]["point_estimate"] / 1e9
        with open(os.path.join(path, "benchmark.json")) as f:
            size = json.load(f)["throughput"]["Bytes"]
    except (FileNotFoundError, KeyError):
        return
    print("| SQL rendering | rows | SQL bytes | mean time | MB/s | rows/s |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| apply SQL, 10,000-row plan | 10,000 | {size:,} | {mean * 1e3:.2f} ms | {size / mean / 1e6:.0f} | {10_000 / mean:,.0f} |")
    print()


def load_table():
    try:
        with open(os.path.join(root, "input-load-10k.jsonl")) as f:
            cases = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return
    print("| end to end (emulator + PostgreSQL) | records | median time | records/s | Data API calls | BatchExecuteStatement | rows loaded |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for c in cases:
        print(f"| {c['case']} | {c['records']:,} | {c['median_s'] * 1e3:.0f} ms | {c['records'] / c['median_s']:,.0f} | {c['calls']} | {c['transactions']} | {c['loaded']:,} |")
    print()


def read_json(name):
    try:
        with open(os.path.join(root, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def peer_table():
    peer = read_json("input-peer.json")
    if not peer:
        return
    print("| event | records | Rust median | Python median | Rust records/s | Python records/s | Rust ÷ Python (medians) | best ÷ best | CPU ÷ CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for e in peer["events"]:
        print(
            f"| {e['event']} | {e['records']:,} | {e['rust_median_s'] * 1e3:.1f} ms | {e['python_median_s'] * 1e3:,.0f} ms"
            f" | {e['rust_records_per_s']:,.0f} | {e['python_records_per_s']:,.0f} | **{e['ratio']:.1f}×**"
            f" | {e['ratio_best']:.1f}× | {e['ratio_cpu']:.1f}× |"
        )
    print()


def failed(error):
    return "**failed**: " + error.replace("|", "\\|").replace("\n", " ")


def load_paths_goals():
    summary = read_json("load-paths.json")
    if not summary:
        return
    print("| goal (issue 14) | target | measured | |")
    print("|---|---|---:|---|")
    for batch in summary["batches"]:
        for p in batch["paths"]:
            name = f"{p['path'].upper()} path ÷ floor, {batch['rows']:,}-row batch"
            target = "≤ 3×" if p["path"] == "copy" else "none (issue 14: about 10× at 5,000 rows)"
            if "error" in p:
                print(f"| {name} | {target} | {failed(p['error'])} | **not met** |")
            elif p["path"] == "copy":
                met = "met" if p["ratio_to_floor"] <= 3 else "**not met**"
                print(f"| {name} | {target} | {p['ratio_to_floor']:.1f}× | {met} |")
            else:
                print(f"| {name} | {target} | {p['ratio_to_floor']:.1f}× | reference |")
    print()


def load_paths_tables():
    summary = read_json("load-paths.json")
    if not summary:
        return
    print(f"| batch (whole ingest invocation, median of {summary['runs']}) | event | path | median time | ÷ floor | Data API calls | S3 calls | SQL text | staged (gzip CSV) | transactions (COPY) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for batch in summary["batches"]:
        head = f"| {batch['rows']:,} rows | {batch['event_bytes']:,} B"
        print(f"{head} | floor: PostgreSQL `COPY … FROM STDIN` (CSV) | {batch['floor_median_s'] * 1e3:.1f} ms | 1.0× | – | – | – | – | – |")
        for p in batch["paths"]:
            label = f"{p['path'].upper()} path (`load = \"{p['path']}\"`)"
            if "error" in p:
                print(f"{head} | {label} | {failed(p['error'])} | | | | | | |")
                continue
            print(
                f"{head} | {label} | {p['median_s'] * 1e3:.1f} ms | **{p['ratio_to_floor']:.1f}×** | {p['data_api_calls']} | {p['s3_calls']}"
                f" | {p['sql_bytes']:,} B | {p['staged_bytes']:,} B | {p['transactions']} ({p['copy_transactions']}) |"
            )
    print()
    c = summary["concurrent"]
    shape = f"{c['partitions']} partitions × {c['batches_per_partition']} batches × {c['records_per_batch']:,} records"
    print(f"| concurrent load, COPY path ({shape}, one table) | records/s | transactions (COPY) | retries | conflicts | failed invocations retried | Data API calls | S3 calls |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in c["runs"]:
        name = "`lock = true`" if r["lock"] else "`lock = false`"
        if "error" in r:
            print(f"| {name} | {failed(r['error'])} | | | | | | |")
            continue
        print(
            f"| {name} | {r['records_per_second']:,.0f} | {r['transactions']} ({r['copy_transactions']}) | {r['retries']} | {r['conflicts']}"
            f" | {r['failed_invocations_retried']} | {r['data_api_calls']} | {r['s3_calls']} |"
        )
    print()


def runtime_tables():
    probe = read_json("runtime-probe.json")
    if not probe:
        return
    c = probe["cold_start"]
    print("| cold start of the release `ingest` binary: spawn → first `next` (local emulator) | runs | median | p90 | min | max | Data API calls each |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| | {c['runs']} | **{c['median_ms']:.1f} ms** | {c['p90_ms']:.1f} ms | {c['min_ms']:.1f} ms | {c['max_ms']:.1f} ms | {c.get('describe_table_calls_each', 0)} DescribeTable |")
    print()
    mib = 1024 * 1024
    print("| invocation (real binary, fake Runtime API, emulator + PostgreSQL) | records | event | peak RSS | peak ÷ event | wall time | records/s | Data API calls |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in probe["runs"]:
        print(
            f"| {r['event']} | {r['records']:,} | {r['event_bytes'] / mib:.1f} MiB | {r['peak_rss_bytes'] / mib:.1f} MiB"
            f" | {r['peak_rss_per_event_byte']:.2f} | {r['wall_s'] * 1e3:,.0f} ms | {r['records_per_s']:,.0f} | {r['summary']['data_api_calls']} |"
        )
    print()


def goals():
    peer, probe = read_json("input-peer.json"), read_json("runtime-probe.json")
    rows = []
    full = mean_seconds("transform_10k", "full_path_with_sql")
    base = mean_seconds("transform_10k", "baseline_b64_serde_value")
    if full and base:
        rows.append(("full path ÷ baseline speed, 10k event", "≥ 1.0×", f"{base / full:.2f}×", base / full >= 1.0))
    if probe:
        g = probe["goals"]
        rows.append(("cold start (median)", "≤ 20 ms", f"{g['cold_start_median_ms']:.1f} ms", g["cold_start_met"]))
        rows.append(("peak RSS on a 6 MB event (median)", "≤ 64 MB", f"{g['peak_rss_6mb_median_mb']:.1f} MiB", g["peak_rss_met"]))
    if peer:
        for e in peer["events"]:
            rows.append((f"Rust ÷ Python peer, {e['event']} event", f"≥ {peer['goal_ratio']:.0f}×", f"{e['ratio']:.1f}×", e["ratio"] >= peer["goal_ratio"]))
    if not rows:
        return
    print("| goal (issue 7) | target | measured | |")
    print("|---|---|---:|---|")
    for name, target, measured, met in rows:
        print(f"| {name} | {target} | {measured} | {'met' if met else '**not met**'} |")
    print()


goals()
load_paths_goals()
transform_table()
peer_table()
sql_table()
load_table()
load_paths_tables()
runtime_tables()
