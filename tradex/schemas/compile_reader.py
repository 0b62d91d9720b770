"""Generated Avro decoders: wire bytes -> record dict, or -> (Envelope, domain NamedTuple).

Used when the bytes were written with the newest schema of their subject (no schema
resolution needed); older versions go through fastavro. A dict decoder returns what
fastavro's ``schemaless_reader`` returns (tests/schemas/test_compiled.py checks it with
Hypothesis). Every function returns the position after the record; the codec checks it
equals the length (shorter: trailing bytes, longer: truncated).

Corrupt input raises ``IndexError`` (data ends early), ``ValueError`` (varint too long,
negative length, enum index or union branch out of range, bad UTF-8) or ``struct.error``;
the codec turns any of them into CodecError. Loops over the input are bounded: an array
block count can be at most the bytes left (items of a zero-size type: ``ITEMS_MAX``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from tradex.schemas.bindings import Binding
from tradex.schemas.chain import HEADER_SIZE
from tradex.schemas.compile_base import Source, Unsupported
from tradex.schemas.envelope import Envelope

ITEMS_MAX = 1 << 20  # items of a zero-size type (null, empty record) in one array/map block
COMPILED_MAX = 4_096
TOP = 1


def min_size(source: Source, schema: Any, ns: str) -> int:
    """The fewest bytes a value of ``schema`` takes (0 only for null-like types)."""
    schema, ns = source.resolve(schema, ns)
    if isinstance(schema, str):
        return {"null": 0, "float": 4, "double": 8}.get(schema, 1)
    if isinstance(schema, list):
        return 1
    kind = schema["type"]
    if kind == "fixed":
        return int(schema["size"])
    if kind in ("record", "error"):
        name = source.enter(schema, ns)
        size = sum(min_size(source, f["type"], ns) for f in schema["fields"])
        source.active.discard(name)
        return size
    return 1  # enum, array, map


class _Reader(Source):
    def read(self, schema: Any, t: str, depth: int, ns: str, row: type | None) -> None:
        """Read a value of ``schema`` at ``p`` into local ``t``. ``row``: the NamedTuple
        class to build for a record here (None: a dict; a list of them: a tuple)."""
        schema, ns = self.resolve(schema, ns)
        emit = self.emit
        if isinstance(schema, str):
            self.primitive(schema, t, depth)
        elif isinstance(schema, list):
            null_index, other_index, other = self.null_union(schema, ns)
            self.varint("u", "read_long", depth)
            emit(depth, f"if u == {null_index}:")
            emit(depth + 1, f"{t} = None")
            emit(depth, f"elif u == {other_index}:")
            self.read(other, t, depth + 1, ns, row)
            emit(depth, "else:")
            emit(depth + 1, "raise ValueError(f'union branch {u} out of range')")
        elif schema["type"] in ("record", "error"):
            name = self.enter(schema, ns)
            values = {}
            for field in schema["fields"]:
                values[field["name"]] = self.fresh("x")
                self.read(field["type"], values[field["name"]], depth, ns, None)
            self.active.discard(name)
            if row is None:
                items = ", ".join(f"{key!r}: {value}" for key, value in values.items())
                emit(depth, f"{t} = {{{items}}}")
            else:
                emit(depth, f"{t} = {self.build_row(row, values)}")
        elif schema["type"] == "enum":
            symbols = tuple(schema["symbols"])
            by_byte = tuple(
                symbols[b >> 1] if b < 0x80 and not b & 1 and b >> 1 < len(symbols) else None
                for b in range(256)
            )
            emit(depth, f"{t} = {self.const(by_byte)}[data[p]]")
            emit(depth, f"if {t} is None:")
            emit(depth + 1, "i, p = read_long(data, p)")
            emit(depth + 1, f"if not 0 <= i < {len(symbols)}:")
            emit(depth + 2, "raise ValueError(f'enum index {i} out of range')")
            emit(depth + 1, f"{t} = {self.const(symbols)}[i]")
            emit(depth, "else:")
            emit(depth + 1, "p += 1")
        elif schema["type"] == "fixed":
            size = int(schema["size"])
            emit(depth, f"{t} = data[p:p + {size}]")
            emit(depth, f"p += {size}")
        elif schema["type"] in ("array", "map"):
            self.sequence(schema, t, depth, ns, row)
        else:
            raise Unsupported(f"type {schema['type']!r}")

    def build_row(self, row: type, values: dict[str, str]) -> str:
        names: tuple[str, ...] = row._fields  # type: ignore[attr-defined]
        missing = [name for name in names if name not in values]
        if missing:
            raise Unsupported(f"{row.__name__} fields {missing} are not in the schema")
        args = ", ".join(values[name] for name in names)
        return f"TUPLE_NEW({self.const(row)}, ({args},))"

    def sequence(self, schema: dict[str, Any], t: str, depth: int, ns: str, row: Any) -> None:
        is_map = schema["type"] == "map"
        inner = schema["values"] if is_map else schema["items"]
        bound = "len(data) - p" if min_size(self, inner, ns) else str(ITEMS_MAX)
        count, item, key = self.fresh("c"), self.fresh("i"), self.fresh("k")
        emit = self.emit
        emit(depth, f"{t} = {{}}" if is_map else f"{t} = []")
        emit(depth, "for _ in range(len(data)):  # every block takes at least one byte")
        emit(depth + 1, f"{count} = ONE_BYTE[data[p]]")
        emit(depth + 1, f"if {count} is None or {count} < 0:")
        emit(depth + 2, f"{count}, p = read_count(data, p)")
        emit(depth + 1, "else:")
        emit(depth + 2, "p += 1")
        emit(depth + 1, f"if not {count}:")
        emit(depth + 2, "break")
        emit(depth + 1, f"if {count} > {bound}:")
        emit(depth + 2, f"raise ValueError(f'block of {{{count}}} items exceeds the data')")
        emit(depth + 1, f"for _ in range({count}):")
        if is_map:
            self.primitive("string", key, depth + 2)
            self.read(inner, item, depth + 2, ns, None)
            emit(depth + 2, f"{t}[{key}] = {item}")
        else:
            self.read(inner, item, depth + 2, ns, row)
            emit(depth + 2, f"{t}.append({item})")
        emit(depth, "else:")
        emit(depth + 1, "raise ValueError('array or map without its end')")
        if row is not None:
            emit(depth, f"{t} = tuple({t})")

    def varint(self, t: str, slow: str, depth: int) -> None:
        """Read an int/long into ``t``: 1 to 3 bytes inline (in range of both), else a call."""
        emit = self.emit
        emit(depth, f"{t} = ONE_BYTE[data[p]]")
        emit(depth, f"if {t} is not None:")
        emit(depth + 1, "p += 1")
        emit(depth, "elif data[p + 1] < 0x80:")
        emit(depth + 1, f"{t} = (data[p] & 0x7F) | data[p + 1] << 7")
        emit(depth + 1, f"{t} = ({t} >> 1) ^ -({t} & 1)")
        emit(depth + 1, "p += 2")
        emit(depth, "elif data[p + 2] < 0x80:")
        emit(depth + 1, f"{t} = (data[p] & 0x7F) | (data[p + 1] & 0x7F) << 7 | data[p + 2] << 14")
        emit(depth + 1, f"{t} = ({t} >> 1) ^ -({t} & 1)")
        emit(depth + 1, "p += 3")
        emit(depth, "else:")
        emit(depth + 1, f"{t}, p = {slow}(data, p)")

    def primitive(self, kind: str, t: str, depth: int) -> None:
        emit = self.emit
        if kind in ("int", "long"):
            self.varint(t, "read_long" if kind == "long" else "read_int", depth)
        elif kind in ("string", "bytes"):
            emit(depth, "n = LENGTH_OF[data[p]]")
            emit(depth, "if n is None:")
            emit(depth + 1, "n, p = read_length(data, p)")
            emit(depth, "else:")
            emit(depth + 1, "p += 1")
            emit(
                depth,
                f"{t} = data[p:p + n].decode()" if kind == "string" else f"{t} = data[p:p + n]",
            )
            emit(depth, "p += n")
        elif kind == "boolean":
            emit(depth, f"{t} = BOOLEANS[data[p]]")
            emit(depth, "p += 1")
        elif kind in ("float", "double"):
            unpack, size = ("UNPACK_FLOAT", 4) if kind == "float" else ("UNPACK_DOUBLE", 8)
            emit(depth, f"{t} = {unpack}(data, p)[0]")
            emit(depth, f"p += {size}")
        else:
            assert kind == "null", kind
            emit(depth, f"{t} = None")


BOOLEANS = (False, True)  # any other byte is corrupt (IndexError)


@lru_cache(maxsize=COMPILED_MAX)
def _dict_factory(text: str) -> Any:
    schema = json.loads(text)
    source = _Reader(schema)
    source.emit(TOP, f"p = {HEADER_SIZE}")
    source.read(schema, "record", TOP, "", None)
    source.emit(TOP, "return record, p")
    return source.build("decode", "data", ("BOOLEANS", BOOLEANS))


def dict_decoder(text: str) -> Callable[[bytes], tuple[dict[str, Any], int]]:
    """``decode(wire bytes) -> (record dict, position after it)`` for the schema ``text``."""
    decoder: Callable[[bytes], tuple[dict[str, Any], int]] = _dict_factory(text)(b"")
    return decoder


@lru_cache(maxsize=COMPILED_MAX)
def _domain_factory(text: str, binding: Binding) -> Any:
    schema = json.loads(text)
    source = _Reader(schema)
    ns = schema.get("namespace", "")
    fields = schema["fields"]
    if fields[0]["name"] != "envelope" or fields[-1]["name"] != "hash":
        raise Unsupported("not an envelope ... hash record")
    hash_type, _ = source.resolve(fields[-1]["type"], ns)
    if not isinstance(hash_type, dict) or hash_type.get("type") != "fixed":
        raise Unsupported("hash is not a fixed")
    rows: dict[str, type] = {name: row for _, name, row in binding.row_fields + binding.list_fields}
    source.emit(TOP, f"p = {HEADER_SIZE}")
    source.read(fields[0]["type"], "envelope", TOP, ns, Envelope)
    values = {}
    for field in fields[1:-1]:
        values[field["name"]] = source.fresh("x")
        source.read(field["type"], values[field["name"]], TOP, ns, rows.get(field["name"]))
    source.emit(TOP, f"p += {int(hash_type['size'])}  # the hash: checked by chain.hash_ok")
    source.emit(TOP, f"return envelope, {source.build_row(binding.cls, values)}, p")
    return source.build("decode_domain", "data", ("BOOLEANS", BOOLEANS))


def domain_decoder(text: str, binding: Binding) -> Callable[[bytes], tuple[Envelope, Any, int]]:
    """``decode_domain(wire bytes) -> (Envelope, domain record, position after it)`` for
    bytes written with the schema ``text``; the domain record is not validated here."""
    decoder: Callable[[bytes], tuple[Envelope, Any, int]] = _domain_factory(text, binding)(b"")
    return decoder
