#!/usr/bin/env python3
"""Rust transform path vs. its Python peer, side by side, on identical MSK event files.

Writes two benchmark events with `bench-transform write-event` (10,000 records, and the most
records that fit Lambda's 6 MB payload limit), runs the release `bench-transform` and
`bench/python_peer/transform.py` (with the project venv's python) on each, checks that both
did the same work (same records, planned rows, rejects, first masked SSN and the SHA-256 of the
rendered SQL), prints the throughputs and their ratio, and writes a JSON summary to
$CARGO_TARGET_DIR/criterion/input-peer.json (target/criterion/ when unset).

    python3 bench/compare.py [--iterations N]

Speed is measured, never asserted: the script fails only when the two sides disagree.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "pipeline.toml"
PEER = ROOT / "bench" / "python_peer" / "transform.py"
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
GOAL_RATIO = 30.0
# Fields that must agree for the two sides to have done the same work.
SAME_WORK = [
    "records", "event_bytes", "planned_rows", "rejected", "first_masked_ssn", "statements", "sql_bytes", "sql_sha256",
]


def target_dir() -> Path:
    return (ROOT / os.environ.get("CARGO_TARGET_DIR", "target")).resolve()


def venv_python() -> str:
    python = Path(os.environ.get("VENV", ROOT / ".venv")) / "bin" / "python"
    if not python.exists():
        sys.exit(f"compare: no venv python at {python}; run scripts/install-deps.sh")
    return str(python)


def run_json(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


CARGO = os.environ.get("CARGO", "cargo")


def rust(*args: str) -> list[str]:
    return [CARGO, "run", "--release", "--locked", "-q", "-p", "bench-transform", "--", *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per side and event")
    args = parser.parse_args()

    started = time.monotonic()
    python = venv_python()
    work = target_dir() / "bench-peer"
    work.mkdir(parents=True, exist_ok=True)
    # One clock for both sides (not_future, _cdc_loaded_at), so their SQL is byte-identical.
    now_micros = str(time.time_ns() // 1000)

    subprocess.run([CARGO, "build", "--release", "--locked", "-q", "-p", "bench-transform"], cwd=ROOT, check=True)
    events = [("6MB", ["--max-bytes", str(LAMBDA_PAYLOAD_LIMIT)]), ("10k", ["--records", "10000"])]
    results = []
    for name, size in events:
        path = work / f"event-{name}.json"
        run_json(rust("write-event", *size, "--out", str(path)))
        common = [str(path), "--config", str(CONFIG), "--now-micros", now_micros]
        print(f"compare: {name}: rust …", file=sys.stderr, flush=True)
        r = run_json(rust(*common, "--iterations", str(args.iterations)))
        print(f"compare: {name}: python …", file=sys.stderr, flush=True)
        p = run_json([python, str(PEER), *common, "--iterations", str(args.iterations)])
        differ = [(k, r.get(k), p.get(k)) for k in SAME_WORK if r.get(k) != p.get(k)]
        if differ:
            for key, rv, pv in differ:
                print(f"compare: {name}: {key} differs: rust {rv!r}, python {pv!r}", file=sys.stderr)
            return 1
        if r["planned_rows"] != r["records"]:
            print(f"compare: {name}: only {r['planned_rows']} of {r['records']} records planned", file=sys.stderr)
            return 1
        cpu_known = r.get("mean_cpu_s") and p.get("mean_cpu_s")
        results.append(
            {
                "event": name,
                "rust": r,
                "python": p,
                "ratio": p["median_s"] / r["median_s"],
                "ratio_best": p["best_s"] / r["best_s"],
                "ratio_cpu": p["mean_cpu_s"] / r["mean_cpu_s"] if cpu_known else float("nan"),
            }
        )

    print()
    print(
        "| event | records | event size | Rust median | Python median | Rust records/s | Python records/s"
        " | Rust ÷ Python | best ÷ best | CPU time ÷ CPU time |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for res in results:
        r, p = res["rust"], res["python"]
        print(
            f"| {res['event']} | {r['records']:,} | {r['event_bytes'] / 1e6:.1f} MB | {r['median_s'] * 1e3:,.1f} ms"
            f" | {p['median_s'] * 1e3:,.0f} ms | {r['records_per_s']:,.0f} | {p['records_per_s']:,.0f}"
            f" | **{res['ratio']:.1f}×** | {res['ratio_best']:.1f}× | {res['ratio_cpu']:.1f}× |"
        )
    print()
    print(
        f"Both sides agree on every event (planned rows, rejects, first masked SSN, SQL SHA-256 over "
        f"{results[-1]['rust']['sql_bytes']:,} bytes for 10k). Goal: Rust ≥ {GOAL_RATIO:.0f}× the Python peer "
        f"({'met' if all(res['ratio'] >= GOAL_RATIO for res in results) else 'not met'}); medians of "
        f"{args.iterations} iterations per side; "
        f"{time.monotonic() - started:.0f} s in all."
    )

    summary = {
        "input": "peer",
        "goal_ratio": GOAL_RATIO,
        "events": [
            {
                "event": res["event"],
                "records": res["rust"]["records"],
                "event_bytes": res["rust"]["event_bytes"],
                "planned_rows": res["rust"]["planned_rows"],
                "sql_bytes": res["rust"]["sql_bytes"],
                "rust_median_s": res["rust"]["median_s"],
                "python_median_s": res["python"]["median_s"],
                "rust_records_per_s": res["rust"]["records_per_s"],
                "python_records_per_s": res["python"]["records_per_s"],
                "ratio": round(res["ratio"], 2),
                "ratio_best": round(res["ratio_best"], 2),
                "ratio_cpu": None if math.isnan(res["ratio_cpu"]) else round(res["ratio_cpu"], 2),
                "rust_mean_cpu_s": res["rust"].get("mean_cpu_s"),
                "python_mean_cpu_s": res["python"].get("mean_cpu_s"),
                "rust_iterations": res["rust"]["iterations"],
                "python_iterations": res["python"]["iterations"],
            }
            for res in results
        ],
    }
    out = target_dir() / "criterion" / "input-peer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary) + "\n")
    print(f"compare: wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
