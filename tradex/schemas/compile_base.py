"""Shared machinery of the schema compilers (:mod:`.compile_writer`, :mod:`.compile_reader`).

A compiler walks one subject's schema and emits the Python source of one straight-line
function that writes (or reads) every field in order; the source is compiled once with
``exec`` and cached by schema text. The functions take their helpers and constants as
keyword-only defaults, so every name they use is a fast local.

A schema feature the compilers do not handle raises :class:`Unsupported`; the codec then
keeps fastavro for that subject. Handled: null, boolean, int, long, float, double, bytes,
string, records, enums, fixed, arrays, maps and two-branch unions with null. Not handled:
other unions, logical types, recursive records.
"""

from __future__ import annotations

import struct
from hashlib import sha256
from typing import Any

from tradex.schemas import wire

PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))
NAMED_KINDS = frozenset(("record", "error", "enum", "fixed"))
SOURCE_LINES_MAX = 20_000  # a generated function longer than this is refused (runaway schema)
NESTING_MAX = 32  # record/array/map/union nesting depth the compilers accept

# Helpers every generated function can use (bound as keyword-only defaults).
RUNTIME: dict[str, Any] = {
    "ZIGZAG": wire.ZIGZAG,
    "LENGTH": wire.LENGTH,
    "ZIGZAG_TABLE_SIZE": wire.ZIGZAG_TABLE_SIZE,
    "LENGTH_TABLE_SIZE": wire.LENGTH_TABLE_SIZE,
    "GROUP": wire.GROUP,
    "TWO_GROUPS_MAX": wire.TWO_GROUPS_MAX,
    "ONE_BYTE": wire.ONE_BYTE,
    "LENGTH_OF": wire.LENGTH_OF,
    "write_long": wire.write_long,
    "write_int": wire.write_int,
    "read_long": wire.read_long,
    "read_int": wire.read_int,
    "read_length": wire.read_length,
    "read_count": wire.read_count,
    "PACK_FLOAT": struct.Struct("<f").pack,
    "PACK_DOUBLE": struct.Struct("<d").pack,
    "UNPACK_FLOAT": struct.Struct("<f").unpack_from,
    "UNPACK_DOUBLE": struct.Struct("<d").unpack_from,
    "TUPLE_NEW": tuple.__new__,
    "sha256": sha256,
    "B0": b"\x00",
    "B1": b"\x01",
}


class Unsupported(Exception):
    """The schema uses something the compilers do not handle (the codec uses fastavro)."""


def full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def default_value(field: dict[str, Any], kind: Any) -> Any:
    """The Python value of a field's JSON ``default`` (bytes and fixed: latin-1 text)."""
    value = field["default"]
    if kind in ("bytes", "fixed") or (isinstance(kind, dict) and kind.get("type") == "fixed"):
        assert isinstance(value, str), "a bytes default is a JSON string"
        return value.encode("latin-1")
    return value


class Source:
    """Lines and constants of one generated function, plus the schema's named types."""

    def __init__(self, schema: Any) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.count = 0
        self.named: dict[str, tuple[dict[str, Any], str]] = {}  # full name -> (schema, namespace)
        self.active: set[str] = set()  # records being compiled (recursion guard)
        self._collect(schema, "")

    def _collect(self, schema: Any, namespace: str) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
            return
        if not isinstance(schema, dict):
            return
        kind = schema["type"]
        if kind in NAMED_KINDS:
            name = full_name(schema["name"], schema.get("namespace", namespace))
            inner = name.rpartition(".")[0]
            if name in self.named:
                raise Unsupported(f"named type {name} defined twice")
            self.named[name] = (schema, inner)
            for field in schema.get("fields", ()) if kind in ("record", "error") else ():
                self._collect(field["type"], inner)
        elif kind == "array":
            self._collect(schema["items"], namespace)
        elif kind == "map":
            self._collect(schema["values"], namespace)
        elif isinstance(kind, dict | list):
            self._collect(kind, namespace)

    def resolve(self, schema: Any, namespace: str) -> tuple[Any, str]:
        """(a primitive name, a union list or a complex schema dict; the namespace in it)."""
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return schema, namespace
            for name in (full_name(schema, namespace), schema):
                if name in self.named:
                    return self.named[name]
            raise Unsupported(f"unknown type {schema!r}")
        if isinstance(schema, list):
            return schema, namespace
        if "logicalType" in schema:
            raise Unsupported(f"logical type {schema['logicalType']!r}")
        kind = schema["type"]
        if isinstance(kind, dict | list) or kind in PRIMITIVES:
            return self.resolve(kind, namespace)
        if kind in NAMED_KINDS:
            name = full_name(schema["name"], schema.get("namespace", namespace))
            return schema, name.rpartition(".")[0]
        return schema, namespace

    def null_union(self, union: list[Any], namespace: str) -> tuple[int, int, Any]:
        """(index of null, index of the other branch, the other branch) of ``[null, X]``."""
        if len(union) != 2:
            raise Unsupported("a union other than [null, X]")
        kinds = [self.resolve(branch, namespace)[0] for branch in union]
        if kinds.count("null") != 1 or any(isinstance(k, list) for k in kinds):
            raise Unsupported("a union other than [null, X]")
        null_index = kinds.index("null")
        return null_index, 1 - null_index, union[1 - null_index]

    def enter(self, schema: dict[str, Any], namespace: str) -> str:
        name = full_name(schema["name"], schema.get("namespace", namespace))
        if name in self.active:
            raise Unsupported(f"recursive record {name}")
        if len(self.active) >= NESTING_MAX:
            raise Unsupported("records nested too deep")
        self.active.add(name)
        return name

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value: Any) -> str:
        name = f"K{len(self.consts)}"
        self.consts[name] = value
        return name

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)
        if len(self.lines) > SOURCE_LINES_MAX:
            raise Unsupported(f"generated code longer than {SOURCE_LINES_MAX} lines")

    def build(self, name: str, params: str, *extra: tuple[str, Any]) -> Any:
        """Compile ``def factory(HEADER): def <name>(<params>, *, <helpers>): <lines>``."""
        namespace = {**RUNTIME, **self.consts, **dict(extra)}
        bound = ", ".join(f"{key}={key}" for key in namespace)
        text = "\n".join(
            [
                "def factory(HEADER):",
                f"    def {name}({params}, *, {bound}):",
                *("    " + line for line in self.lines),
                f"    return {name}",
            ]
        )
        exec(compile(text, f"<tradex.schemas.compiled {name}>", "exec"), namespace)
        factory = namespace["factory"]
        factory.source = text
        return factory
