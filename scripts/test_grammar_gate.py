#!/usr/bin/env python3
"""Tests of the grammar gate (scripts/grammar_gate.py); `make test` runs them with the venv's
Python (sqlfluff from requirements-dev.txt).

    $VENV/bin/python scripts/test_grammar_gate.py

tests/fixtures/grammar-gate/test-suite-statements.jsonl holds what the loader really sends:
the gate's probes of every statement a `cargo test --workspace` run sent through the emulator
(taken from PostgreSQL's statement log, statements under 20 KB). The other statements here
are the builders' output as their Rust unit tests assert it (shared/src/redshift/sql.rs,
ddl.rs), and 90 KB stage INSERTs rendered the way `push_row` renders them.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import grammar_gate as gate  # noqa: E402

GATE = os.path.join(HERE, "grammar_gate.py")
FIXTURE = os.path.join(HERE, "..", "tests", "fixtures", "grammar-gate", "test-suite-statements.jsonl")
TMP = tempfile.mkdtemp(prefix="grammar-gate-test.")

STAGE_COLUMNS = (
    '"id", "name", "_cdc_position", "_cdc_op", "_cdc_deleted", "_cdc_source_ts", "_cdc_loaded_at", '
    '"_cdc_kafka_topic", "_cdc_kafka_partition", "_cdc_kafka_offset", "_cdc_row", "_cdc_keep", "_cdc_key", "_cdc_found"'
)
STAGE_INSERT = f'INSERT INTO "_cdc_stage" ({STAGE_COLUMNS}) VALUES '


def text_literal(text):
    """push_text_literal: Redshift escaping, \\ as \\\\ and ' as ''."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def stage_row(i, name):
    """push_row for a (id, name) change, as the builder writes it."""
    return (
        f"({i},{name},'{i:020}','c',FALSE,'2024-02-29 23:59:59.999999','2024-03-01 00:00:00.000000',"
        f"'dbserver1.inventory.customers',0,{i},{i},NULL,{text_literal(str(i))},NULL)"
    )


NAMES = [
    "plain",
    "O'Brien",
    r"C:\temp\new",
    r"\'; DROP TABLE t; --",
    "trailing\\",
    "two\nlines\tand a tab",
    "ünïcödé ✓ 𝄞",
    "{{ jinja }} {% raw %} $1 :x ? %s",
    "/* not a comment */ -- nor this",
    "",
    "''''",
    "\\\\\\",
]


def big_insert(bad=None):
    """A stage INSERT filled to 90 KB as the builder fills one; `bad` = (row, literal) replaces
    that row's name."""
    out, i = STAGE_INSERT, 0
    while True:
        name = text_literal(NAMES[i % len(NAMES)] + "x" * (i % 50))
        if bad and bad[0] == i:
            name = bad[1]
        row = stage_row(i, name)
        if len(out) + 1 + len(row) > 90 * 1024:
            return out
        out += ("," if i else "") + row
        i += 1


# Builder output as asserted by the Rust unit tests (sql.rs one_small_plan_is_one_transaction,
# literals_follow_redshift_rules, alter_table; ddl.rs config_only_ddl_uses_hints_and_masks).
BUILDER_STATEMENTS = [
    'LOCK "public"."patients", "public"."_cdc_deletes"',
    'CREATE TEMP TABLE "_cdc_stage" AS SELECT "id", "name", "_cdc_position", "_cdc_op", "_cdc_deleted", '
    '"_cdc_source_ts", "_cdc_loaded_at", "_cdc_kafka_topic", "_cdc_kafka_partition", "_cdc_kafka_offset", '
    'CAST(NULL AS INTEGER) AS "_cdc_row", CAST(NULL AS VARCHAR(1600)) AS "_cdc_keep", '
    'CAST(NULL AS VARCHAR(65535)) AS "_cdc_key", CAST(NULL AS CHAR(1)) AS "_cdc_found", '
    'CAST(NULL AS BOOLEAN) AS "_cdc_held", CAST(NULL AS VARCHAR(32)) AS "_cdc_reject" '
    'FROM "public"."patients" WHERE 1 = 0',
    STAGE_INSERT + "(1,'a','00000000000000000001','c',FALSE,'1970-01-01 00:00:01.000000','1970-01-01 00:00:00.000000','x.t',0,1,0,NULL,'1',NULL),"
    "(2,NULL,'00000000000000000002','d',TRUE,'1970-01-01 00:00:01.000000','1970-01-01 00:00:00.000000','x.t',0,2,1,'01','2',NULL),"
    "(3,NULL,'00000000000000000003','c',FALSE,'1970-01-01 00:00:01.000000','1970-01-01 00:00:00.000000','x.t',0,3,2,'0U','3',NULL)",
    'INSERT INTO "public"."t" ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n") VALUES '
    "('O''Brien','C:\\\\temp\\\\new','\\\\''; DROP TABLE t; --','trailing\\\\',NULL,TRUE,-42,0.1,'NaN',-45.10,"
    "'2018-07-13 13:23:45.780000','2018-07-13',to_varbyte('00ff', 'hex'),1e300),"
    "('-Infinity',FALSE,-2.5e-300,1.7976931348623157e308,'24:00:00','',to_varbyte('', 'hex'),NULL,0,0,0,0,0,0)",
    'UPDATE "_cdc_stage" SET "_cdc_held" = TRUE, "_cdc_found" = CASE WHEN "_cdc_stage"."_cdc_found" = \'B\' THEN \'B\' '
    'WHEN "public"."patients"."_cdc_deleted" THEN \'D\' ELSE \'L\' END FROM "public"."patients" '
    'WHERE "public"."patients"."id" = "_cdc_stage"."id"',
    'UPDATE "_cdc_stage" SET "name" = CASE WHEN SUBSTRING("_cdc_stage"."_cdc_keep", 2, 1) = \'0\' OR '
    '(SUBSTRING("_cdc_stage"."_cdc_keep", 2, 1) = \'L\' AND "_cdc_stage"."_cdc_found" = \'L\') '
    'THEN "_cdc_stage"."name" ELSE "public"."patients"."name" END FROM "public"."patients" '
    'WHERE "public"."patients"."id" = "_cdc_stage"."id" AND "_cdc_stage"."_cdc_keep" IS NOT NULL '
    'AND "_cdc_stage"."_cdc_reject" IS NULL',
    'UPDATE "_cdc_stage" SET "_cdc_reject" = \'unavailable_value\' WHERE "_cdc_reject" IS NULL '
    "AND \"_cdc_keep\" LIKE '%U%' AND COALESCE(\"_cdc_found\", '') <> 'L'",
    'DELETE FROM "public"."patients" USING "_cdc_stage" WHERE "public"."patients"."id" = "_cdc_stage"."id" '
    'AND "_cdc_stage"."_cdc_reject" IS NULL AND "_cdc_stage"."_cdc_deleted"',
    'INSERT INTO "public"."_cdc_deletes" ("_cdc_table", "_cdc_key", "_cdc_position", "_cdc_source_ts", '
    '"_cdc_kafka_topic", "_cdc_kafka_partition", "_cdc_kafka_offset", "_cdc_deleted_at") SELECT '
    "'public.patients', \"_cdc_key\", \"_cdc_position\", \"_cdc_source_ts\", \"_cdc_kafka_topic\", "
    '"_cdc_kafka_partition", "_cdc_kafka_offset", "_cdc_loaded_at" FROM "_cdc_stage" '
    'WHERE "_cdc_reject" IS NULL AND "_cdc_deleted" AND "_cdc_found" IS NULL',
    'SELECT "_cdc_row", "_cdc_reject" FROM "_cdc_stage" WHERE "_cdc_reject" IS NOT NULL',
    'CREATE TABLE "public"."p" (\n  "dob" TIMESTAMP,\n  "id" INTEGER NOT NULL,\n  "ssn" VARCHAR(64),\n  '
    '"_cdc_position" VARCHAR(64) NOT NULL,\n  "_cdc_op" CHAR(1) NOT NULL,\n  "_cdc_deleted" BOOLEAN NOT NULL,\n  '
    '"_cdc_source_ts" TIMESTAMP,\n  "_cdc_loaded_at" TIMESTAMP NOT NULL,\n  "_cdc_kafka_topic" VARCHAR(249),\n  '
    '"_cdc_kafka_partition" INTEGER,\n  "_cdc_kafka_offset" BIGINT,\n  PRIMARY KEY ("id")\n) DISTSTYLE AUTO SORTKEY AUTO;',
    'CREATE TABLE IF NOT EXISTS "public"."_cdc_deletes" (\n  "_cdc_table" VARCHAR(255) NOT NULL,\n  '
    '"_cdc_key" VARCHAR(65535) NOT NULL,\n  "_cdc_position" VARCHAR(64) NOT NULL,\n  "_cdc_source_ts" TIMESTAMP,\n  '
    '"_cdc_kafka_topic" VARCHAR(249),\n  "_cdc_kafka_partition" INTEGER,\n  "_cdc_kafka_offset" BIGINT,\n  '
    '"_cdc_deleted_at" TIMESTAMP NOT NULL\n) DISTSTYLE AUTO SORTKEY AUTO;',
] + [
    f'ALTER TABLE "public"."t" ADD COLUMN "{name}" {ty}'
    for name, ty in [
        ("email", "VARCHAR(256)"),
        ("photo", "VARBYTE"),
        ("ratio", "DOUBLE PRECISION"),
        ("score", "REAL"),
        ("amount", "DECIMAL(38, 10)"),
        ("at", "TIME"),
        ("born", "DATE"),
        ("seen", "TIMESTAMP"),
        ("small", "SMALLINT"),
        ("flag", "BOOLEAN"),
        ("first\"\"name", "VARCHAR(65535)"),
    ]
]


def recording(name, statements):
    path = os.path.join(TMP, name)
    with open(path, "w", encoding="utf-8") as f:
        for sql in statements:
            f.write(json.dumps({"sql": sql}) + "\n")
    return path


def run(*args):
    done = subprocess.run([sys.executable, GATE, "-q", *args], capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


# --- the tests ------------------------------------------------------------------------------


def test_the_statements_the_test_suite_sends_parse():
    code, out = run(FIXTURE)
    assert code == 0, out
    assert " 0 failed" in out, out


def test_builder_output_parses_and_large_inserts_take_little_time():
    statements = BUILDER_STATEMENTS + [big_insert() for _ in range(20)]
    assert all(len(s) <= 90 * 1024 for s in statements)
    assert len(statements[-1]) > 89 * 1024, len(statements[-1])
    started = time.monotonic()
    code, out = run(recording("builders.jsonl", statements))
    assert code == 0, out
    assert time.monotonic() - started < 120, out
    assert f"{len(statements)} statements read" in out, out


def test_on_conflict_fails_the_gate():
    code, out = run(recording("conflict.jsonl", ["INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING"]))
    assert code == 1, out
    assert "FAIL 1/1" in out and "ON CONFLICT DO NOTHING" in out and " 1 failed" in out, out


def test_a_bad_tuple_deep_in_a_large_insert_is_not_collapsed_away():
    good = [big_insert(), big_insert()]
    # One PostgreSQL-only cast in row 400 of the third statement (of 472).
    pg_only = big_insert(bad=(400, "'x'::jsonb"))
    assert "'x'::jsonb" in pg_only
    code, out = run(recording("deep.jsonl", good + [pg_only]))
    assert code == 1, out
    assert "deep.jsonl:3" in out and "jsonb" in out, out
    # A backslash left unescaped: Redshift reads `\'` as a quote, the literal runs on.
    unescaped = big_insert(bad=(450, "'C:\\temp\\'"))
    assert "'C:\\temp\\'" in unescaped
    code, out = run(recording("backslash.jsonl", good + [unescaped]))
    assert code == 1, out
    assert "backslash.jsonl:3" in out and "escapes a quote with a backslash" in out, out


def carry_update(columns=400, bad=None):
    """A carry UPDATE of a wide table (carry_assignment); `bad` = (column, expression) replaces
    that column's stored value."""
    assignments = []
    for i in range(columns):
        stored = f'"public"."wide"."c{i}"' if not bad or bad[0] != i else bad[1]
        assignments.append(
            f'"c{i}" = CASE WHEN SUBSTRING("_cdc_stage"."_cdc_keep", {i + 1}, 1) = \'0\' OR '
            f'(SUBSTRING("_cdc_stage"."_cdc_keep", {i + 1}, 1) = \'L\' AND "_cdc_stage"."_cdc_found" = \'L\') '
            f'THEN "_cdc_stage"."c{i}" ELSE {stored} END'
        )
    return (
        'UPDATE "_cdc_stage" SET ' + ", ".join(assignments) + ' FROM "public"."wide" WHERE "public"."wide"."id" = '
        '"_cdc_stage"."id" AND "_cdc_stage"."_cdc_keep" IS NOT NULL AND "_cdc_stage"."_cdc_reject" IS NULL'
    )


def test_a_bad_assignment_deep_in_a_wide_update_is_not_collapsed_away():
    good = carry_update()
    assert len(good) > 80 * 1024, len(good)
    bad = carry_update(bad=(300, '"public"."wide"."c300"::jsonb'))
    code, out = run(recording("carry.jsonl", [good, bad]))
    assert code == 1 and "carry.jsonl:2" in out and "jsonb" in out, out


def test_a_backslash_escaped_quote_fails():
    code, out = run(recording("quote.jsonl", ["SELECT 'it\\'s'"]))
    assert code == 1 and "escapes a quote with a backslash" in out, out


def test_bad_usage_exits_2():
    code, out = run()
    assert code == 2 and "usage" in out, out
    code, out = run(os.path.join(TMP, "no-such-file.jsonl"))
    assert code == 2 and "no such recording" in out, out
    code, out = run(recording("empty.jsonl", []))
    assert code == 2 and "holds no statement" in out and "REDSHIFT_DATA_LOCAL_RECORD" in out, out
    path = os.path.join(TMP, "garbage.jsonl")
    with open(path, "w") as f:
        f.write('{"sql": "SELECT 1"}\n{"sql": "SELECT 2"\n')
    code, out = run(path)
    assert code == 2 and "garbage.jsonl:2" in out, out


def test_several_recordings_are_read_together():
    a = recording("a.jsonl", ["SELECT 1"])
    b = recording("b.jsonl", ["INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING"])
    code, out = run(a, b)
    assert code == 1 and "2 statements read" in out and "b.jsonl:1" in out, out


def test_shapes_merge_what_parses_alike_and_keep_literal_forms_apart():
    one = STAGE_INSERT + stage_row(1, "'a'") + "," + stage_row(2, "'b'")
    other = STAGE_INSERT.replace("_cdc_stage", "stage") + ",".join(stage_row(i, "'zz'") for i in range(7, 50))
    assert gate.shape(one) == gate.shape(other)
    for a, b in [("'ab'", "'a\\\\b'"), ("'ab'", "'a''b'"), ("'a\\\\b'", "'a\\'b'"), ("1", "'1'"), ("TRUE", "NULL")]:
        assert gate.shape(f"SELECT {a}") != gate.shape(f"SELECT {b}"), (a, b)
    assert gate.shape('SELECT "a" FROM "t"') == gate.shape('SELECT "bb" FROM "other"')
    assert gate.shape("SELECT 1.5, 42") == gate.shape("SELECT 2.0, 7")
    assert gate.shape("SELECT 1.5") != gate.shape("SELECT 15")
    # A tuple is kept, as written, when it brings a value form the tuples before it did not:
    # row 2's NULL and row 3's plain text are in row 1 already.
    rows = [stage_row(1, "'a'"), stage_row(2, "NULL"), stage_row(3, "'b'"), stage_row(4, "'c\\\\d'")]
    assert gate.representative(STAGE_INSERT + ",".join(rows)) == STAGE_INSERT + ", ".join([rows[0], rows[3]])
    assert gate.shape(STAGE_INSERT + ",".join(rows)) == gate.shape(STAGE_INSERT + ",".join([rows[3], rows[0]]))
    # SET assignments likewise; the FROM and WHERE stay.
    update = 'UPDATE "s" SET "a" = CASE WHEN "x" THEN 1 ELSE 2 END, "b" = CASE WHEN "y" THEN 3 ELSE 4 END FROM "t" WHERE z'
    assert gate.representative(update) == 'UPDATE "s" SET "a" = CASE WHEN "x" THEN 1 ELSE 2 END FROM "t" WHERE z'
    # Not a list of alike items: left whole.
    for sql in ["SET search_path TO a, b", "UPDATE t SET a = 1, b = 2; SELECT 1", "SELECT a, a FROM t"]:
        assert gate.representative(sql) == sql, sql


def test_a_statement_is_parsed_for_its_new_values_only():
    first = STAGE_INSERT + stage_row(1, "'a'")
    second = STAGE_INSERT + stage_row(2, "'b'") + "," + stage_row(3, "to_varbyte('00ff', 'hex')")
    third = STAGE_INSERT + stage_row(4, "NULL") + "," + stage_row(5, "'O''Brien'")
    fourth = STAGE_INSERT + stage_row(6, "to_varbyte('abcd', 'hex')") + "," + stage_row(7, "'d''Arc'")
    recorded = gate.read([recording("items.jsonl", [first, second, third, fourth])])
    assert recorded.statements == 4 and len(recorded.templates) == 1
    assert [p.sql for p in recorded.probes] == [
        first,
        STAGE_INSERT + stage_row(3, "to_varbyte('00ff', 'hex')"),
        STAGE_INSERT + stage_row(5, "'O''Brien'"),
    ]


def main():
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    failed = 0
    for name, fn in tests:
        started = time.monotonic()
        try:
            fn()
        except Exception as error:  # AssertionError and anything else: report and go on
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {str(error)[:4000]}")
        else:
            print(f"ok   {name} ({time.monotonic() - started:.1f} s)")
    print(f"grammar gate tests: {len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
