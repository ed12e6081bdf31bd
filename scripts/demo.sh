#!/usr/bin/env bash
# `make demo`: the local stack up, every sample event ingested with `cdc ingest`, the table and
# the dead-letter objects shown, a replay (dry run, then for real with the rules that rejected
# the records relaxed), the table again — and the stack down, even on failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
trap 'echo; echo "== local stack down"; scripts/local-stack.sh down' EXIT

echo "== local stack up (PostgreSQL 15, redshift-data-local, moto S3)"
eval "$(scripts/local-stack.sh up)"
cdc="$target_dir/debug/cdc"
export LOG_LEVEL=warn   # the per-batch log lines and metrics go to stderr; keep the demo readable

summary() { # one line from a handler response on stdin
  python3 -c "$(cat <<'PY'
import json, sys
r = json.load(sys.stdin)
if "records_received" in r:
    fields = [("received", r["records_received"]), ("loaded", r["loaded"]), ("stale", r["stale"]),
              ("superseded", r["superseded"]), ("skipped", dict(r["skipped"]) or 0),
              ("dead-lettered", dict(r["dead_lettered"]) or 0), ("Data API calls", r["data_api_calls"])]
else:
    keys = ["dry_run", "objects_scanned", "objects_archived", "objects_failed", "records_loaded",
            "records_stale", "records_rejected", "next_key"]
    fields = [(k, r[k]) for k in keys]
print("  ".join(f"{k} {v}" for k, v in fields))
PY
)"
}

show_table() {
  psql -q "$DATABASE_URL" -c "SELECT id, firstname, lastname, state, left(ssn, 16) || '…' AS ssn_hmac, dob::date AS dob_year, _cdc_op AS op, _cdc_deleted AS deleted FROM public.patientinfo ORDER BY id"
}

show_objects() {
  "$venv/bin/python" - <<'PY'
import json, os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
objects = s3.list_objects_v2(Bucket=os.environ["DLQ_BUCKET"]).get("Contents", [])
if not objects:
    print("  (none)")
for o in objects:
    body = s3.get_object(Bucket=os.environ["DLQ_BUCKET"], Key=o["Key"])["Body"].read().decode()
    lines = [json.loads(l) for l in body.splitlines() if l.strip()]
    print(f"  {o['Key']}")
    for l in lines:
        reasons = ", ".join(f"{r['column'] or 'record'}:{r['rule']}" for r in l["reasons"])
        print(f"      offset {l['offset']:>3}  attempts {l['attempts']}  stage {l['stage']:<8}  {reasons}")
PY
}

echo
echo "== ingest every sample event (cdc ingest --config config/pipeline.toml)"
for event in events/*.json; do
  printf '  %-38s ' "$(basename "$event")"
  "$cdc" ingest "$event" 2>/dev/null | summary
done

echo
echo "== public.patientinfo (SSN masked with hmac, DOB with year)"
show_table
echo "== dead-letter objects"
show_objects

echo
echo "== replay, dry run, with config/replay-relaxed.toml (validation rules removed)"
echo '{"dry_run": true}' >"$root/.local/replay-dry-run.json"
CDC_CONFIG="$root/config/replay-relaxed.toml" "$cdc" replay "$root/.local/replay-dry-run.json" 2>/dev/null | summary
echo "== replay"
echo '{}' >"$root/.local/replay.json"
CDC_CONFIG="$root/config/replay-relaxed.toml" "$cdc" replay "$root/.local/replay.json" 2>/dev/null | summary

echo
echo "== public.patientinfo after the replay"
show_table
echo "== dead-letter objects after the replay (archived ones under archive/; the undecodable"
echo "   records and the name too long for VARCHAR(100) are dead-lettered again, attempts 2)"
show_objects
