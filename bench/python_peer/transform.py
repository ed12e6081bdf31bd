"""The Python peer of the Rust transform path, for a side-by-side benchmark.

What a competent engineer would write in a Python Lambda for the same job: AWS Lambda
Powertools' Kafka consumer (`@kafka_consumer`, JSON values) decodes each MSK record, then plain
Python unwraps the JsonConverter `{"schema", "payload"}` message, reads the Debezium envelope,
converts the row image by its Connect schema, validates and masks it per config/pipeline.toml,
computes the source position, keeps the latest change per key and renders the Redshift apply
SQL of shared/src/redshift/sql.rs: a stage table, multi-row INSERTs of at most 90 KiB, the
stale and out-of-order checks against the target and the schema's delete ledger, the carry
UPDATEs, the UPDATE and INSERT of the target and the ledger writes, in transactions of at most
40 statements.

    python transform.py EVENT.json --config FILE [--iterations N] [--now-micros T]

Times N iterations of the handler on the parsed event bytes and prints one JSON line with the
same fields as `bench-transform`. The masking key is MASKING_KEY (default the benchmark key).
"""

from __future__ import annotations

import argparse
import base64
import binascii
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
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from aws_lambda_powertools.utilities.kafka import SchemaConfig, kafka_consumer
from aws_lambda_powertools.utilities.kafka.consumer_records import ConsumerRecords
from aws_lambda_powertools.utilities.kafka.exceptions import KafkaConsumerDeserializationError

DEFAULT_MASKING_KEY = "benchmark-masking-key-0123456789abcdef012"
MIN_KEY_BYTES = 32
EPOCH = datetime(1970, 1, 1)
EPOCH_DATE = date(1970, 1, 1)

# --- the apply SQL's limits and names (shared/src/redshift/sql.rs) ---------------------------
MAX_STATEMENT_BYTES = 90 * 1024
DATA_API_STATEMENT_BYTES = 100 * 1024
MAX_STATEMENTS = 40  # per BatchExecuteStatement
MAX_TAIL_STATEMENTS = 13  # reserved after the stage inserts, besides the carry UPDATEs
FILL_SOURCE_STATEMENTS = 2
STAGE = '"_cdc_stage"'
METADATA_COLUMNS = [
    "_cdc_position", "_cdc_op", "_cdc_deleted", "_cdc_source_ts", "_cdc_loaded_at",
    "_cdc_kafka_topic", "_cdc_kafka_partition", "_cdc_kafka_offset",
]
LEDGER_COLUMNS = [
    "_cdc_table", "_cdc_key", "_cdc_position", "_cdc_source_ts",
    "_cdc_kafka_topic", "_cdc_kafka_partition", "_cdc_kafka_offset", "_cdc_deleted_at",
]
# The stage's own columns; the stage INSERTs write the first four.
STAGE_COLUMNS = [
    ("_cdc_row", "INTEGER"), ("_cdc_keep", "VARCHAR(1600)"), ("_cdc_key", "VARCHAR(65535)"),
    ("_cdc_found", "CHAR(1)"), ("_cdc_held", "BOOLEAN"), ("_cdc_reject", "VARCHAR(32)"),
]
FILL_SOURCE_COLUMNS = [
    ("_cdc_src_position", "VARCHAR(64)"), ("_cdc_src_source_ts", "TIMESTAMP"),
    ("_cdc_src_kafka_topic", "VARCHAR(249)"), ("_cdc_src_kafka_partition", "INTEGER"),
    ("_cdc_src_kafka_offset", "BIGINT"),
]

# --- types ----------------------------------------------------------------------------------
INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
TICKS_PER_MICRO = {"timestamp_ms": None, "timestamp_us": 1, "timestamp_ns": 1000}
# Connect/Debezium logical names -> the peer's type names. Logical types missing here and in
# UNPORTED fall back to the Connect primitive type, as in shared/src/column_type.rs.
LOGICAL_TYPES = {
    "io.debezium.time.Date": "date",
    "org.apache.kafka.connect.data.Date": "date",
    "io.debezium.time.IsoDate": "date",
    "io.debezium.time.Timestamp": "timestamp_ms",
    "org.apache.kafka.connect.data.Timestamp": "timestamp_ms",
    "io.debezium.time.MicroTimestamp": "timestamp_us",
    "io.debezium.time.NanoTimestamp": "timestamp_ns",
    "io.debezium.data.Uuid": "string",
    "io.debezium.data.Json": "string",
}
UNPORTED_LOGICAL = (
    "io.debezium.time.Time", "org.apache.kafka.connect.data.Time", "io.debezium.time.MicroTime",
    "io.debezium.time.NanoTime", "io.debezium.time.ZonedTime", "io.debezium.time.IsoTime",
    "io.debezium.time.ZonedTimestamp", "io.debezium.time.IsoTimestamp",
    "org.apache.kafka.connect.data.Decimal", "io.debezium.data.VariableScaleDecimal",
)
CONNECT_TYPES = {
    "boolean": "boolean", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "float": "float", "float32": "float", "double": "float", "float64": "float", "string": "string",
    "bytes": "bytes", "struct": "composite", "array": "composite", "map": "composite",
}
# Config `type` hints (for messages without a schema) the peer implements.
TYPE_HINTS = {
    "boolean": "boolean", "bool": "boolean", "int8": "int8", "int16": "int16", "smallint": "int16",
    "int32": "int32", "int": "int32", "integer": "int32", "int64": "int64", "bigint": "int64",
    "float": "float", "float32": "float", "real": "float", "double": "float", "float64": "float",
    "string": "string", "text": "string", "varchar": "string", "uuid": "string", "json": "string",
    "date": "date", "timestamp_ms": "timestamp_ms", "timestamp_us": "timestamp_us", "timestamp_ns": "timestamp_ns",
}
# PostgreSQL's +-infinity timestamps as Debezium sends them, per unit (convert.rs).
INFINITE_TIMESTAMPS = {
    "timestamp_ms": (9_223_372_036_825_200, -9_223_372_036_832_400),
    "timestamp_us": (9_223_372_036_825_200_000, -9_223_372_036_832_400_000),
    "timestamp_ns": (2**63 - 1, -(2**63)),
}
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")

# --- config ---------------------------------------------------------------------------------
TABLE_KEYS = {
    "topic", "target", "key", "delete_mode", "drift", "lock", "tombstones", "unavailable_value_placeholder", "columns",
}
COLUMN_KEYS = {"type", "required", "max_bytes", "pattern", "one_of", "not_future", "mask"}
MASK_DEFAULTS = {
    "hmac": {"length": None},
    "year": {},
    "null": {},
    "redact": {"with": "REDACTED"},
    "partial": {"keep_last": 4, "char": "*"},
}
PLACEHOLDER = "__debezium_unavailable_value"


class Unavailable:
    """Debezium's unavailable-value placeholder: the source did not send the column."""

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = Unavailable()
ABSENT = object()  # a column the change does not carry at all


class Rejected(Exception):
    """A record that cannot be loaded; `reasons` are (column or None, rule) pairs."""

    def __init__(self, *reasons: tuple[str | None, str]):
        super().__init__(reasons)
        self.reasons = list(reasons)


class Skipped(Exception):
    """A record consumed without loading anything."""


@dataclass
class Change:
    table: dict
    op: str
    deleted: bool
    tombstone: bool
    position: str  # "" when unknown
    source_ts_ms: int | None
    topic: str
    partition: int
    offset: int
    key: tuple
    columns: dict  # column name -> value (UNAVAILABLE for a placeholder), in row-image order
    filled_from: Change | None = None  # the oldest earlier change whose values were filled in

    @property
    def coordinates(self) -> tuple:
        return (self.topic, self.partition, self.offset)


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
    """config/pipeline.toml with topic globs and column regexes compiled and defaults filled in.
    Refuses what the peer does not implement."""
    with open(path, "rb") as f:
        config = tomllib.load(f)
    config.setdefault("pipeline", {})
    for table in config.get("tables", []):
        if unsupported := set(table) - TABLE_KEYS:
            raise ValueError(f"{path}: the Python peer does not implement tables.{sorted(unsupported)}")
        if "key" not in table:
            raise ValueError(f"{path}: the Python peer needs tables.key for {table['target']}")
        glob = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in table["topic"])
        table["topic_re"] = re.compile(glob)
        schema, dot, name = table["target"].partition(".")
        table["target"] = (schema.lower(), name.lower()) if dot else ("public", schema.lower())
        table["key"] = [k.lower() for k in table["key"]]
        table.setdefault("delete_mode", "soft")
        table.setdefault("lock", True)
        table.setdefault("tombstones", "delete")
        placeholder = table.setdefault("unavailable_value_placeholder", PLACEHOLDER)
        if placeholder.startswith("hex:"):
            raise ValueError(f"{path}: the Python peer does not implement `hex:` placeholders")
        table["placeholder_base64"] = base64.b64encode(placeholder.encode()).decode()
        table["placeholder_map"] = json.dumps({placeholder: placeholder}, separators=(",", ":"), ensure_ascii=False)
        table["columns"] = {name.lower(): rules for name, rules in table.get("columns", {}).items()}
        for column, rules in table["columns"].items():
            if unsupported := set(rules) - COLUMN_KEYS:
                raise ValueError(f"{path}: {column}: the Python peer does not implement {sorted(unsupported)}")
            if "type" in rules:
                if rules["type"] not in TYPE_HINTS:
                    raise ValueError(f"{path}: {column}: the Python peer does not implement type {rules['type']}")
                rules["type"] = TYPE_HINTS[rules["type"]]
            if "pattern" in rules:
                rules["pattern"] = re.compile(rules["pattern"])
            if "one_of" in rules:
                rules["one_of"] = set(rules["one_of"])
            if "mask" in rules:
                spec = rules["mask"] if isinstance(rules["mask"], dict) else {"type": rules["mask"]}
                if "salt" in spec:
                    raise ValueError(f"{path}: {column}: the Python peer does not implement hmac salts")
                rules["mask"] = {**MASK_DEFAULTS[spec["type"]], **spec}
    return config


def route(config: dict, topic: str) -> dict | None:
    for table in config.get("tables", []):
        if table["topic_re"].fullmatch(topic):
            return table
    return None


# --- values ----------------------------------------------------------------------------------


def float_text(x: float) -> str:
    """Rust's `Display` of an f64: the shortest digits that read back, never an exponent."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return format(Decimal(repr(x)).normalize(), "f")


def text_of(value) -> str:
    """The value's text as rules, masks and the delete ledger see it."""
    if value is None or value is UNAVAILABLE:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return str(value)  # int, date


def timestamp_from_micros(micros: int) -> datetime | None:
    """A zone-less timestamp (Debezium writes the wall clock as if it were UTC); None outside
    years 1 to 9999."""
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None


def is_placeholder(value, field_type: str, table: dict) -> bool:
    if isinstance(value, str):
        return (
            value == table["unavailable_value_placeholder"]
            or value == table["placeholder_map"]
            or (field_type in ("bytes", "untyped") and value == table["placeholder_base64"])
        )
    if isinstance(value, list):
        text = table["unavailable_value_placeholder"]
        return value in ([text], [table["placeholder_base64"]], list(text.encode()))
    if isinstance(value, dict):
        text = table["unavailable_value_placeholder"]
        return value == {text: text}
    return False


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_int(value) -> int:
    """An integer from a JSON number or numeric string. Raises ValueError(rule)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and INTEGER_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValueError("type")
    if not -(2**63) <= number < 2**63:
        raise ValueError("int_range")
    return number


def convert(value, field_type: str, nul: str, table: dict | None):
    """A JSON value of a row image (or key) as a Python value, by its column type. Raises
    ValueError(rule). `table` gives the placeholder (None for key fields)."""
    if value is None:
        return None
    if isinstance(value, str) and "\0" in value:
        if nul != "strip":
            raise ValueError("nul")
        value = value.replace("\0", "")
    if table is not None and is_placeholder(value, field_type, table):
        return UNAVAILABLE
    if field_type == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return compact(value)
    if field_type in INT_BITS:
        number = parse_int(value)
        bound = 2 ** (INT_BITS[field_type] - 1)
        if not -bound <= number < bound:
            raise ValueError("int_range")
        return number
    if field_type in TICKS_PER_MICRO:
        if isinstance(value, str):
            raise NotImplementedError("the Python peer does not parse timestamp text")
        ticks = parse_int(value)
        if ticks in INFINITE_TIMESTAMPS[field_type]:
            raise ValueError("infinity")
        if field_type == "timestamp_ms":
            timestamp = timestamp_from_micros(ticks * 1000)
        else:
            timestamp = timestamp_from_micros(ticks // TICKS_PER_MICRO[field_type])
        if timestamp is None:
            raise ValueError("date_range")
        return timestamp
    if field_type == "date":
        if isinstance(value, str):
            raise NotImplementedError("the Python peer does not parse date text")
        days = parse_int(value)
        if abs(days) > 2_140_000_000:
            raise ValueError("infinity")
        try:
            return EPOCH_DATE + timedelta(days=days)
        except OverflowError:
            raise ValueError("date_range") from None
    if field_type == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ValueError("type")
    if field_type == "float":
        if isinstance(value, (bool, dict, list)):
            raise ValueError("type")
        try:
            return float(value)  # numbers, and the texts "NaN", "Infinity", "-Infinity"
        except ValueError:
            raise ValueError("type") from None
    if field_type == "composite":
        if isinstance(value, (dict, list)):
            return compact(value)
        if isinstance(value, str):
            return value
        raise ValueError("type")
    if field_type == "untyped":
        if isinstance(value, (dict, list)):
            return compact(value)
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise NotImplementedError("the Python peer does not decode decimals")
        return value
    raise NotImplementedError(f"the Python peer does not decode {field_type}")


def column_type(connect_field: dict) -> str:
    """A Connect schema field's type, by its logical name first, then its primitive type."""
    logical = connect_field.get("name")
    if logical in LOGICAL_TYPES:
        return LOGICAL_TYPES[logical]
    if logical in UNPORTED_LOGICAL or (logical or "").startswith("io.debezium.time.Structured"):
        return logical
    return CONNECT_TYPES.get(connect_field.get("type"), "untyped")


def row_types(schema: dict | None) -> dict[str, str]:
    """Field name -> type of the row struct of a Connect schema: an envelope's `after` (or
    `before`), else the struct's own fields (a key)."""
    if not schema:
        return {}
    fields = schema.get("fields") or []
    image = next((f for f in fields if f.get("field") == "after"), None)
    image = image or next((f for f in fields if f.get("field") == "before"), None)
    if image is not None:
        fields = image.get("fields") or []
    elif schema.get("type") != "struct":
        return {}
    return {f["field"]: column_type(f) for f in fields if "field" in f}


def decode_row(image, types: dict, table: dict, nul: str, reasons: list) -> dict:
    """Column name (lowercase) -> value. Types from the Connect schema, else the config hints."""
    if not isinstance(image, dict):
        reasons.append((None, "row_image"))
        return {}
    columns = {}
    for name, value in image.items():
        column = name.lower()
        field_type = types.get(name) or table["columns"].get(column, {}).get("type", "untyped")
        try:
            converted = convert(value, field_type, nul, table)
        except ValueError as e:
            reasons.append((column, str(e)))
            continue
        if column in columns:
            reasons.append((column, "duplicate_column"))
        elif not column or len(column.encode()) > 127 or "\0" in column:
            reasons.append((column, "column_name"))
        columns[column] = converted
    return columns


# --- source position -------------------------------------------------------------------------


def fnv1a(text: str) -> str:
    """The lineage tag that starts every position: FNV-1a (32 bits) of its source, in hex."""
    digest = 0x811C9DC5
    for byte in text.encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{digest:08x}"


SQLSERVER_LSN = re.compile(r"[0-9a-fA-F]{8}:[0-9a-fA-F]{8}:[0-9a-fA-F]{4}")


def sqlserver_lsn(lsn) -> str:
    if not isinstance(lsn, str) or not SQLSERVER_LSN.fullmatch(lsn):
        raise Rejected((None, "source_position"))
    return lsn.replace(":", "").lower()


def non_negative(number: int) -> int:
    if number < 0:
        raise Rejected((None, "source_position"))
    return number


def source_int(source: dict, name: str) -> int | None:
    """A `source` field as Debezium writes it: a number, a numeric string or null."""
    value = source.get(name)
    if value is None or value == "":
        return None
    try:
        return parse_int(value)
    except ValueError:
        raise Rejected((None, "source")) from None


def source_position(source: dict) -> str:
    """Fixed-width text that sorts in source order within its lineage (the first 8 characters);
    "" when the source block gives no position (position/mod.rs)."""
    connector = source.get("connector")
    if connector == "sqlserver":
        if source.get("commit_lsn") is None:
            return ""
        commit = sqlserver_lsn(source["commit_lsn"])
        change = sqlserver_lsn(source["change_lsn"]) if source.get("change_lsn") is not None else "0" * 20
        serial = non_negative(source_int(source, "event_serial_no") or 0)
        return f"{fnv1a('sqlserver')}{commit}{change}{serial:016x}"
    if connector == "postgresql":
        lsn = source_int(source, "lsn")
        committed = current = None
        if source.get("sequence") is not None:
            sequence = source["sequence"]
            try:
                committed, current = json.loads(sequence) if isinstance(sequence, str) else sequence
                committed, current = (None if n is None else int(n) for n in (committed, current))
            except (ValueError, TypeError):
                raise Rejected((None, "source_position")) from None
        current = current if current is not None else lsn
        if current is None:
            return ""
        if committed is not None:
            return f"{fnv1a('postgresql')}{committed:016x}{non_negative(current):016x}"
        tx_id = source_int(source, "txId")
        if tx_id is None:
            return ""
        return f"{fnv1a(f'postgresql-tx:{tx_id}')}{0:016x}{non_negative(current):016x}"
    if connector in ("mysql", "mariadb"):
        pos = source_int(source, "pos")
        if source.get("file") is None or pos is None:
            return ""
        base, _, number = source["file"].rpartition(".")
        if not number.isdigit():
            raise Rejected((None, "source_position"))
        pos, row = non_negative(pos), non_negative(source_int(source, "row") or 0)
        if source.get("gtid"):
            raise NotImplementedError("the Python peer does not order MySQL GTIDs")
        server_id = source_int(source, "server_id")
        lineage = f"mysql:{'' if server_id is None else server_id}:{base}"
        return f"{fnv1a(lineage)}{int(number):010d}{pos:020d}{row:010d}"
    return ""


# --- validation and masks --------------------------------------------------------------------


def validate(columns: dict, table: dict, now: datetime) -> None:
    reasons = []
    for column, rules in sorted(table["columns"].items()):
        value = columns.get(column)
        if value is UNAVAILABLE:
            continue  # the stored value, checked when it was stored, stays
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


def year_start(value):
    """January 1 of the value's year; None when it is no date."""
    if isinstance(value, datetime):
        return datetime(value.year, 1, 1)
    if isinstance(value, date):
        return date(value.year, 1, 1)
    if isinstance(value, str):
        try:
            return date(date.fromisoformat(value[:10]).year, 1, 1)
        except ValueError:
            return None
    return None


def mask(columns: dict, table: dict, masking_key: bytes) -> None:
    reasons = []
    for column, value in columns.items():
        spec = table["columns"].get(column, {}).get("mask")
        if spec is None or value is None or value is UNAVAILABLE:
            continue
        kind = spec["type"]
        if kind == "hmac":
            digest = hmac.new(masking_key, text_of(value).encode("utf-8"), hashlib.sha256).hexdigest()
            columns[column] = digest[: spec["length"]] if spec["length"] else digest
        elif kind == "year":
            columns[column] = year_start(value)
            if columns[column] is None:
                reasons.append((column, "mask_year"))
        elif kind == "null":
            columns[column] = None
        elif kind == "redact":
            columns[column] = spec["with"]
        elif kind == "partial":
            text = text_of(value)
            keep = spec["keep_last"] if len(text) > spec["keep_last"] else 0
            columns[column] = spec["char"] * (len(text) - keep) + text[len(text) - keep :]
    if reasons:
        raise Rejected(*reasons)


# --- one record ------------------------------------------------------------------------------


def kafka_key_value(record, column: str, table: dict, nul: str):
    """A key column from the Kafka key (a tombstone, a delete without `before`); None when the
    key does not carry it."""
    try:
        key = record.key
    except KafkaConsumerDeserializationError:
        return None
    types = {}
    if isinstance(key, dict) and set(key) == {"schema", "payload"}:
        types = row_types(key["schema"])
        key = key["payload"]
    if isinstance(key, dict):
        name = next((name for name in key if name.lower() == column), None)
        if name is None:
            return None
        field_type = types.get(name) or table["columns"].get(column, {}).get("type", "untyped")
        value = key[name]
    elif len(table["key"]) == 1:
        field_type = table["columns"].get(column, {}).get("type", "untyped")
        value = key
    else:
        return None
    try:
        return convert(value, field_type, nul, None)
    except ValueError as e:
        raise Rejected((column, str(e))) from None


def key_columns(record, columns: dict, table: dict, nul: str, reasons: list) -> None:
    """Make sure every key column has a value, taking it from the Kafka key when the row image
    lacks it."""
    for column in table["key"]:
        if column in columns:
            if columns[column] is None:
                reasons.append((column, "missing_key"))
            elif columns[column] is UNAVAILABLE:
                reasons.append((column, "unavailable_value"))
            continue
        try:
            value = kafka_key_value(record, column, table, nul)
        except Rejected as e:
            reasons.extend(e.reasons)
            continue
        if value is None:
            reasons.append((column, "missing_key"))
        else:
            columns[column] = value


def tombstone(record, config: dict, masking_key: bytes) -> Change:
    """A record with a null value: a delete of its Kafka key without a source position."""
    table = route(config, record.topic)
    if table is None or table["tombstones"] != "delete" or record.original_key is None:
        raise Skipped()
    columns, reasons = {}, []
    key_columns(record, columns, table, config["pipeline"].get("nul", "reject"), reasons)
    if reasons:
        if all(rule == "missing_key" for _, rule in reasons):
            raise Rejected(*((column, "tombstone_key") for column, _ in reasons))
        raise Rejected(*reasons)
    mask(columns, table, masking_key)
    return Change(
        table=table, op="d", deleted=True, tombstone=True, position="", source_ts_ms=None,
        topic=record.topic, partition=int(record.partition), offset=int(record.offset),
        key=tuple(columns[k] for k in table["key"]), columns=columns,
    )


def transform_record(record, config: dict, masking_key: bytes, now: datetime) -> Change:
    """A record's change. Raises Rejected, or Skipped for records that carry no change."""
    topic = record.topic
    if topic.startswith("__debezium-heartbeat"):
        raise Skipped()
    if topic.endswith(".transaction") and route(config, topic) is None:
        raise Skipped()
    if record.get("value") is None:
        return tombstone(record, config, masking_key)
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
            raise Skipped()  # a schema change
        if ("status" in message and "id" in message) or set(message) == {"ts_ms"}:
            raise Skipped()  # a transaction marker or a heartbeat
        raise Rejected((None, "not_an_envelope"))
    if op not in ("r", "c", "u", "d", "t", "m"):
        raise Rejected((None, "unknown_op"))
    source = message.get("source") or {}
    if not isinstance(source, dict):
        raise Rejected((None, "source"))
    source_ts_ms = source_int(source, "ts_ms")
    if op in ("t", "m"):
        if config["pipeline"].get("on_truncate" if op == "t" else "on_message", "skip") == "skip":
            raise Skipped()
        raise Rejected((None, "truncate" if op == "t" else "message"))
    table = route(config, topic)
    if table is None:
        if config["pipeline"].get("unroutable", "reject") == "skip":
            raise Skipped()
        raise Rejected((None, "unroutable"))
    position = source_position(source)

    nul = config["pipeline"].get("nul", "reject")
    deleted = op == "d"
    image = message.get("before" if deleted else "after")
    reasons = []
    if image is not None:
        columns = decode_row(image, row_types(schema), table, nul, reasons)
    elif deleted:
        columns = {}  # a delete without `before` still deletes by key
    else:
        columns = {}
        reasons.append((None, "row_image"))
    key_columns(record, columns, table, nul, reasons)
    if deleted:
        # A delete writes only its key: the target keeps the stored values, or drops the row.
        columns = {column: value for column, value in columns.items() if column in table["key"]}
        reasons = [(c, rule) for c, rule in reasons if (c is None or c in table["key"]) and rule != "row_image"]
    if reasons:
        raise Rejected(*reasons)
    if not deleted:
        # A masked column the row lacks is a misspelling: the mask would guard nothing.
        masked = [column for column, rules in table["columns"].items() if "mask" in rules]
        unknown = [(column, "unknown_column") for column in masked if column not in columns]
        if unknown:
            raise Rejected(*sorted(unknown))
        validate(columns, table, now)
    mask(columns, table, masking_key)
    return Change(
        table=table, op=op, deleted=deleted, tombstone=False, position=position, source_ts_ms=source_ts_ms,
        topic=topic, partition=int(record.partition), offset=int(record.offset),
        key=tuple(columns[k] for k in table["key"]), columns=columns,
    )


# --- plan ------------------------------------------------------------------------------------


def compare(s: Change, t: Change) -> str:
    """Is change `s` "newer" or "stale" against `t` of the same key, or is it "unknown"
    (shared/src/debezium/position/order.rs)?"""
    same_lineage = s.position and t.position and s.position[:8] == t.position[:8]
    times = s.source_ts_ms is not None and t.source_ts_ms is not None
    against_newer = times and s.source_ts_ms < t.source_ts_ms and t.op != "r"
    against_stale = times and s.source_ts_ms > t.source_ts_ms and s.op != "r"
    if same_lineage:
        if s.position == t.position or (s.position < t.position and not against_stale):
            return "stale"
        if s.position > t.position and not against_newer:
            return "newer"
    same_partition = (s.topic, s.partition) == (t.topic, t.partition)
    after_next = same_partition and s.offset > t.offset + 1
    if not s.position and s.deleted and t.deleted and not after_next:
        return "stale"
    if not same_partition:
        return "unknown"
    if s.offset > t.offset and (same_lineage or not against_newer):
        return "newer"
    if s.offset <= t.offset and (same_lineage or not against_stale):
        return "stale"
    return "unknown"


def filled(change: Change, earlier: list[Change]) -> Change:
    """The change as the batch leaves it (plan.rs `filled`): a placeholder takes the value of the
    latest earlier change that sent one; a soft delete keeps the values its earlier changes left."""
    if change.deleted:
        if change.table["delete_mode"] != "soft" or not earlier:
            return change
        # An upsert whose placeholder follows a delete of the batch, with no value sent in
        # between, does not land.
        stored = [True] * len(earlier)
        sent_since_delete = None
        for k in reversed(range(len(earlier))):
            if earlier[k].deleted:
                sent_since_delete = set()
                continue
            if sent_since_delete is not None:
                items = earlier[k].columns.items()
                if any(v is UNAVAILABLE and c not in sent_since_delete for c, v in items):
                    stored[k] = False
                sent_since_delete.update(c for c, v in items if v is not UNAVAILABLE)
        columns, seen, placeholders, oldest = dict(change.columns), set(change.columns), set(), None
        for k, e in enumerate(earlier):
            if not stored[k] or e.deleted:
                continue
            for column, value in e.columns.items():
                if column in seen:
                    continue
                if value is UNAVAILABLE:
                    if column not in placeholders:
                        placeholders.add(column)
                        columns[column] = UNAVAILABLE
                    continue
                placeholders.discard(column)
                columns[column] = value
                seen.add(column)
                oldest = k
        return replace(change, columns=columns, filled_from=None if oldest is None else earlier[oldest])
    if not any(v is UNAVAILABLE for v in change.columns.values()):
        return change
    columns, oldest = dict(change.columns), None
    for column, value in change.columns.items():
        if value is not UNAVAILABLE:
            continue
        for k, e in enumerate(earlier):
            if e.deleted:
                return change  # unknown: the stored row predates the delete
            sent = e.columns.get(column, UNAVAILABLE)
            if sent is not UNAVAILABLE:
                columns[column] = sent
                oldest = k if oldest is None else max(oldest, k)
                break
    return replace(change, columns=columns, filled_from=None if oldest is None else earlier[oldest])


@dataclass
class KeyHistory:
    """The changes of one key in a batch."""

    index: int  # batch position of the latest change
    latest: Change
    earlier: list[Change] = field(default_factory=list)  # latest first


def plan(changes: list[Change]) -> list[tuple[dict, list[str], list[Change]]]:
    """Per target table (sorted): its columns and the latest change per key, in batch order.
    `changes` are in batch order (topic, partition, offset)."""
    tables: dict[tuple, dict[tuple, KeyHistory]] = {}
    for index, change in enumerate(changes):
        keys = tables.setdefault(change.table["target"], {})
        # Redshift ignores trailing blanks when it compares text: 'AB' and 'AB  ' are one key.
        key = tuple(v.rstrip(" ") if isinstance(v, str) else v for v in change.key)
        history = keys.get(key)
        if history is None:
            keys[key] = KeyHistory(index, change)
            continue
        order = compare(change, history.latest)
        if order == "newer":
            history.earlier.insert(0, history.latest)
            history.index, history.latest = index, change
        elif order == "stale" and not (change.tombstone and history.latest.deleted):
            # Keep `earlier` latest first: before the first change it is newer than.
            at = next((i for i, e in enumerate(history.earlier) if compare(change, e) == "newer"), len(history.earlier))
            history.earlier.insert(at, change)
        # else: out of order (the loader rejects it: position_regressed), or a redundant tombstone
    plans = []
    for target, keys in sorted(tables.items()):
        histories = sorted(keys.values(), key=lambda history: history.index)
        rows = [filled(history.latest, history.earlier) for history in histories]
        # Every column any change of the table sets, key columns first, in first-seen order.
        columns = dict.fromkeys(rows[0].table["key"])
        for row, history in zip(rows, histories):
            for change in [row, *history.earlier]:
                columns.update(dict.fromkeys(change.columns))
        plans.append((rows[0].table, list(columns), rows))
    return plans


# --- apply SQL -------------------------------------------------------------------------------


def ident(name: str) -> str:
    return '"' + name.lower().replace('"', '""') + '"'


def column_list(columns: list[str]) -> str:
    return ", ".join(ident(c) for c in columns)


def text_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def float_literal(x: float) -> str:
    """Rust's `{:e}`: the shortest digits that read back, in exponent form (1e-1, -2.5e0)."""
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{exponent + len(digits) - 1}"


def literal(value) -> str:
    if value is None or value is UNAVAILABLE:
        return "NULL"
    if isinstance(value, str):
        return text_literal(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_literal(value) if math.isfinite(value) else text_literal(float_text(value))
    if isinstance(value, datetime):
        return f"'{value.isoformat(sep=' ', timespec='microseconds')}+00'"  # UTC, and says so
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    raise NotImplementedError(f"the Python peer has no literal for {type(value).__name__}")


def timestamp_ms_literal(ms: int | None) -> str:
    timestamp = None if ms is None else timestamp_from_micros(ms * 1000)
    return "NULL" if timestamp is None else literal(timestamp)


def key_text(change: Change) -> str:
    """The key as one text, for the delete ledger: trailing blanks of text dropped, `|` between
    values, `\\` and `|` escaped."""
    parts = []
    for value in change.key:
        text = value.rstrip(" ") if isinstance(value, str) else text_of(value)
        parts.append(text.replace("\\", "\\\\").replace("|", "\\|"))
    return "|".join(parts)


def keep_flag(change: Change, value) -> str:
    """What the stage row does with the stored value: write ours (0), keep the stored one (1),
    keep it and it must exist (U), write ours only over a live row (L)."""
    if value is ABSENT or (value is UNAVAILABLE and change.deleted):
        return "1"
    if value is UNAVAILABLE:
        return "U"
    if change.deleted and any(v is UNAVAILABLE for v in change.columns.values()):
        return "L"
    return "0"


def stage_row(change: Change, columns: list[str], index: int, loaded_at: str, fill_sources: bool) -> tuple[str, str]:
    """One VALUES tuple of the stage INSERT, and the row's `_cdc_keep` flags ("" for none)."""
    values, flags = [], []
    for column in columns:
        value = change.columns.get(column, ABSENT)
        flag = keep_flag(change, value)
        flags.append(flag)
        values.append(literal(value) if flag in "0L" else "NULL")
    keep = "".join(flags) if any(flag != "0" for flag in flags) else ""
    carries_values = (
        change.deleted
        and len(change.columns) > len(change.table["key"])
        and not any(v is UNAVAILABLE for v in change.columns.values())
    )
    values += [
        text_literal(change.position),
        f"'{change.op}'",
        "TRUE" if change.deleted else "FALSE",
        timestamp_ms_literal(change.source_ts_ms),
        loaded_at,
        text_literal(change.topic),
        str(change.partition),
        str(change.offset),
        str(index),
        f"'{keep}'" if keep else "NULL",
        text_literal(key_text(change)),
        "'B'" if carries_values else "NULL",
    ]
    if fill_sources:
        source = change.filled_from
        if source is None:
            values += ["NULL"] * 5
        else:
            values += [
                text_literal(source.position), timestamp_ms_literal(source.source_ts_ms),
                text_literal(source.topic), str(source.partition), str(source.offset),
            ]
    return "(" + ",".join(values) + ")", keep


def order_sql(t: str, t_deleted: str, t_snapshot: str, s: str, fill_source: bool = False) -> dict[str, str]:
    """The order of a stage row (`s`) against a stored row or ledger entry (`t`) as SQL, as
    `compare` decides it: conditions for "stale", "newer" and "unknown"."""
    if fill_source:  # the change the row's filled-in values came from (its _cdc_src_* columns)
        prefix, s_deleted, s_found, s_snapshot = "_cdc_src_", "FALSE", "NULL", "FALSE"
    else:
        prefix, s_deleted, s_found = "_cdc_", f'{s}."_cdc_deleted"', f'{s}."_cdc_found"'
        s_snapshot = f"COALESCE({s}.\"_cdc_op\" = 'r', FALSE)"
    sp, st = f'{s}."{prefix}position"', f'{s}."{prefix}source_ts"'
    so = f'{s}."{prefix}kafka_offset"'
    tp, tt = f"COALESCE({t}.\"_cdc_position\", '')", f'{t}."_cdc_source_ts"'
    same_lineage = f"{tp} <> '' AND {sp} <> '' AND LEFT({tp}, 8) = LEFT({sp}, 8)"
    against_newer = f"COALESCE({st} < {tt} AND NOT {t_snapshot}, FALSE)"
    against_stale = f"COALESCE({st} > {tt} AND NOT {s_snapshot}, FALSE)"
    source_stale = f"COALESCE({same_lineage} AND ({sp} = {tp} OR ({sp} < {tp} AND NOT {against_stale})), FALSE)"
    source_newer = f"COALESCE({same_lineage} AND {sp} > {tp} AND NOT {against_newer}, FALSE)"
    same_partition = (
        f'{t}."_cdc_kafka_topic" = {s}."{prefix}kafka_topic" '
        f'AND {t}."_cdc_kafka_partition" = {s}."{prefix}kafka_partition"'
    )
    after_next = f'COALESCE({same_partition} AND {so} > {t}."_cdc_kafka_offset" + 1, FALSE)'
    redundant_delete = (
        f"COALESCE({sp} = '' AND {s_deleted} AND {t_deleted} AND COALESCE({s_found}, '') <> 'B' "
        f"AND NOT {after_next}, FALSE)"
    )
    contradiction = f"COALESCE({same_lineage}, FALSE)"
    kafka_stale = (
        f'COALESCE({same_partition} AND {so} <= {t}."_cdc_kafka_offset" '
        f"AND ({contradiction} OR NOT {against_stale}), FALSE)"
    )
    kafka_newer = (
        f'COALESCE({same_partition} AND {so} > {t}."_cdc_kafka_offset" '
        f"AND ({contradiction} OR NOT {against_newer}), FALSE)"
    )
    legacy_stale = f'COALESCE({t}."_cdc_kafka_topic" IS NULL AND {st} < {tt}, FALSE)'
    legacy_newer = f'COALESCE({t}."_cdc_kafka_topic" IS NULL AND {st} > {tt}, FALSE)'
    stale = f"({source_stale} OR {redundant_delete} OR (NOT {source_newer} AND ({kafka_stale} OR {legacy_stale})))"
    newer = (
        f"({source_newer} OR (NOT {source_stale} AND NOT {redundant_delete} AND ({kafka_newer} OR {legacy_newer})))"
    )
    return {"stale": stale, "newer": newer, "unknown": f"(NOT {stale} AND NOT {newer})"}


def carry_updates(columns: list[str], keep: list[bool], target: str, matched: str) -> list[str]:
    """UPDATEs of the stage that carry the stored values into the kept columns, each within
    MAX_STATEMENT_BYTES."""
    head = f"UPDATE {STAGE} SET "
    foot = f' FROM {target} WHERE {matched} AND {STAGE}."_cdc_keep" IS NOT NULL AND {STAGE}."_cdc_reject" IS NULL'
    statements, assignments = [], []
    size = len(head.encode()) + len(foot.encode())
    for i, column in enumerate(columns):
        if not keep[i]:
            continue
        name, flag = ident(column), f'SUBSTRING({STAGE}."_cdc_keep", {i + 1}, 1)'
        assignment = (
            f"{name} = CASE WHEN {flag} = '0' OR ({flag} = 'L' AND {STAGE}.\"_cdc_found\" = 'L') "
            f"THEN {STAGE}.{name} ELSE {target}.{name} END"
        )
        if assignments and size + 2 + len(assignment.encode()) > MAX_STATEMENT_BYTES:
            statements.append(head + ", ".join(assignments) + foot)
            assignments, size = [], len(head.encode()) + len(foot.encode())
        size += (2 if assignments else 0) + len(assignment.encode())
        assignments.append(assignment)
    if assignments:
        statements.append(head + ", ".join(assignments) + foot)
    return statements


@dataclass
class Needs:
    """What a transaction's rows need beyond the plain apply."""

    keep: list[bool]  # columns some row keeps the stored value of
    required: bool = False  # some row keeps a value the target must hold (U)
    deletes: bool = False

    def add(self, change: Change, flags: str) -> None:
        self.deletes |= change.deleted
        for i, flag in enumerate(flags):
            if flag != "0":
                self.keep[i] = True
                self.required |= flag == "U"


def tail(table: dict, columns: list[str], needs: Needs, fill_sources: bool) -> list[str]:
    """The statements after the stage inserts: mark what the target holds, drop stale rows,
    reject rows out of order, carry stored values, update and insert the target, record deletes
    in the ledger, report the rejects."""
    schema, name = table["target"]
    target, ledger = f"{ident(schema)}.{ident(name)}", f'{ident(schema)}."_cdc_deletes"'
    table_literal = text_literal(f"{schema}.{name}")
    matched = " AND ".join(f"{target}.{ident(k)} = {STAGE}.{ident(k)}" for k in table["key"])
    ledger_match = (
        f'{ledger}."_cdc_table" = {table_literal} AND {ledger}."_cdc_key" = {STAGE}."_cdc_key" '
        f"AND COALESCE({STAGE}.\"_cdc_found\", 'B') = 'B'"
    )
    target_deleted, target_snapshot = f'{target}."_cdc_deleted"', f"COALESCE({target}.\"_cdc_op\" = 'r', FALSE)"
    against_target = order_sql(target, target_deleted, target_snapshot, STAGE)
    against_ledger = order_sql(ledger, "TRUE", "FALSE", STAGE)
    soft = table["delete_mode"] == "soft"
    # Which deletes the ledger records: all in hard mode; in soft mode those of keys the target
    # holds no row for (a stored row keeps the delete's position itself).
    not_held = f' AND {STAGE}."_cdc_found" IS NULL' if soft else ""
    statements = [
        f'UPDATE {STAGE} SET "_cdc_held" = TRUE, "_cdc_found" = CASE WHEN {STAGE}."_cdc_found" = \'B\' THEN \'B\' '
        f'WHEN {target}."_cdc_deleted" THEN \'D\' ELSE \'L\' END FROM {target} WHERE {matched}',
        f"DELETE FROM {STAGE} USING {target} WHERE {matched} AND {against_target['stale']}",
        f"DELETE FROM {STAGE} USING {ledger} WHERE {ledger_match} AND {against_ledger['stale']}",
        f"UPDATE {STAGE} SET \"_cdc_reject\" = 'position_regressed' FROM {target} WHERE {matched} "
        f"AND {against_target['unknown']}",
        f"UPDATE {STAGE} SET \"_cdc_reject\" = 'position_regressed' FROM {ledger} WHERE {ledger_match} "
        f'AND {STAGE}."_cdc_reject" IS NULL AND {against_ledger["unknown"]}',
    ]
    if fill_sources:
        # Filled-in values stand only if their change is newer than the stored row, or is it.
        def same_change(t: str) -> str:
            return (
                f"(COALESCE({STAGE}.\"_cdc_src_position\" <> '' AND {STAGE}.\"_cdc_src_position\" = "
                f'{t}."_cdc_position", FALSE) OR COALESCE({STAGE}."_cdc_src_kafka_topic" = {t}."_cdc_kafka_topic" '
                f'AND {STAGE}."_cdc_src_kafka_partition" = {t}."_cdc_kafka_partition" '
                f'AND {STAGE}."_cdc_src_kafka_offset" = {t}."_cdc_kafka_offset", FALSE))'
            )

        has_source = f'{STAGE}."_cdc_src_kafka_topic" IS NOT NULL'
        vs_target = order_sql(target, target_deleted, target_snapshot, STAGE, fill_source=True)
        vs_ledger = order_sql(ledger, "TRUE", "FALSE", STAGE, fill_source=True)
        statements += [
            f"UPDATE {STAGE} SET \"_cdc_reject\" = 'stale_fill' FROM {target} WHERE {matched} "
            f'AND {STAGE}."_cdc_reject" IS NULL AND {has_source} AND NOT {vs_target["newer"]} '
            f"AND NOT {same_change(target)}",
            f"UPDATE {STAGE} SET \"_cdc_reject\" = 'stale_fill' FROM {ledger} WHERE {ledger_match} "
            f'AND {STAGE}."_cdc_reject" IS NULL AND {has_source} AND NOT {vs_ledger["newer"]} '
            f"AND NOT {same_change(ledger)}",
        ]
    if needs.required:
        statements.append(
            f"UPDATE {STAGE} SET \"_cdc_reject\" = 'unavailable_value' WHERE \"_cdc_reject\" IS NULL "
            "AND \"_cdc_keep\" LIKE '%U%' AND COALESCE(\"_cdc_found\", '') <> 'L'"
        )
    statements += carry_updates(columns, needs.keep, target, matched)
    if not soft and needs.deletes:
        statements.append(
            f'DELETE FROM {target} USING {STAGE} WHERE {matched} AND {STAGE}."_cdc_reject" IS NULL '
            f'AND {STAGE}."_cdc_deleted"'
        )
    data = [c for c in columns if c not in table["key"]] + METADATA_COLUMNS
    assignments = ", ".join(f"{ident(c)} = {STAGE}.{ident(c)}" for c in data)
    statements.append(
        f'UPDATE {target} SET {assignments} FROM {STAGE} WHERE {matched} AND {STAGE}."_cdc_reject" IS NULL'
        + ("" if soft else f' AND NOT {STAGE}."_cdc_deleted"')
    )
    written = column_list(columns + METADATA_COLUMNS)
    statements.append(
        f'INSERT INTO {target} ({written}) SELECT {written} FROM {STAGE} WHERE "_cdc_reject" IS NULL '
        'AND "_cdc_held" IS NULL AND '
        + ('(NOT "_cdc_deleted" OR "_cdc_found" = \'B\')' if soft else 'NOT "_cdc_deleted"')
    )
    if needs.deletes:
        statements += [
            f'DELETE FROM {ledger} USING {STAGE} WHERE {ledger}."_cdc_table" = {table_literal} '
            f'AND {ledger}."_cdc_key" = {STAGE}."_cdc_key" AND {STAGE}."_cdc_reject" IS NULL '
            f'AND {STAGE}."_cdc_deleted"{not_held}',
            f"INSERT INTO {ledger} ({column_list(LEDGER_COLUMNS)}) SELECT {table_literal}, \"_cdc_key\", "
            '"_cdc_position", "_cdc_source_ts", "_cdc_kafka_topic", "_cdc_kafka_partition", "_cdc_kafka_offset", '
            f'"_cdc_loaded_at" FROM {STAGE} WHERE "_cdc_reject" IS NULL AND "_cdc_deleted"'
            + not_held.replace(f"{STAGE}.", ""),
        ]
    statements.append(f'SELECT "_cdc_row", "_cdc_reject" FROM {STAGE} WHERE "_cdc_reject" IS NOT NULL')
    return statements


def build_transactions(table: dict, columns: list[str], rows: list[Change], loaded_at: datetime) -> list[list[str]]:
    """The apply SQL of one table's plan, one list of statements per transaction: [LOCK,] CREATE
    the stage, INSERTs of at most 90 KiB, then the tail. A row too large for one INSERT is left
    out (the loader dead-letters it); so is every row when a statement would exceed 100 KB."""
    schema, name = table["target"]
    target, ledger = f"{ident(schema)}.{ident(name)}", f'{ident(schema)}."_cdc_deletes"'
    fill_sources = any(row.filled_from is not None for row in rows)
    source_columns = FILL_SOURCE_COLUMNS if fill_sources else []
    staged = columns + METADATA_COLUMNS + [c for c, _ in STAGE_COLUMNS[:4]] + [c for c, _ in source_columns]
    insert_header = f"INSERT INTO {STAGE} ({column_list(staged)}) VALUES "
    header_bytes = len(insert_header.encode())
    head = [f"LOCK {target}, {ledger}"] if table["lock"] else []
    stage_columns = "".join(f", CAST(NULL AS {ty}) AS {ident(c)}" for c, ty in STAGE_COLUMNS + source_columns)
    head.append(
        f"CREATE TEMP TABLE {STAGE} AS SELECT {column_list(columns + METADATA_COLUMNS)}{stage_columns} "
        f"FROM {target} WHERE 1 = 0"
    )
    matched = " AND ".join(f"{target}.{ident(k)} = {STAGE}.{ident(k)}" for k in table["key"])
    reserved = (
        MAX_TAIL_STATEMENTS
        + (FILL_SOURCE_STATEMENTS if fill_sources else 0)
        + len(carry_updates(columns, [True] * len(columns), target, matched))
        + len(head)
    )
    max_inserts = MAX_STATEMENTS - reserved
    if max_inserts <= 0 or header_bytes >= MAX_STATEMENT_BYTES:
        return []  # statement_too_large: every row is rejected
    loaded = literal(loaded_at)

    transactions: list[list[str]] = []
    inserts: list[str] = []  # of the current transaction
    values: list[str] = []  # tuples of the current INSERT
    size = 0
    needs = Needs([False] * len(columns))

    def finish_transaction():
        nonlocal inserts, needs
        transactions.append([*head, *inserts, *tail(table, columns, needs, fill_sources)])
        inserts, needs = [], Needs([False] * len(columns))

    for index, row in enumerate(rows):
        row_values, keep = stage_row(row, columns, index, loaded, fill_sources)
        row_bytes = len(row_values.encode())
        if header_bytes + row_bytes > MAX_STATEMENT_BYTES:
            continue  # row_too_large: the loader dead-letters it
        if values and size + 1 + row_bytes > MAX_STATEMENT_BYTES:
            inserts.append(insert_header + ",".join(values))
            values = []
            if len(inserts) == max_inserts:
                finish_transaction()
        size = size + 1 if values else header_bytes
        values.append(row_values)
        size += row_bytes
        needs.add(row, keep)
    if values:
        inserts.append(insert_header + ",".join(values))
    if inserts:
        finish_transaction()
    if any(len(s.encode()) > DATA_API_STATEMENT_BYTES for tx in transactions for s in tx):
        return []  # statement_too_large (a column list too long for the Data API): every row
    return transactions


# --- the handler -----------------------------------------------------------------------------


def make_handler(config: dict, masking_key: bytes, now: datetime):
    """The Lambda handler, built once at cold start."""

    @kafka_consumer(schema_config=SchemaConfig(value_schema_type="JSON", key_schema_type="JSON"))
    def handler(event: ConsumerRecords, context) -> BatchResult:
        result = BatchResult()
        # The outcome of the latest record per (topic, partition, Kafka key): a tombstone whose
        # delete event came just before it is redundant, not a reject.
        last_delete: dict[tuple, bool] = {}
        for record in event.records:
            kafka_key = (record.topic, record.partition, record.original_key)
            try:
                change = transform_record(record, config, masking_key, now)
            except Skipped:
                result.skipped += 1
                last_delete[kafka_key] = False
                continue
            except Rejected as e:
                if all(rule == "tombstone_key" for _, rule in e.reasons) and last_delete.get(kafka_key):
                    result.skipped += 1
                else:
                    result.rejects.append((record.topic, record.partition, record.offset, e.reasons))
                last_delete[kafka_key] = False
                continue
            result.changes.append(change)
            last_delete[kafka_key] = change.deleted and not change.tombstone
        in_batch_order = sorted(result.changes, key=lambda change: change.coordinates)
        plans = plan(in_batch_order)
        for table, columns, rows in plans:
            result.transactions += build_transactions(table, columns, rows, now)
            result.planned_rows += len(rows)
        if plans and "ssn" in plans[0][2][0].columns:
            result.first_masked_ssn = text_of(plans[0][2][0].columns["ssn"])
        return result

    return handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event")
    parser.add_argument("--config", required=True)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--now-micros", type=int, help="fixed clock for not_future and _cdc_loaded_at")
    parser.add_argument("--dump-sql", metavar="FILE", help="write every statement, each followed by ';\\n'")
    args = parser.parse_args(argv)

    with open(args.event, "rb") as f:
        event_bytes = f.read()
    config = load_config(args.config)
    masking_key = os.environ.get("MASKING_KEY", DEFAULT_MASKING_KEY).encode("utf-8")
    if len(masking_key) < MIN_KEY_BYTES:
        sys.exit(f"transform.py: the masking key is {len(masking_key)} bytes; it must be at least {MIN_KEY_BYTES}")
    if args.now_micros is not None:
        now = EPOCH + timedelta(microseconds=args.now_micros)
    else:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
    handler = make_handler(config, masking_key, now)

    # One untimed run for the cross-check digest, as the Rust side does.
    reference = handler(json.loads(event_bytes), None)
    statements = [s for tx in reference.transactions for s in tx]
    digest = hashlib.sha256()
    for statement in statements:
        digest.update(statement.encode("utf-8") + b";\n")
    if args.dump_sql:
        with open(args.dump_sql, "w", encoding="utf-8") as f:
            f.writelines(f"{statement};\n" for statement in statements)

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
                "statements": len(statements),
                "sql_bytes": sum(len(s.encode("utf-8")) for s in statements),
                "sql_sha256": digest.hexdigest(),
                "first_masked_ssn": reference.first_masked_ssn,
            },
            separators=(",", ":"),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
