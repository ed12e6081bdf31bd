#!/usr/bin/env python3
"""Write seed corpora for the fuzz targets from the sample events in events/.

    python3 fuzz/seeds.py [OUT_DIR]      # default: fuzz/seeds

OUT_DIR/<target>/ gets one file per seed, named by content hash (idempotent). run.sh passes
these as a second, read-only corpus directory, so the committed corpus (fuzz/corpus/)
only holds what the fuzzer found.

debezium_decode seeds follow the target's input layout (see its header): a control byte,
then parts separated by 0xFF.
"""

import base64
import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEP = b"\xff"
# control byte fields (fuzz_targets/debezium_decode.rs)
RAW, AFTER, WRAPPED, BEFORE = 0, 1, 2, 3
CONFIGS = (0, 1)  # config/pipeline.toml, the fuzz config
OPS = {"c": 0, "u": 1, "r": 2, "d": 3}


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def control(mode: int, config: int, op: str = "c", twice: bool = False) -> bytes:
    return bytes([mode | config << 2 | OPS.get(op, 0) << 4 | (0x80 if twice else 0)])


def write(out: pathlib.Path, target: str, data: bytes) -> None:
    directory = out / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def records(event: dict):
    for group in (event.get("records") or {}).values():
        for record in group or []:
            yield record


def b64(text):
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except Exception:
        return None


def debezium_seeds(record: dict):
    value, key = b64(record.get("value")), b64(record.get("key"))
    if value is None:
        return
    key_part = [key] if key is not None else []
    for config in CONFIGS:
        yield control(RAW, config) + SEP.join([value] + key_part)
    try:
        message = json.loads(value)
    except ValueError:
        return
    if not isinstance(message, dict):
        return
    schema = None
    if set(message) == {"schema", "payload"}:
        schema, message = message["schema"], message["payload"]
    if not isinstance(message, dict):
        return
    op = message.get("op") if isinstance(message.get("op"), str) else "c"
    for config in CONFIGS:
        if message.get("after") is not None:
            after = compact(message["after"])
            yield control(AFTER, config, op) + SEP.join([after] + key_part)
            yield control(AFTER, config, op, twice=True) + SEP.join([after] + key_part)
            if schema is not None:
                yield control(WRAPPED, config, op) + SEP.join([compact(schema), after] + key_part)
        if message.get("before") is not None:
            yield control(BEFORE, config) + SEP.join([compact(message["before"])] + key_part)


SQL_STRINGS = [
    "", "a", "O'Brien", "''", "'", "\\", "\\\\", "\\'", "'\\", r"C:\temp\new", r"\'; DROP TABLE t; --",
    "trailing\\", "\\x41", "\\u0041", "\\n", "$$", "$tag$", "\"quoted\"", "é", "日本語", "\U0001F600",
    "line\nbreak", "tab\there", "\r\n", "E'x'", "%s", "?", "$1", "/* c */", "-- c", "Σ", "İ", "ß",
]


def main() -> None:
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "seeds"
    for path in sorted((ROOT / "events").glob("*.json")):
        raw = path.read_bytes()
        write(out, "msk_event", raw)
        event = json.loads(raw)
        write(out, "msk_event", compact(event))
        for record in records(event):
            for seed in debezium_seeds(record):
                write(out, "debezium_decode", seed)
            # one-record events, for msk_event
            single = {"eventSource": event.get("eventSource"), "records": {"t-0": [record]}}
            write(out, "msk_event", compact(single))
    for text in SQL_STRINGS:
        write(out, "sql_literal", text.encode())
    for target in ("msk_event", "debezium_decode", "sql_literal"):
        count = len(list((out / target).iterdir()))
        print(f"{target}: {count} seeds in {out / target}")


if __name__ == "__main__":
    main()
