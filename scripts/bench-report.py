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
        full = mean_seconds(f"transform_{name}", "full_path")
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
        for label, t in (("full decode→validate→mask→plan", full), ("baseline: base64 + serde_json::Value", base)):
            print(f"| {name} | {n:,} | {size / 1e6:.1f} MB | {label} | {t * 1e3:.1f} ms | {n / t:,.0f} | {size / t / 1e6:.0f} |")
    print()
    print("| event | full path speed ÷ baseline speed |")
    print("|---|---:|")
    for name, n, size, full, base in rows:
        print(f"| {name} | **{base / full:.2f}×** |")
    print()


transform_table()
