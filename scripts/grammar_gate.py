#!/usr/bin/env python3
"""Grammar gate: every SQL statement the tests sent to the Data API emulator must parse as
Redshift SQL.

    scripts/grammar_gate.py [-j JOBS] [-q] RECORDING...

A recording is what the emulator writes when REDSHIFT_DATA_LOCAL_RECORD=<file> is set: one
JSON object per line, {"sql": "<statement as received>"}. `make test` records the whole
`cargo test` run and runs this gate over it.

Each statement is checked twice, independently of PostgreSQL (which runs the SQL in tests and
accepts much that Redshift does not):

1. Its string literals are lexed with Redshift's rules (a backslash escapes the next character,
   `''` is a quote) and must mean the same under the standard rule sqlfluff lexes with (`''`
   only): a literal that relies on `\\'`, or is not closed, is reported. Our builders write `\\`
   as `\\\\` and `'` as `''`, for which both rules agree.
2. It is parsed (not linted: no style rules) by sqlfluff's `redshift` dialect; an unparsable
   or unlexable section fails it.

Statements are de-duplicated first, so that tens of thousands of statements and 90 KB INSERTs
take seconds. A statement's shape is the statement with each string literal and quoted
identifier reduced to its form (its first unit, the set of its units and its last unit, a unit
being a run of ordinary characters, a doubled quote or a backslash escape), the digits of
numbers made `9` and runs of whitespace one space: two statements of one shape lex and parse
alike under both rules above, which treat only quotes and backslashes specially. Comma lists
whose items parse each on its own are taken apart: the tuples of a VALUES list down to their
values, the assignments of an UPDATE's SET whole. A statement is new if its shape with those
lists left out (its template) is, or if one of its values or assignments has a shape not seen
in that place before; each new statement is parsed once, as a probe: as written, its lists cut
to the items that bring something new. What sqlfluff sees is never a form: every literal form,
value and assignment is parsed exactly as the tests sent it, at least once.

Exit status: 0 every statement parses; 1 some shape failed (each listed with its parse error);
2 bad usage, or a recording that is missing, empty or not JSON lines.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field

if sys.version_info < (3, 11):  # possessive quantifiers below
    print("grammar gate: needs Python 3.11 or later: run it with the project venv's python", file=sys.stderr)
    sys.exit(2)

# --- Shapes ---------------------------------------------------------------------------------

# Redshift string literal (backslash escapes, '' quotes), unrolled so that a literal that is
# not closed fails in linear time.
_RS_STRING = r"'[^'\\]*(?:(?:\\.|'')[^'\\]*)*'"
_QUOTED_ID = r'"[^"]*(?:""[^"]*)*"'
_TOKEN = re.compile(
    rf"""
    (?=[\s'"/-])  # a cheap first test: most characters start no token
    (?:
      (?P<ws>\s\s+|[^\S ])
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*.*?\*/)
    | (?P<string>{_RS_STRING})
    | (?P<ident>{_QUOTED_ID})
    | (?P<open>(?:['"]|/\*).*)
    )
    """,
    re.S | re.X,
)
# sqlfluff's redshift dialect lexes '...' with the standard rule: '' is a quote, \ is ordinary.
_STANDARD_STRING = re.compile(r"'(?:[^']|'')*'", re.S)
_STRING_UNIT = re.compile(r"\\.|''|[^'\\]+", re.S)
_IDENT_UNIT = re.compile(r'""|\\|[^"\\]+')
_COMMENT_ORDINARY = re.compile(r"[^*/\-\n]+")
# The digit runs of a number (not those of a name such as INT8), after _TOKEN.
_NUMBER = re.compile(r"(?<![\w$])\d+|(?<=\d[eE])\d+|(?<=\d[eE][-+])\d+")


def _form(text: str, units: re.Pattern) -> str:
    """A quoted literal or identifier reduced to its form: its first unit, the set of its units
    and its last unit, a unit being a run of ordinary characters (`x`), a doubled quote, or a
    backslash with the character it escapes (`\\c` for one that is not a backslash or quote)."""
    quote, inner = text[0], text[1:-1]
    if "\\" not in inner and quote * 2 not in inner:
        return f"{quote}x{quote}" if inner else text
    found = []
    for unit in units.findall(inner):
        if unit[0] == "\\":
            unit = unit if unit[1:] in ("", "\\", "'") else "\\c"
        elif unit != quote * 2:
            unit = "x"
        found.append(unit)
    return quote + found[0] + "".join(sorted(set(found))) + found[-1] + quote


def _normalize(match: re.Match) -> str:
    kind, text = match.lastgroup, match.group()
    if kind == "ws":
        return " "
    if kind == "string":
        return _form(text, _STRING_UNIT)
    if kind == "ident":
        return _form(text, _IDENT_UNIT)
    if kind in ("line_comment", "block_comment"):
        return _COMMENT_ORDINARY.sub("x", text)
    return text  # an unclosed literal, identifier or comment: the rest, as written


# In a normalized statement: a parenthesized tuple (up to three levels of nested parentheses,
# literals and identifiers as atoms). Possessive quantifiers keep a failed match linear.
_K_STRING = r"'[^'\\]*+(?:(?:\\.|'')[^'\\]*+)*+'"
_K_ATOM = rf"""[^()'"]++|{_K_STRING}|{_QUOTED_ID}"""
_K_TUPLE = r"\((?:%s)*+\)" % _K_ATOM
for _ in range(3):
    _K_TUPLE = r"\((?:%s|%s)*+\)" % (_K_ATOM, _K_TUPLE)
_TUPLE = re.compile(_K_TUPLE)
_VALUES = re.compile(r"(?<![\w$\"])VALUES ?(?=\()", re.I)
_TUPLE_SEPARATOR = re.compile(r" ?, ?(?=\()")
# The SET list of a statement that starts `UPDATE table [[AS] alias] SET`: assignments up to the
# first FROM or WHERE outside parentheses, or the end. An assignment holds no comma outside
# parentheses.
_NAME = rf"""(?:{_QUOTED_ID}|[\w$#]+)"""
_UPDATE_SET = re.compile(rf"^ ?UPDATE {_NAME}(?:\.{_NAME})*(?: AS)?(?: (?!SET\b){_NAME})? SET ", re.I)
_ASSIGNMENT = re.compile(rf"""(?:(?! (?i:FROM|WHERE)\b)[^,;()'"]|{_K_STRING}|{_QUOTED_ID}|{_K_TUPLE})+""")
_ASSIGNMENT_SEPARATOR = re.compile(r" ?, ?")
_SET_END = re.compile(r"(?i: (?:FROM|WHERE)\b|$)")


def _items(key: str, pos: int, item: re.Pattern, separator: re.Pattern) -> list[tuple[int, int]]:
    """(start, end) of the items from `pos` on: `item`s joined by `separator`s."""
    items = []
    while found := item.match(key, pos):
        items.append(found.span())
        sep = separator.match(key, found.end())
        if not sep:
            break
        pos = sep.end()
    return items


def _lists(key: str):
    """The comma lists of a normalized statement whose items parse each on its own: each VALUES
    list (its tuples) and the SET list of an UPDATE (its assignments). Yields (kind, start,
    end, [(item start, item end)])."""
    update = _UPDATE_SET.match(key)
    if update:
        items = _items(key, update.end(), _ASSIGNMENT, _ASSIGNMENT_SEPARATOR)
        # Only a list that ends where the SET clause does: a cut never leaves half an item.
        if items and _SET_END.match(key, items[-1][1]):
            yield "set", items[0][0], items[-1][1], items
    for found in _VALUES.finditer(key):
        tuples = _items(key, found.end(), _TUPLE, _TUPLE_SEPARATOR)
        if tuples:
            yield "values", tuples[0][0], tuples[-1][1], tuples


# A value of a tuple: no comma outside parentheses.
_VALUE = re.compile(rf"""(?:[^,()'"]++|{_K_STRING}|{_QUOTED_ID}|{_K_TUPLE})++""")


def units(kind: str, item: str) -> set[str]:
    """What of a list item must have been parsed in its place for the item to parse: each
    value of a VALUES tuple (a tuple of values that each parse parses, whatever their number
    and order), an assignment whole."""
    if kind == "values":
        return {value.strip() for value in _VALUE.findall(item, 1, len(item) - 1)} or {item}
    return {item}


def _normalized(sql: str) -> str:
    return _NUMBER.sub("9", _TOKEN.sub(_normalize, sql))


def split(sql: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """The statement's template (its shape with each list of `_lists` replaced by a mark, and
    the number of lists) and, for each list, its kind and the shapes of its items in order."""
    key = _normalized(sql)
    out, lists, last = [], [], 0
    for kind, start, end, items in _lists(key):
        out.append(key[last:start])
        out.append("\0")
        lists.append((kind, [key[a:b] for a, b in items]))
        last = end
    out.append(key[last:])
    out.append(f"\0{len(lists)}")
    return "".join(out), lists


def shape(sql: str) -> str:
    """The statement's shape: its template and, for each list, the units of its items.
    Statements of one shape lex and parse alike (see the module docs)."""
    template, lists = split(sql)
    return "\n".join(
        [template] + [",".join(sorted(set().union(*(units(kind, i) for i in items)))) for kind, items in lists]
    )


def _tracked(pattern: re.Pattern, replace, text: str):
    """`pattern.sub(replace, text)`, and a function from its positions back to `text`'s for a
    position that starts or ends a replacement or lies outside every one."""
    pieces, anchors_out, anchors_in = [], [], []
    out_len, last = 0, 0
    for match in pattern.finditer(text):
        gap = text[last : match.start()]
        pieces.append(gap)
        out_len += len(gap)
        anchors_out.append(out_len)
        anchors_in.append(match.start())
        piece = replace(match)
        pieces.append(piece)
        out_len += len(piece)
        anchors_out.append(out_len)
        anchors_in.append(match.end())
        last = match.end()
    pieces.append(text[last:])

    def back(pos: int) -> int:
        i = bisect.bisect_right(anchors_out, pos) - 1
        return pos if i < 0 else anchors_in[i] + (pos - anchors_out[i])

    return "".join(pieces), back


def cut(sql: str, keep) -> str:
    """`sql` as written with each list of `_lists` cut to the items for which keep(list index,
    kind, item shape) is true, the first of each item shape only (the list's first item when
    none is kept: a list needs one)."""
    normalized, back = _tracked(_TOKEN, _normalize, sql)
    key, back_numbers = _tracked(_NUMBER, lambda _: "9", normalized)
    assert key == _normalized(sql), "the tracked normalization must be split's"

    def raw(pos: int) -> int:
        return back(back_numbers(pos))

    out, last = [], 0
    for index, (kind, start, end, items) in enumerate(_lists(key)):
        seen, kept = set(), []
        for a, b in items:
            item = key[a:b]
            if item not in seen and keep(index, kind, item):
                seen.add(item)
                kept.append(sql[raw(a) : raw(b)])
        if not kept:
            a, b = items[0]
            kept.append(sql[raw(a) : raw(b)])
        out.append(sql[last : raw(start)])
        out.append(", ".join(kept))
        last = raw(end)
    if not out:
        return sql
    out.append(sql[last:])
    return "".join(out)


def representative(sql: str) -> str:
    """The statement as written, each list cut to the items that bring a unit the items before
    them did not."""
    done = set()

    def keep(index, kind, item):
        new = {(index, unit) for unit in units(kind, item)} - done
        done.update(new)
        return bool(new)

    return cut(sql, keep)


def literal_errors(sql: str) -> list[str]:
    """String literals Redshift and sqlfluff would read differently, and unclosed quotes."""
    errors = []
    for match in _TOKEN.finditer(sql):
        where = f"offset {match.start()}"
        if match.lastgroup == "string" and not _STANDARD_STRING.fullmatch(match.group()):
            errors.append(
                f"{where}: string literal {_clip(match.group(), 60)} escapes a quote with a backslash (\\'): "
                "Redshift reads it, but it is ambiguous to every other SQL lexer; write '' for a quote "
                "and \\\\ for a backslash"
            )
        elif match.lastgroup == "open":
            errors.append(
                f"{where}: {_clip(match.group(), 60)} is not closed under Redshift's rules "
                "(inside '...', a backslash escapes the next character: write \\\\ for a backslash)"
            )
    return errors


# --- Parsing --------------------------------------------------------------------------------

_LINTER = None


def _linter():
    global _LINTER
    if _LINTER is None:
        from sqlfluff.core import FluffConfig, Linter

        config = FluffConfig(
            overrides={"dialect": "redshift", "templater": "raw", "large_file_skip_byte_limit": 0},
            ignore_local_config=True,
        )
        _LINTER = Linter(config=config)
    return _LINTER


def parse_errors(sql: str) -> list[str]:
    """Why sqlfluff's redshift dialect cannot parse `sql` (empty: it parses)."""
    errors = literal_errors(sql)
    parsed = _linter().parse_string(sql)
    for violation in parsed.violations:
        line, pos = getattr(violation, "line_no", None), getattr(violation, "line_pos", None)
        message = violation.desc()
        if line and pos:
            message += f"\n      near: {_near(sql, line, pos)}"
        errors.append(message)
    if not parsed.violations and (parsed.tree is None or any(True for _ in parsed.tree.recursive_crawl("unparsable"))):
        errors.append("sqlfluff found an unparsable section")
    return errors


def _parse_job(item):
    index, sql = item
    try:
        return index, parse_errors(sql)
    except Exception as error:  # a crash of the parser fails the shape, not the gate
        return index, [f"sqlfluff raised {type(error).__name__}: {error}"]


def _clip(text: str, limit: int) -> str:
    text = text.replace("\n", "\\n")
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    return f"{text[:head]} …[{len(text) - limit} chars]… {text[len(text) - (limit - head):]}"


def _near(sql: str, line: int, pos: int) -> str:
    lines = sql.split("\n")
    offset = sum(len(l) + 1 for l in lines[: line - 1]) + pos - 1
    before = sql[max(0, offset - 80) : offset].replace("\n", "\\n")
    after = sql[offset : offset + 80].replace("\n", "\\n")
    return f"{'…' if offset > 80 else ''}{before} ⟨HERE⟩ {after}{'…' if offset + 80 < len(sql) else ''}"


# --- Recordings -----------------------------------------------------------------------------


class UsageError(Exception):
    pass


RECORDING_HELP = (
    "The Data API emulator appends every statement it receives to the file named by "
    "REDSHIFT_DATA_LOCAL_RECORD; a test run that left no statement there sent no SQL through the "
    "emulator, ran without the variable, or ran an emulator that does not record. A run that "
    "recorded nothing proves nothing: run `make test` (it sets the variable for `cargo test`), or "
    "`REDSHIFT_DATA_LOCAL_RECORD=$PWD/sql.jsonl cargo test` and point the gate at that file."
)


@dataclass
class Probe:
    """What is parsed: a statement that brings a new template or list item, as written, its
    lists cut to the items no earlier probe had."""

    sql: str
    origin: str  # file:line of the statement it comes from
    template: str
    errors: list[str] = field(default_factory=list)


@dataclass
class Recordings:
    statements: int = 0
    probes: list[Probe] = field(default_factory=list)
    # Statements per template (a template is a statement shape with its lists left out).
    templates: dict[str, int] = field(default_factory=dict)
    items: int = 0  # distinct (template, list, unit): tuple values, SET assignments


def read(paths: list[str]) -> Recordings:
    """Read the recordings and make the probes that cover every statement in them.

    A list parses when each of its items does in its place, and a VALUES tuple when each of its
    values does, so a statement whose template and list units were all in earlier probes needs
    no probe of its own."""
    out = Recordings()
    seen_units: set[tuple[str, int, str]] = set()
    seen_items: set[tuple[str, int, str]] = set()  # items whose units are all in seen_units
    templates_of_text: dict[bytes, str] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"{path}: no such recording. {RECORDING_HELP}")
        in_file = 0
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    sql = json.loads(line)["sql"]
                    if not isinstance(sql, str):
                        raise TypeError("sql is not a string")
                except (ValueError, KeyError, TypeError) as error:
                    raise UsageError(
                        f'{path}:{number}: not a recording line ({{"sql": "..."}} expected): {error}'
                    ) from None
                out.statements += 1
                in_file += 1
                digest = hashlib.blake2b(sql.encode(), digest_size=16).digest()
                template = templates_of_text.get(digest)
                if template is not None:  # the same text again: nothing new
                    out.templates[template] += 1
                    continue
                template, lists = split(sql)
                templates_of_text[digest] = template
                new_template = template not in out.templates
                out.templates[template] = out.templates.get(template, 0) + 1
                new = set()
                for i, (kind, items) in enumerate(lists):
                    for item in set(items):
                        if (template, i, item) not in seen_items:
                            seen_items.add((template, i, item))
                            new.update((template, i, unit) for unit in units(kind, item))
                new -= seen_units
                if new_template or new:
                    seen_units |= new
                    out.items += len(new)
                    if lists:
                        sql = cut(sql, _keeper(template, new))
                    out.probes.append(Probe(sql=sql, origin=f"{path}:{number}", template=template))
        if in_file == 0:
            raise UsageError(f"{path}: the recording holds no statement. {RECORDING_HELP}")
    return out


def _keeper(template: str, pending: set):
    """keep() for `cut`: an item is kept when it brings a unit of `pending` not yet kept."""
    pending = set(pending)

    def keep(index, kind, item):
        brings = {(template, index, unit) for unit in units(kind, item)} & pending
        pending.difference_update(brings)
        return bool(brings)

    return keep


def check(probes: list[Probe], jobs: int, progress) -> None:
    """Fill in each probe's errors, parsing in `jobs` processes."""
    _linter()  # load sqlfluff once, before workers fork
    work = sorted(enumerate(p.sql for p in probes), key=lambda item: -len(item[1]))  # long first
    if jobs <= 1 or len(work) < 8:
        for done, (index, errors) in enumerate(map(_parse_job, work), 1):
            probes[index].errors = errors
            progress(done)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for done, (index, errors) in enumerate(pool.map(_parse_job, work), 1):
            probes[index].errors = errors
            progress(done)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Parse every SQL statement of emulator recordings with sqlfluff's redshift dialect.",
        epilog="Exit status: 0 all parse, 1 some statement does not, 2 bad usage or recording.",
    )
    parser.add_argument("recordings", nargs="+", metavar="RECORDING", help='JSON lines {"sql": "..."}')
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="parser processes")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        recorded = read(args.recordings)
    except UsageError as error:
        print(f"grammar gate: {error}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as error:
        print(f"grammar gate: cannot read a recording: {error}", file=sys.stderr)
        return 2
    probes = recorded.probes
    import sqlfluff

    shapes = f"{len(recorded.templates)} statement shapes, {recorded.items} value and assignment shapes"
    print(
        f"grammar gate: {recorded.statements} statements, {shapes} (read in {time.monotonic() - started:.1f} s); "
        f"parsing {len(probes)} probes with sqlfluff {sqlfluff.__version__} (dialect redshift, {args.jobs} jobs)",
        flush=True,
    )
    last = [time.monotonic()]

    def progress(done: int) -> None:
        now = time.monotonic()
        if not args.quiet and (now - last[0] >= 5 or done == len(probes)):
            last[0] = now
            print(f"grammar gate: parsed {done}/{len(probes)} probes ({now - started:.1f} s)", flush=True)

    check(probes, max(1, args.jobs), progress)
    failed = [p for p in probes if p.errors]
    for number, p in enumerate(failed, 1):
        count = recorded.templates[p.template]
        print(f"\nFAIL {number}/{len(failed)}: {p.origin} (one of {count} statements of this shape, lists aside)")
        print(f"  sql ({len(p.sql)} bytes): {_clip(p.sql, 400)}")
        for error in p.errors:
            print(f"  error: {error}")
    elapsed = time.monotonic() - started
    print(
        f"\ngrammar gate: {recorded.statements} statements read, {shapes}: "
        f"{len(probes) - len(failed)} probes parsed, {len(failed)} failed, {elapsed:.1f} s"
    )
    if failed:
        print(
            "grammar gate: FAILED. The statements above are not Redshift SQL as sqlfluff's redshift "
            "dialect reads it: fix the SQL builder that wrote them (PostgreSQL accepts them, Redshift "
            "may not). Rerun with: scripts/grammar_gate.py " + " ".join(args.recordings)
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
