"""The Python peer of the Rust transform path, for a side-by-side benchmark.

What a competent engineer would write in a Python Lambda for the same job: AWS Lambda
Powertools' Kafka consumer (`@kafka_consumer`, JSON values) decodes each MSK record, then plain
Python unwraps the JsonConverter `{"schema", "payload"}` message, reads the Debezium envelope,
converts the row image by its Connect schema, validates and masks it per config/pipeline.toml,
computes the SQL Server source position, keeps the latest change per key and renders the
Redshift apply SQL (multi-row INSERTs of at most 90 KiB into "_cdc_stage", as
shared/src/redshift/sql.rs does).

    python transform.py EVENT.json --config FILE [--iterations N] [--now-micros T]

Times N iterations of the handler on the parsed event bytes and prints one JSON line with the
same fields as `bench-transform`. The masking key is MASKING_KEY (default the benchmark key).
"""

from __future__ import annotations

import argparse
import binascii
import fnmatch
import hashlib
import hmac
import json
import math
import os
import re
import statistics
import sys
import time
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from aws_lambda_powertools.utilities.kafka import SchemaConfig, kafka_consumer
from aws_lambda_powertools.utilities.kafka.consumer_records import ConsumerRecords
from aws_lambda_powertools.utilities.kafka.exceptions import KafkaConsumerDeserializationError

DEFAULT_MASKING_KEY = "benchmark-masking-key-0123456789abcdef012"
MAX_STATEMENT_BYTES = 90 * 1024
MAX_STATEMENTS = 40  # per BatchExecuteStatement
STAGE = '"_cdc_stage"'
METADATA_COLUMNS = ["_cdc_position", "_cdc_op", "_cdc_deleted", "_cdc_source_ts", "_cdc_loaded_at"]
EPOCH = datetime(1970, 1, 1)
LSN = re.compile(r"[0-9a-fA-F]{8}:[0-9a-fA-F]{8}:[0-9a-fA-F]{4}")

INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
# Connect/Debezium logical name (or config type hint) -> epoch ticks to microseconds (floor).
TIMESTAMP_TO_MICROS = {
    "io.debezium.time.Timestamp": lambda ms: ms * 1000,
    "org.apache.kafka.connect.data.Timestamp": lambda ms: ms * 1000,
    "io.debezium.time.MicroTimestamp": lambda us: us,
    "io.debezium.time.NanoTimestamp": lambda ns: ns // 1000,
    "timestamp_ms": lambda ms: ms * 1000,
    "timestamp_us": lambda us: us,
    "timestamp_ns": lambda ns: ns // 1000,
}
DATE_TYPES = {"io.debezium.time.Date", "org.apache.kafka.connect.data.Date", "date"}
# Column keys of config/pipeline.toml this peer implements (min/max bounds it does not).
COLUMN_KEYS = {"type", "scale", "required", "max_bytes", "pattern", "one_of", "not_future", "mask"}
MASK_DEFAULTS = {
    "hmac": {"length": 64},
    "year": {},
    "null": {},
    "redact": {"with": "REDACTED"},
    "partial": {"keep_last": 4, "char": "*"},
}


class Rejected(Exception):
    """A record that cannot be loaded; `reasons` are (column or None, rule) pairs."""

    def __init__(self, *reasons: tuple[str | None, str]):
        super().__init__(reasons)
        self.reasons = list(reasons)


@dataclass
class Change:
    coordinates: tuple  # (topic, partition, offset): the batch order
    table: dict
    op: str
    deleted: bool
    position: str
    source_ts_ms: int | None
    columns: dict  # column name -> Python value, in row-image order
    key: tuple


@dataclass
class BatchResult:
    changes: list[Change] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)
    skipped: int = 0
    transactions: list[list[str]] = field(default_factory=list)
    planned_rows: int = 0
    first_masked_ssn: str | None = None


# --- configuration -------------------------------------------------------------------------


def load_config(path: str) -> dict:
    """config/pipeline.toml with each column's regex compiled and `one_of` as a set."""
    with open(path, "rb") as f:
        config = tomllib.load(f)
    config.setdefault("pipeline", {})
    for table in config.get("tables", []):
        if "key" not in table:
            raise ValueError(f"{path}: the Python peer needs tables.key for {table['target']}")
        schema, _, name = table["target"].lower().rpartition(".")
        table["target"] = (schema or "public", name)
        table["key"] = [k.lower() for k in table["key"]]
        table.setdefault("delete_mode", "soft")
        table.setdefault("lock", False)
        table["columns"] = {name.lower(): rules for name, rules in table.get("columns", {}).items()}
        for column, rules in table["columns"].items():
            if unsupported := set(rules) - COLUMN_KEYS:
                raise ValueError(f"{path}: {column}: the Python peer does not implement {sorted(unsupported)}")
            if "pattern" in rules:
                rules["pattern"] = re.compile(rules["pattern"])
            if "one_of" in rules:
                rules["one_of"] = set(rules["one_of"])
            if "mask" in rules:
                spec = rules["mask"] if isinstance(rules["mask"], dict) else {"type": rules["mask"]}
                rules["mask"] = {**MASK_DEFAULTS[spec["type"]], **spec}
    return config


def route(config: dict, topic: str) -> dict | None:
    for table in config.get("tables", []):
        if fnmatch.fnmatchcase(topic, table["topic"]):
            return table
    return None


# --- decoding --------------------------------------------------------------------------------


def timestamp_from_micros(micros: int, column: str) -> datetime:
    """A zone-less timestamp: Debezium writes the wall clock as if it were UTC."""
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise Rejected((column, "date_range")) from None


def convert(value, field_type: str | None, logical: str | None, column: str, nul: str):
    """A JSON value of the row image as a Python value, by its Connect type (or config hint)."""
    if value is None:
        return None
    if isinstance(value, str) and "\0" in value:
        if nul != "strip":
            raise Rejected((column, "nul"))
        value = value.replace("\0", "")
    if logical in TIMESTAMP_TO_MICROS:
        if not isinstance(value, int):
            raise Rejected((column, "type"))
        return timestamp_from_micros(TIMESTAMP_TO_MICROS[logical](value), column)
    if logical in DATE_TYPES:
        if not isinstance(value, int):
            raise Rejected((column, "type"))
        try:
            return date(1970, 1, 1) + timedelta(days=value)
        except OverflowError:
            raise Rejected((column, "date_range")) from None
    if field_type in INT_BITS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Rejected((column, "type"))
        bound = 2 ** (INT_BITS[field_type] - 1)
        if not -bound <= value < bound:
            raise Rejected((column, "int_range"))
        return value
    if field_type == "string":
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


def decode_row(image: dict, row_schema: dict | None, table: dict, nul: str) -> dict:
    """Column name (lowercase) -> value. Types from the Connect schema, else the config hints."""
    types = {}
    if row_schema:
        types = {f["field"]: (f.get("type"), f.get("name")) for f in row_schema.get("fields", [])}
    columns, reasons = {}, []
    for name, value in image.items():
        column = name.lower()
        if name in types:
            field_type, logical = types[name]
        else:
            hint = table["columns"].get(column, {}).get("type")
            field_type, logical = hint, hint
        try:
            columns[column] = convert(value, field_type, logical, column, nul)
        except Rejected as e:
            reasons.extend(e.reasons)
    if reasons:
        raise Rejected(*reasons)
    return columns


def sqlserver_lsn(lsn: str) -> str:
    if not LSN.fullmatch(lsn):
        raise Rejected((None, "source_position"))
    return lsn.replace(":", "").lower()


def non_negative(number) -> int:
    number = int(number or 0)
    if number < 0:
        raise Rejected((None, "source_position"))
    return number


def source_position(source: dict | None, fallback_ts_ms: int, record) -> str:
    """Fixed-width text that sorts in source commit order (README "Source position")."""
    source = source or {}
    connector = source.get("connector")
    if connector == "sqlserver" and source.get("commit_lsn") is not None:
        commit = sqlserver_lsn(source["commit_lsn"])
        change = sqlserver_lsn(source["change_lsn"]) if source.get("change_lsn") is not None else "0" * 20
        return f"{commit}{change}{non_negative(source.get('event_serial_no')):016x}"
    if connector == "postgresql" and source.get("lsn") is not None:
        return f"{non_negative(source['lsn']):016x}"
    if connector in ("mysql", "mariadb") and source.get("file") is not None and source.get("pos") is not None:
        number = source["file"].rpartition(".")[2]
        if not number.isdigit():
            raise Rejected((None, "source_position"))
        return f"{int(number):010d}{non_negative(source['pos']):020d}{non_negative(source.get('row')):010d}"
    ts_ms = source["ts_ms"] if source.get("ts_ms") is not None else fallback_ts_ms
    return f"{max(ts_ms, 0):020d}{max(int(record.partition), 0):010d}{max(int(record.offset), 0):020d}"


def text_of(value) -> str:
    """The value's text as rules and masks see it (timestamps in the SQL form)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- validation and masks --------------------------------------------------------------------


def validate(columns: dict, table: dict, now: datetime) -> None:
    reasons = []
    for column, rules in sorted(table["columns"].items()):
        value = columns.get(column)
        if value is None:
            if rules.get("required"):
                reasons.append((column, "required"))
            continue
        text = text_of(value)
        if "max_bytes" in rules and len(text.encode("utf-8")) > rules["max_bytes"]:
            reasons.append((column, "max_bytes"))
        if "pattern" in rules and not rules["pattern"].search(text):
            reasons.append((column, "pattern"))
        if "one_of" in rules and text not in rules["one_of"]:
            reasons.append((column, "one_of"))
        if rules.get("not_future"):
            if isinstance(value, datetime):
                future = value > now
            elif isinstance(value, date):
                future = value > now.date()
            else:
                future = True
            if future:
                reasons.append((column, "not_future"))
    if reasons:
        raise Rejected(*reasons)


def mask(columns: dict, table: dict, masking_key: bytes) -> None:
    for column, rules in table["columns"].items():
        spec = rules.get("mask")
        value = columns.get(column)
        if spec is None or value is None:
            continue
        kind = spec["type"]
        if kind == "hmac":
            digest = hmac.new(masking_key, text_of(value).encode("utf-8"), hashlib.sha256).hexdigest()
            columns[column] = digest[: spec["length"]]
        elif kind == "year":
            if isinstance(value, datetime):
                columns[column] = datetime(value.year, 1, 1)
            elif isinstance(value, date):
                columns[column] = date(value.year, 1, 1)
            else:
                raise Rejected((column, "mask_year"))
        elif kind == "null":
            columns[column] = None
        elif kind == "redact":
            columns[column] = spec["with"]
        elif kind == "partial":
            text = text_of(value)
            keep = spec["keep_last"] if len(text) > spec["keep_last"] else 0
            columns[column] = spec["char"] * (len(text) - keep) + text[len(text) - keep :]


# --- one record ------------------------------------------------------------------------------


def key_from_kafka_key(record, column: str):
    """A key column from the Kafka key (a delete without `before`)."""
    try:
        key = record.key
    except KafkaConsumerDeserializationError:
        return None
    if isinstance(key, dict) and set(key) == {"schema", "payload"}:
        key = key["payload"]
    if isinstance(key, dict):
        return next((v for k, v in key.items() if k.lower() == column), None)
    return key


def transform_record(record, config: dict, masking_key: bytes, now: datetime) -> Change | None:
    """A record's change, or None when it is skipped. Raises Rejected."""
    topic = record.topic
    if topic.startswith("__debezium-heartbeat") or topic.endswith(".transaction"):
        return None
    if record.get("value") is None:  # tombstone: the preceding delete already carries it
        return None
    try:
        message = record.value
    except KafkaConsumerDeserializationError as e:
        raise Rejected((None, "base64" if isinstance(e.__cause__, binascii.Error) else "json")) from None
    if not isinstance(message, dict):
        raise Rejected((None, "not_an_envelope"))
    schema = None
    if set(message) == {"schema", "payload"}:
        schema, message = message["schema"], message["payload"]
        if not isinstance(message, dict):
            raise Rejected((None, "not_an_envelope"))
    op = message.get("op")
    if op is None:
        if "tableChanges" in message or "ddl" in message:
            return None  # a schema change
        if ("status" in message and "id" in message) or set(message) == {"ts_ms"}:
            return None  # a transaction marker or a heartbeat
        raise Rejected((None, "not_an_envelope"))
    if op in ("t", "m"):
        if config["pipeline"].get("on_truncate" if op == "t" else "on_message", "skip") == "skip":
            return None
        raise Rejected((None, "truncate" if op == "t" else "message"))
    if op not in ("r", "c", "u", "d"):
        raise Rejected((None, "unknown_op"))
    table = route(config, topic)
    if table is None:
        if config["pipeline"].get("unroutable", "reject") == "skip":
            return None
        raise Rejected((None, "unroutable"))

    source = message.get("source") or {}
    if source.get("ts_ms") is not None:
        fallback_ts_ms = source["ts_ms"]
    elif message.get("ts_ms") is not None:
        fallback_ts_ms = message["ts_ms"]
    else:
        fallback_ts_ms = record.timestamp
    position = source_position(source, fallback_ts_ms, record)
    deleted = op == "d"
    image = message.get("before" if deleted else "after")
    if image is None and not deleted:
        raise Rejected((None, "row_image"))
    row_schema = None
    if schema:
        image_field = "before" if deleted else "after"
        row_schema = next((f for f in schema.get("fields", []) if f.get("field") == image_field), None)
    columns = decode_row(image or {}, row_schema, table, config["pipeline"].get("nul", "reject"))
    for column in table["key"]:
        if column not in columns:  # e.g. a delete without `before`
            columns[column] = key_from_kafka_key(record, column)
        if columns[column] is None:
            raise Rejected((column, "missing_key"))
    if not deleted:
        validate(columns, table, now)
    mask(columns, table, masking_key)
    return Change(
        coordinates=(topic, int(record.partition), int(record.offset)),
        table=table,
        op=op,
        deleted=deleted,
        position=position,
        source_ts_ms=source.get("ts_ms"),
        columns=columns,
        key=tuple(columns[k] for k in table["key"]),
    )


# --- plan and SQL ----------------------------------------------------------------------------


def plan(changes: list[Change]) -> dict[tuple, list[Change]]:
    """Per target table (sorted), the latest change per key: the greatest position, then the
    later record in batch order (topic, partition, offset). Rows are in batch order."""
    latest: dict[tuple, Change] = {}
    for change in changes:
        slot = (change.table["target"], change.key)
        current = latest.get(slot)
        if current is None or (change.position, change.coordinates) > (current.position, current.coordinates):
            latest[slot] = change
    tables: dict[tuple, list[Change]] = {}
    for change in sorted(latest.values(), key=lambda change: change.coordinates):
        tables.setdefault(change.table["target"], []).append(change)
    return dict(sorted(tables.items()))


def ident(name: str) -> str:
    return '"' + name.lower().replace('"', '""') + '"'


def literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and not math.isfinite(value):
        return "'NaN'" if math.isnan(value) else ("'Infinity'" if value > 0 else "'-Infinity'")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (datetime, date)):
        return f"'{text_of(value)}'"
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def build_transactions(table: dict, columns: list[str], rows: list[Change], loaded_at: datetime) -> list[list[str]]:
    """The apply SQL, one list of statements per transaction: [LOCK target,] CREATE stage,
    INSERTs of at most 90 KiB, stale-change guard, delete, insert."""
    target = ".".join(ident(part) for part in table["target"])
    column_list = ", ".join(ident(c) for c in columns + METADATA_COLUMNS)
    key_match = " AND ".join(f"{target}.{ident(k)} = {STAGE}.{ident(k)}" for k in table["key"])
    head = [f"LOCK {target}"] if table["lock"] else []
    head.append(f"CREATE TEMP TABLE {STAGE} (LIKE {target})")
    tail = [
        f'DELETE FROM {STAGE} USING {target} WHERE {key_match} AND {target}."_cdc_position" >= {STAGE}."_cdc_position"',
        f"DELETE FROM {target} USING {STAGE} WHERE {key_match}",
        f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM {STAGE}"
        + (' WHERE NOT "_cdc_deleted"' if table["delete_mode"] == "hard" else ""),
    ]
    insert_header = f"INSERT INTO {STAGE} ({column_list}) VALUES "
    header_bytes = len(insert_header.encode("utf-8"))
    loaded = literal(loaded_at)

    inserts: list[str] = []
    statement: list[str] = []
    size = 0
    for row in rows:
        source_ts = None
        if row.source_ts_ms is not None:
            try:
                source_ts = EPOCH + timedelta(milliseconds=row.source_ts_ms)
            except OverflowError:
                pass
        values = [literal(row.columns.get(c)) for c in columns]
        values += [literal(row.position), literal(row.op), literal(row.deleted), literal(source_ts), loaded]
        values_tuple = "(" + ",".join(values) + ")"
        tuple_bytes = len(values_tuple.encode("utf-8"))
        if header_bytes + tuple_bytes > MAX_STATEMENT_BYTES:
            continue  # row_too_large: the loader dead-letters it
        if statement and size + 1 + tuple_bytes > MAX_STATEMENT_BYTES:
            inserts.append(insert_header + ",".join(statement))
            statement, size = [], 0
        if not statement:
            size = header_bytes
        else:
            size += 1
        statement.append(values_tuple)
        size += tuple_bytes
    if statement:
        inserts.append(insert_header + ",".join(statement))

    per_transaction = MAX_STATEMENTS - len(head) - len(tail)
    return [[*head, *inserts[i : i + per_transaction], *tail] for i in range(0, len(inserts), per_transaction)]


# --- the handler -----------------------------------------------------------------------------


def make_handler(config: dict, masking_key: bytes, now: datetime):
    """The Lambda handler, built once at cold start."""

    @kafka_consumer(schema_config=SchemaConfig(value_schema_type="JSON", key_schema_type="JSON"))
    def handler(event: ConsumerRecords, context) -> BatchResult:
        result = BatchResult()
        for record in event.records:
            try:
                change = transform_record(record, config, masking_key, now)
            except Rejected as e:
                result.rejects.append((record.topic, record.partition, record.offset, e.reasons))
                continue
            if change is None:
                result.skipped += 1
            else:
                result.changes.append(change)
        in_batch_order = sorted(result.changes, key=lambda change: change.coordinates)
        for target, rows in plan(result.changes).items():
            table = rows[0].table
            # Every column any change of the table sets, key columns first, in first-seen order.
            seen = (c for change in in_batch_order if change.table["target"] == target for c in change.columns)
            columns = list(dict.fromkeys([*table["key"], *seen]))
            result.transactions += build_transactions(table, columns, rows, now)
            result.planned_rows += len(rows)
            if result.first_masked_ssn is None:
                result.first_masked_ssn = rows[0].columns.get("ssn")
        return result

    return handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event")
    parser.add_argument("--config", required=True)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--now-micros", type=int, help="fixed clock for not_future and _cdc_loaded_at")
    args = parser.parse_args(argv)

    with open(args.event, "rb") as f:
        event_bytes = f.read()
    config = load_config(args.config)
    masking_key = os.environ.get("MASKING_KEY", DEFAULT_MASKING_KEY).encode("utf-8")
    if args.now_micros is not None:
        now = EPOCH + timedelta(microseconds=args.now_micros)
    else:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
    handler = make_handler(config, masking_key, now)

    # One untimed run for the cross-check digest, as the Rust side does.
    reference = handler(json.loads(event_bytes), None)
    digest = hashlib.sha256()
    for statement in (s for tx in reference.transactions for s in tx):
        digest.update(statement.encode("utf-8") + b";\n")

    times = []
    cpu_started = time.thread_time()
    for _ in range(args.iterations):
        started = time.perf_counter()
        handler(json.loads(event_bytes), None)  # Lambda's runtime parses the event JSON
        times.append(time.perf_counter() - started)
    mean_cpu = (time.thread_time() - cpu_started) / args.iterations  # CPU time per iteration

    records = sum(len(group) for group in json.loads(event_bytes)["records"].values())
    median = statistics.median(times)
    print(
        json.dumps(
            {
                "impl": "python",
                "records": records,
                "event_bytes": len(event_bytes),
                "iterations": args.iterations,
                "median_s": round(median, 6),
                "best_s": round(min(times), 6),
                "records_per_s": round(records / median, 1),
                "mean_cpu_s": round(mean_cpu, 6),
                "planned_rows": reference.planned_rows,
                "rejected": len(reference.rejects),
                "statements": sum(len(tx) for tx in reference.transactions),
                "sql_bytes": sum(len(s.encode("utf-8")) for tx in reference.transactions for s in tx),
                "sql_sha256": digest.hexdigest(),
                "first_masked_ssn": reference.first_masked_ssn,
            },
            separators=(",", ":"),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
