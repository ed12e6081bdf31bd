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
        rows.append((name, n, size, full, base))
    if not rows:
        return
    print("| event | records | event size | path | mean time | records/s | MB/s |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for name, n, size, full, base in rows:
        for label, t in (("full: decode→validate→mask→plan→SQL", full), ("baseline: base64 + serde_json::Value", base)):
            print(f"| {name} | {n:,} | {size / 1e6:.1f} MB | {label} | {t * 1e3:.1f} ms | {n / t:,.0f} | {size / t / 1e6:.0f} |")
    print()
    print("| event | full path speed ÷ baseline speed |")
    print("|---|---:|")
    for name, n, size, full, base in rows:
        print(f"| {name} | **{base / full:.2f}×** |")
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


transform_table()
sql_table()
load_table()
