#!/usr/bin/env python3
"""runtime_probe: the release `ingest` binary under a fake Lambda Runtime API (the paths and
headers of the lambda_runtime 1.x crate). Measures cold start (spawn to the first
`GET /runtime/invocation/next`), peak RSS (VmHWM) and the invocation of a 6 MB and a
10,000-record event against the local stack. Asserts no speed, only correctness: the
handler's summary and the target's row count. See bench/README.md.

    python3 bench/runtime_probe.py [--cold-starts N] [--runs N] [--skip-10k]
"""
import argparse, json, os, queue, shlex, shutil, signal, socket, statistics  # noqa: E401
import subprocess, sys, tempfile, threading, time, urllib.request, uuid  # noqa: E401
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API = "/2018-06-01/runtime"
PAYLOAD_LIMIT = 6 * 1024 * 1024  # Lambda's payload limit, 6,291,456 bytes
MB = 1024 * 1024
TABLE = "public.patientinfo"  # the target of config/pipeline.toml
CHECKED_TABLES = 1  # tables of config/pipeline.toml whose configured columns a cold start checks
COLD_START_GOAL_MS, PEAK_RSS_GOAL_MB = 20, 64


class Fail(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Runtime API

    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except ConnectionError:  # a function killed while its keep-alive connection was open
            pass

    def do_GET(self):
        if self.path == f"{API}/invocation/next":
            self.server.runtime.next(self)
        else:
            self.reply(404, b'{"errorType":"NotFound"}')

    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            body = b"".join(parts)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.runtime.post(self, body)

    def reply(self, code, body, headers=()):
        self.send_response(code)
        for name, value in [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class Runtime:
    """The fake Runtime API. It serves one function process at a time: reset() before each."""

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads, self.server.runtime = True, self
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.events = queue.Queue()
        self.reset()

    def reset(self):
        self.events.put(None)  # releases a `next` still held for the previous process
        self.events, self.results = queue.Queue(), queue.Queue()
        self.ready, self.first_next_at, self.handed_out_at = threading.Event(), None, {}

    def next(self, h):
        now, events = time.perf_counter(), self.events
        if not self.ready.is_set():
            self.first_next_at = now
            self.ready.set()
        item = events.get()  # the long poll: blocks until the script hands out an event
        if item is None:
            h.close_connection = True
            return
        request_id, body = item
        self.handed_out_at[request_id] = time.perf_counter()
        h.reply(200, body, [
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000)),
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:ingest"),
            ("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"),
        ])

    def post(self, h, body):
        now, parts = time.perf_counter(), h.path.removeprefix(API + "/").split("/")
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            self.results.put((parts[2], parts[1], body, now))
        elif parts == ["init", "error"]:
            self.results.put(("init-error", None, body, now))
        else:
            return h.reply(404, b'{"errorType":"NotFound"}')
        h.reply(202, b'{"status":"OK"}')


def lambda_env(runtime, settings):
    """A clean environment like Lambda's: its reserved variables plus the function's settings."""
    return {
        # No HOME with ~/.aws files: the SDK must not find a developer's profile.
        "PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": "/nonexistent",
        "AWS_LAMBDA_RUNTIME_API": runtime.address, "AWS_LAMBDA_FUNCTION_NAME": "ingest",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ingest", "AWS_LAMBDA_LOG_STREAM_NAME": "probe",
        **settings,
    }


def start(binary, env, runtime, log):
    """Spawn the function; return it once it polls `next`, with its cold start in ms."""
    runtime.reset()
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    while not runtime.ready.wait(0.01):
        if proc.poll() is not None or time.perf_counter() - started > 30:
            stop(proc)
            raise Fail(f"ingest did not reach `next` (exit {proc.returncode}):\n{tail(log)}")
    return proc, (runtime.first_next_at - started) * 1000


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def tail(log, lines=20):
    return "\n".join(Path(log.name).read_text(errors="replace").splitlines()[-lines:])


def proc_status(pid):
    """VmHWM (peak RSS) and VmRSS of a live process, in bytes."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmHWM", "VmRSS")}


def cold_starts(binary, runtime, stack, count, log):
    """Fresh processes against the local stack, until each polls `next`. A cold start reads
    the configured tables' columns (DescribeTable: a mask over a misspelt column must stop the
    function), so each makes CHECKED_TABLES Data API calls and nothing else."""
    before = emulator_calls(stack)
    samples = []
    for _ in range(count):
        proc, ms = start(binary, lambda_env(runtime, stack), runtime, log)
        stop(proc)
        samples.append(ms)
    return samples, calls_since(stack, before)


def calls_since(stack, before):
    """Data API calls by operation since `before` (emulator counters)."""
    after = emulator_calls(stack)
    return {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}


def emulator_calls(stack):
    with urllib.request.urlopen(stack["AWS_ENDPOINT_URL_REDSHIFT_DATA"] + "/__faults", timeout=5) as r:
        return json.load(r).get("calls", {})


def psql(stack, sql):
    out = subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", stack["DATABASE_URL"], "-c", sql],
                         capture_output=True, text=True)
    if out.returncode:
        raise Fail(f"psql {sql!r}: {out.stderr.strip()}")
    return out.stdout.strip()


def invoke(binary, runtime, stack, name, event, records, log):
    """A fresh process, one invocation into an emptied target; memory is read before the kill."""
    psql(stack, f"TRUNCATE {TABLE}")
    body, calls_before = event.read_bytes(), emulator_calls(stack)
    proc, cold_ms = start(binary, lambda_env(runtime, stack), runtime, log)
    try:
        idle = proc_status(proc.pid)
        cold_calls = calls_since(stack, calls_before)
        if cold_calls != {"DescribeTable": CHECKED_TABLES}:
            raise Fail(f"a cold start made {cold_calls} Data API calls, expected DescribeTable × {CHECKED_TABLES}")
        request_id, give_up = str(uuid.uuid4()), time.monotonic() + 900  # the deadline handed out
        runtime.events.put((request_id, body))
        while True:
            try:
                kind, rid, answer, received_at = runtime.results.get(timeout=0.05)
                break
            except queue.Empty:
                if proc.poll() is not None or time.monotonic() > give_up:
                    raise Fail(f"{name}: no answer (exit {proc.returncode}):\n{tail(log)}") from None
        memory = proc_status(proc.pid)
    finally:
        stop(proc)
    if (kind, rid) != ("response", request_id):
        raise Fail(f"{name}: {kind} for {rid}: {answer.decode(errors='replace')}\n{tail(log)}")
    summary = json.loads(answer)
    if summary["records_received"] != records or summary["loaded"] != records:
        raise Fail(f"{name}: expected {records} records received and loaded, got {summary}")
    rows = int(psql(stack, f"SELECT count(*) FROM {TABLE}"))
    if rows != records:
        raise Fail(f"{name}: {TABLE} holds {rows} rows, expected {records}")
    wall_s = received_at - runtime.handed_out_at[request_id]
    return {
        "event": name, "records": records, "event_bytes": len(body), "cold_start_ms": cold_ms,
        "idle_hwm_bytes": idle["VmHWM"], "peak_rss_bytes": memory["VmHWM"], "rss_after_bytes": memory["VmRSS"],
        "peak_rss_per_event_byte": memory["VmHWM"] / len(body), "wall_s": wall_s,
        "records_per_s": records / wall_s, "rows_in_target": rows,
        "summary": {k: summary.get(k) for k in
                    ("records_received", "loaded", "data_api_calls", "transactions", "retries", "duration_ms")},
    }


def run(cmd, **kw):
    """Run a command from the repository root; its stderr passes through."""
    result = subprocess.run(cmd, cwd=ROOT, **kw)
    if result.returncode:
        raise Fail(f"{' '.join(map(str, cmd))} exited {result.returncode}")
    return result


def report(cold, runs):
    mb = lambda b: f"{b / MB:.1f}"  # noqa: E731
    print(f"\n## ingest (release) under a fake Lambda Runtime API\n\n"
          f"| cold start: spawn → first `next` (n={cold['runs']}) | median | p90 | min | max |\n"
          f"|---|---:|---:|---:|---:|\n| ms | {cold['median_ms']:.1f} | {cold['p90_ms']:.1f} | "
          f"{cold['min_ms']:.1f} | {cold['max_ms']:.1f} |\n\n"
          f"Before the first invocation: {cold['describe_table_calls_each']} Data API call per cold start "
          "(DescribeTable of the configured table, to refuse a mask over a column it lacks), "
          "against the local emulator; nothing else (emulator counters, every run).\n\n"
          "| run | records | event MB | idle VmHWM MB | peak RSS MB | VmRSS after MB | peak ÷ event "
          "| invocation | records/s | received | loaded | Data API calls |\n|---|" + "---:|" * 11)
    for i, r in enumerate(runs, 1):
        s = r["summary"]
        print(f"| {r['event']} #{i} | {r['records']:,} | {mb(r['event_bytes'])} | {mb(r['idle_hwm_bytes'])} | "
              f"{mb(r['peak_rss_bytes'])} | {mb(r['rss_after_bytes'])} | {r['peak_rss_per_event_byte']:.2f} | "
              f"{r['wall_s'] * 1000:,.0f} ms | {r['records_per_s']:,.0f} | {s['records_received']:,} | "
              f"{s['loaded']:,} | {s['data_api_calls']} |")
    six = [r for r in runs if r["event"] == "6MB"]
    med = lambda key: statistics.median(r[key] for r in six)  # noqa: E731
    print(f"| **6MB median** | | | {mb(med('idle_hwm_bytes'))} | **{mb(med('peak_rss_bytes'))}** | | "
          f"{med('peak_rss_per_event_byte'):.2f} | **{med('wall_s') * 1000:,.0f} ms** | "
          f"**{med('records_per_s'):,.0f}** | | | |\n")
    goals = {"cold_start_median_ms": cold["median_ms"], "cold_start_met": cold["median_ms"] <= COLD_START_GOAL_MS,
             "peak_rss_6mb_median_mb": med("peak_rss_bytes") / MB}
    goals["peak_rss_met"] = goals["peak_rss_6mb_median_mb"] <= PEAK_RSS_GOAL_MB
    met = lambda ok: "met" if ok else "not met"  # noqa: E731
    print(f"cold start median {cold['median_ms']:.1f} ms (goal ≤ {COLD_START_GOAL_MS} ms): "
          f"{met(goals['cold_start_met'])}\npeak RSS {goals['peak_rss_6mb_median_mb']:.1f} MB on 6 MB event "
          f"(goal ≤ {PEAK_RSS_GOAL_MB} MB): {met(goals['peak_rss_met'])}")
    return goals


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold-starts", type=int, default=30, help="fresh processes to time (default 30)")
    parser.add_argument("--runs", type=int, default=3, help="6 MB invocations, fresh process each (default 3)")
    parser.add_argument("--skip-10k", action="store_true", help="skip the 10,000-record (45 MB) event")
    args = parser.parse_args()
    if args.cold_starts < 2 or args.runs < 1:
        parser.error("--cold-starts must be at least 2 and --runs at least 1")
    if not shutil.which("psql"):
        raise Fail("psql not found: the local stack needs PostgreSQL 15 (scripts/install-deps.sh)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so that the stack goes down
    target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
    target = target if target.is_absolute() else ROOT / target
    venv = Path(os.environ.get("VENV") or ROOT / ".venv")
    if not (venv / "bin/python").exists():
        run([ROOT / "scripts/install-deps.sh"])
    run(["cargo", "build", "--release", "--locked", "-p", "cdc-ingest", "-p", "bench-transform"])
    binary, tool = target / "release/ingest", target / "release/bench-transform"

    tmp = Path(tempfile.mkdtemp(prefix="runtime-probe."))
    # A private stack directory: a stack someone else brought up in .local stays untouched.
    stack_env = {**os.environ, "VENV": str(venv), "LOCAL_STACK_DIR": str(tmp / "stack")}
    runtime, runs = Runtime(), []
    try:
        with open(tmp / "ingest.log", "w+") as log:
            events = [("6MB", ["--max-bytes", str(PAYLOAD_LIMIT)], args.runs)]
            if not args.skip_10k:
                events.append(("10k", ["--records", "10000"], 1))
            counts = {}
            for name, flags, _ in events:
                out = run([tool, "write-event", *flags, "--out", tmp / f"{name}.json"], stdout=subprocess.PIPE)
                counts[name] = json.loads(out.stdout)["records"]
            try:  # `down` also after a failed `up`: it stops whatever was started
                up = run([ROOT / "scripts/local-stack.sh", "up"], env=stack_env, stdout=subprocess.PIPE, text=True)
                stack = dict(kv.split("=", 1) for line in up.stdout.splitlines()
                             for kv in shlex.split(line) if kv != "export")
                samples, cold_calls = cold_starts(binary, runtime, stack, args.cold_starts, log)
                if cold_calls != {"DescribeTable": CHECKED_TABLES * args.cold_starts}:
                    raise Fail(f"{args.cold_starts} cold starts made {cold_calls} Data API calls, "
                               f"expected DescribeTable × {CHECKED_TABLES} each")
                for name, _, repeat in events:
                    for _ in range(repeat):
                        runs.append(invoke(binary, runtime, stack, name, tmp / f"{name}.json", counts[name], log))
            finally:
                subprocess.run([ROOT / "scripts/local-stack.sh", "down"], env=stack_env, cwd=ROOT,
                               stdout=subprocess.DEVNULL)
    finally:  # a failure has shown the tail of the function's log already
        runtime.server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    cold = {"runs": len(samples), "median_ms": statistics.median(samples),
            "p90_ms": statistics.quantiles(samples, n=10, method="inclusive")[8],
            "min_ms": min(samples), "max_ms": max(samples), "describe_table_calls_each": CHECKED_TABLES,
            "samples_ms": samples}
    goals = report(cold, runs)
    out = target / "criterion/runtime-probe.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cold_start": cold, "runs": runs, "goals": goals}, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        sys.exit(f"runtime_probe: FAILED: {e}")
    except KeyboardInterrupt:
        sys.exit("runtime_probe: interrupted")
