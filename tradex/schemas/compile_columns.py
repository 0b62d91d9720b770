"""Programs of the columnar decoder (``ColumnDecoder`` in ``_native/columns.c``).

The same walk of a subject's newest schema as :mod:`.compile_native`, but records are
flattened: every leaf value (a long, a string, an enum, ...) of the envelope, of the
payload and of nested rows gets a dotted name (``envelope.event_id``, ``price``,
``instrument.symbol``) and, when wanted, a column; an array (``postings``) is one op
whose items are a child *level* with their own leaves (``postings.asset``). The checks
of :mod:`.column_checks` are attached to the ops of the values they check.

    program = column_program(text, binding, wanted, dictionary, checks)
    program.ops, program.columns, program.record_checks   # for ColumnDecoder.add
    program.leaves                                        # every value, named, in order
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from tradex.schemas import _native_codec as native
from tradex.schemas.bindings import Binding
from tradex.schemas.column_checks import Check
from tradex.schemas.compile_base import Source, Unsupported
from tradex.schemas.compile_native import (
    OP_ARRAY,
    OP_BOOLEAN,
    OP_BYTES,
    OP_ENUM,
    OP_FIXED,
    OP_INT,
    OP_LONG,
    OP_NULL,
    OP_STRING,
    PRIMITIVE_OPS,
)
from tradex.schemas.compile_reader import min_size
from tradex.schemas.envelope import Envelope

ENVELOPE = "envelope"
LEVELS_MAX: int = native.COLUMN_LEVELS_MAX
ENUM8_SYMBOLS_MAX = 128  # enum codes fit an int8 up to this many symbols (else int16)
INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class Leaf:
    """One value of a record: its dotted name, where it is, what it is."""

    name: str
    level: int  # 0: the record; k: the items of the k-th array
    code: int  # OP_*
    arg: int  # FIXED: size; ENUM: symbols
    symbols: tuple[str, ...] = ()  # ENUM
    domain: bool = True  # the domain type (or the Envelope) has it
    column: int = -1  # -1: read and dropped


@dataclass(frozen=True)
class Level:
    """The items of one array: its name (the array's) and its parent level."""

    name: str
    parent: int


@dataclass
class ColumnProgram:
    ops: tuple[Any, ...]
    columns: tuple[tuple[int, int, int], ...]  # (kind, level, width)
    record_checks: tuple[tuple[int, int, int, int, int], ...]
    leaves: list[Leaf] = field(default_factory=list)  # every value, in decode order
    levels: list[Level] = field(default_factory=list)  # level 0 is the record itself


def column_kind(leaf: Leaf, dictionary: bool) -> tuple[int, int]:
    """(COL_* kind, width) of a leaf's column."""
    if leaf.code == OP_LONG:
        return native.COL_I64, 8
    if leaf.code == OP_INT:
        return native.COL_I32, 4
    if leaf.code == OP_BOOLEAN:
        return native.COL_U8, 1
    if leaf.code == OP_ENUM:
        if leaf.arg <= ENUM8_SYMBOLS_MAX:
            return native.COL_CODE8, 1
        return native.COL_CODE16, 2
    if leaf.code in (OP_STRING, OP_BYTES):
        return (native.COL_DICT, 4) if dictionary else (native.COL_STR, 0)
    if leaf.code == OP_FIXED:
        return native.COL_FIXED, leaf.arg
    raise Unsupported(f"a column of op {leaf.code}")


Named = tuple[str, Any]  # (the value's name, its op)


class _Walker(Source):
    def __init__(
        self, schema: Any, choose: Callable[[Leaf], bool], dictionary: Collection[str],
        checks: dict[str, list[Check]],
    ) -> None:  # fmt: skip
        super().__init__(schema)
        self.choose = choose
        self.dictionary = dictionary
        self.checks = checks  # by value name; each is taken by its op
        self.leaves: list[Leaf] = []
        self.levels: list[Level] = [Level("", -1)]
        self.columns: list[tuple[int, int, int]] = []

    def leaf(self, leaf: Leaf) -> Named:
        if leaf.domain and self.choose(leaf):
            kind, width = column_kind(leaf, leaf.name in self.dictionary)
            leaf = Leaf(**{**leaf.__dict__, "column": len(self.columns)})
            self.columns.append((kind, leaf.level, width))
        self.leaves.append(leaf)
        return leaf.name, (leaf.code, leaf.column, leaf.arg, self.value_checks(leaf), None)

    def value_checks(self, leaf: Leaf) -> tuple[Any, ...]:
        found: list[tuple[Any, ...]] = []
        for check in self.checks.pop(leaf.name, []):
            if check.kind == "range" and leaf.code in (OP_INT, OP_LONG):
                found.append((native.CHECK_RANGE, check.lo, check.hi, None))
            elif check.kind == "length" and leaf.code == OP_STRING:
                found.append((native.CHECK_LENGTH, check.lo, check.hi, None))
            elif check.kind == "member" and leaf.code == OP_ENUM:
                allowed = bytes(symbol in check.members for symbol in leaf.symbols)
                found.append((native.CHECK_ENUM, 0, 0, allowed))
            else:
                raise Unsupported(f"check {check.kind} of {leaf.name} (op {leaf.code})")
        return tuple(found)

    def array_checks(self, name: str, level: int) -> tuple[Any, ...]:
        items = [leaf.name for leaf in self.leaves if leaf.level == level]
        found = []
        for check in self.checks.pop(name, []):
            if check.kind == "count":
                found.append((native.CHECK_COUNT, check.lo, check.hi, None))
            elif check.kind == "balanced":
                key = items.index(f"{name}.{check.key}")
                value = items.index(f"{name}.{check.value}")
                found.append((native.CHECK_BALANCED, key, value, None))
            else:
                raise Unsupported(f"check {check.kind} of the array {name}")
        return tuple(found)

    def ops(
        self, schema: Any, ns: str, name: str, level: int, row: Any, domain: bool
    ) -> list[Named]:
        """The ops reading a value of ``schema`` named ``name`` (records: flattened)."""
        schema, ns = self.resolve(schema, ns)
        if isinstance(schema, str):
            code = PRIMITIVE_OPS[schema]
            if code == OP_NULL:
                return [(name, (OP_NULL, -1, 0, (), None))]
            return [self.leaf(Leaf(name, level, code, 0, (), domain))]
        if isinstance(schema, list):
            raise Unsupported("a union in the columnar decoder")
        kind = schema["type"]
        if kind in ("record", "error"):
            if row is None:
                raise Unsupported("a record without a row type in the columnar decoder")
            record_name = self.enter(schema, ns)
            fields: tuple[str, ...] = row._fields
            out = []
            for f in schema["fields"]:
                inner = domain and f["name"] in fields
                out += self.ops(f["type"], ns, f"{name}.{f['name']}", level, None, inner)
            self.active.discard(record_name)
            return out
        if kind == "enum":
            symbols = tuple(schema["symbols"])
            return [self.leaf(Leaf(name, level, OP_ENUM, len(symbols), symbols, domain))]
        if kind == "fixed":
            return [self.leaf(Leaf(name, level, OP_FIXED, int(schema["size"]), (), domain))]
        if kind == "array":
            child = len(self.levels)
            if child >= LEVELS_MAX:
                raise Unsupported("arrays nested beyond the columnar decoder's levels")
            self.levels.append(Level(name, level))
            items = self.ops(schema["items"], ns, name, child, row, domain)
            sized = 1 if min_size(self, schema["items"], ns) else 0
            checks = self.array_checks(name, child)
            return [(name, (OP_ARRAY, child, sized, checks, tuple(op for _, op in items)))]
        raise Unsupported(f"type {kind!r} in the columnar decoder")


def column_program(
    text: str,
    binding: Binding,
    choose: Callable[[Leaf], bool],
    dictionary: Collection[str] = (),
    checks: Collection[Check] = (),
) -> ColumnProgram:
    """The program of ``binding``'s newest schema ``text``: ``choose(leaf)`` says which
    values get a column (only values the domain type has can), ``dictionary`` which strings
    are dictionary-encoded, ``checks`` what its ``validate()`` checks (column_checks)."""
    schema = json.loads(text)
    fields = schema["fields"]
    if fields[0]["name"] != ENVELOPE or fields[-1]["name"] != "hash":
        raise Unsupported("not an envelope ... hash record")
    by_name: dict[str, list[Check]] = {}
    across = [c for c in checks if c.kind in ("equal_if", "differ")]
    for check in checks:
        if check not in across:
            by_name.setdefault(check.field, []).append(check)
    walker = _Walker(schema, choose, dictionary, by_name)
    ns = schema.get("namespace", "")
    rows = {name: row for _, name, row in binding.row_fields + binding.list_fields}
    named = walker.ops(fields[0]["type"], ns, ENVELOPE, 0, Envelope, True)
    for f in fields[1:-1]:
        name = f["name"]
        named += walker.ops(f["type"], ns, name, 0, rows.get(name), name in binding.fields)
    named += walker.ops(fields[-1]["type"], ns, "hash", 0, None, False)
    if walker.checks:
        raise Unsupported(f"checks of values {binding.cls.__name__} lacks: {sorted(walker.checks)}")
    top = [name for name, _ in named]
    leaves = {leaf.name: leaf for leaf in walker.leaves}
    record_checks = []
    for check in across:
        a, b = top.index(check.field), top.index(check.other)
        if check.kind == "equal_if":
            code = leaves[check.when].symbols.index(check.symbol)
            record_checks.append((native.RCHECK_EQUAL_IF, a, b, top.index(check.when), code))
        else:
            record_checks.append((native.RCHECK_DIFFER, a, b, 0, 0))
    return ColumnProgram(
        tuple(op for _, op in named), tuple(walker.columns), tuple(record_checks),
        walker.leaves, walker.levels,
    )  # fmt: skip
