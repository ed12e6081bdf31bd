#!/usr/bin/env bash
# `make demo`: the local stack up, `cdc check` of its targets, an Avro topic through the Glue
# Schema Registry (moto), every sample event ingested with
# `cdc ingest`, the table and the dead letters (`cdc dlq list`) shown, a replay (dry run, then
# for real with the rules that rejected the records relaxed, `cdc replay --all`) whose counts
# must match, the table again — and the stack down, even on failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
trap 'echo; echo "== local stack down"; scripts/local-stack.sh down' EXIT

echo "== local stack up (PostgreSQL 15, redshift-data-local, moto S3 and Glue)"
# Captured first: `eval "$(…)"` would hide a failed `up` (eval of nothing succeeds).
stack_env="$(scripts/local-stack.sh up)"
eval "$stack_env"
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

same_counts() { # DRY REAL: the replay responses' record and object counts, equal or exit 1
  python3 - "$1" "$2" <<'PY'
import json, sys
dry, real = (json.load(open(p)) for p in sys.argv[1:3])
keys = ["objects_scanned", "records_loaded", "records_stale", "records_superseded", "records_skipped",
        "records_rejected", "records_quarantined"]
would = sum(o["outcome"] == "would_archive" for o in dry["objects"])
pairs = [(k, dry[k], real[k]) for k in keys] + [("objects archived", would, real["objects_archived"])]
if all(d == r for _, d, r in pairs):
    print("  dry run == real run: " + ", ".join(f"{k} {r}" for k, _, r in pairs))
else:
    print("  dry run != real run: " + ", ".join(f"{k} {d}/{r}" for k, d, r in pairs if d != r))
    sys.exit(1)
PY
}

echo
echo "== cdc check: the targets the stack created, against the local Data API"
"$cdc" check | sed 's/^/  /'

echo
echo "== an Avro topic: samples 01-04 as Debezium's AvroConverter writes them, their schemas"
echo "   registered in AWS Glue's Schema Registry (moto), read back by cdc ingest (SCHEMA_REGISTRY=glue)"
"$cdc" make-event --avro glue --glue-registry cdc-demo \
  events/01-patientinfo-snapshot.json events/02-patientinfo-create.json \
  events/03-patientinfo-update.json events/04-patientinfo-delete.json >"${LOCAL_STACK_DIR:-$root/.local}/avro-event.json"
printf '  %-38s ' "avro (Glue frames, 7 records)"
"$cdc" ingest "${LOCAL_STACK_DIR:-$root/.local}/avro-event.json" 2>/dev/null | summary

echo
echo "== ingest every sample event (cdc ingest --config config/pipeline.toml; 01-04 are now"
echo "   stale: the Avro topic carried the same changes)"
for event in events/*.json; do
  printf '  %-38s ' "$(basename "$event")"
  "$cdc" ingest "$event" 2>/dev/null | summary
done

echo
echo "== public.patientinfo (SSN masked with hmac, DOB with year)"
show_table
echo "== dead-letter objects (cdc dlq list: coordinates, stages, rules, attempts; never a value)"
"$cdc" dlq list

state="${LOCAL_STACK_DIR:-$root/.local}"
echo
echo "== replay, dry run, with config/replay-relaxed.toml (validation rules removed)"
echo '{"dry_run": true}' >"$state/replay-dry-run.json"
CDC_CONFIG="$root/config/replay-relaxed.toml" "$cdc" replay --all "$state/replay-dry-run.json" 2>/dev/null \
  | tee "$state/replay-dry-run.out" | summary
echo "== replay (cdc replay --all: every object, following next_key)"
echo '{}' >"$state/replay.json"
CDC_CONFIG="$root/config/replay-relaxed.toml" "$cdc" replay --all "$state/replay.json" 2>/dev/null \
  | tee "$state/replay.out" | summary
same_counts "$state/replay-dry-run.out" "$state/replay.out"

echo
echo "== public.patientinfo after the replay"
show_table
echo "== the analytics views cdc ddl --views made (soft-deleted rows left out)"
for view in patientinfo_by_state patientinfo_dob_age_bands patientinfo_quality; do
  echo "-- public.$view"
  psql -q "$DATABASE_URL" -c "SELECT * FROM public.$view ORDER BY 1"
done
echo "== dead-letter objects after the replay (archived ones under archive/; the undecodable"
echo "   records and the name too long for VARCHAR(100) are dead-lettered again, attempts 2)"
"$cdc" dlq list
