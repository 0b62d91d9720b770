"""Generated Avro encoders: a record dict, or a domain NamedTuple with envelope and hash.

The output is byte-identical to fastavro's ``schemaless_writer`` for the same record
(tests/schemas/test_compiled.py checks every subject with Hypothesis). The encoders check
what fastavro checks and a little more: a value of the wrong type, an int/long out of range,
an unknown enum symbol, a fixed of the wrong size all raise (``ValueError``, ``TypeError``,
``KeyError``, ``AttributeError``, ``OverflowError``), which the codec turns into CodecError.

Domain encoder (one per domain type), for ``Deposited``::

    (command_id, account_id, event_time_ns, asset, amount, postings) = obj
    buf = bytearray(HEADER)
    ... envelope fields, from ``EnvelopeFields`` + the record's name and time + prev_hash
    ... payload fields in schema order, rows (``Posting``) unpacked by position
    digest = sha256(prev_hash) + body so far      # the hash chain (chain.py)
    buf += digest; return Sealed(bytes(buf), digest)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from tradex.schemas import wire
from tradex.schemas.bindings import Binding
from tradex.schemas.chain import HASH_SIZE, HEADER_SIZE
from tradex.schemas.compile_base import Source, Unsupported, default_value
from tradex.schemas.envelope import RECORD_SIZE_MAX, EnvelopeFields, Sealed

COMPILED_MAX = 4_096  # cached compiled encoders (subjects x versions x domain types)
TOP = 1  # depth of the function body


def encoded_string(text: str) -> bytes:
    raw = text.encode()
    return wire.write_long(len(raw)) + raw


class _Writer(Source):
    def __init__(self, schema: Any) -> None:
        super().__init__(schema)
        self.reuse: set[str] = set()  # locals whose long encoding is kept for a second use
        self.memo: dict[tuple[str, str], str] = {}

    def write(self, schema: Any, v: str, depth: int, ns: str, row: type | None) -> None:
        """Append the encoding of local ``v`` (of type ``schema``) to ``buf``. ``row``: the
        NamedTuple class that stands for a record here (None: a dict)."""
        schema, ns = self.resolve(schema, ns)
        if isinstance(schema, str):
            self.primitive(schema, v, depth)
        elif isinstance(schema, list):
            null_index, other_index, other = self.null_union(schema, ns)
            self.emit(depth, f"if {v} is None:")
            self.emit(depth + 1, f"buf += {self.const(wire.ZIGZAG[2 * null_index])}")
            self.emit(depth, "else:")
            self.emit(depth + 1, f"buf += {self.const(wire.ZIGZAG[2 * other_index])}")
            self.write(other, v, depth + 1, ns, row)
        elif schema["type"] in ("record", "error"):
            name = self.enter(schema, ns)
            if row is None:
                sources = {}
                for field in schema["fields"]:
                    x = sources[field["name"]] = self.fresh("x")
                    key = repr(field["name"])
                    if "default" in field:
                        value = default_value(field, self.resolve(field["type"], ns)[0])
                        self.emit(depth, f"{x} = {v}.get({key}, {self.const(value)})")
                    else:  # like fastavro: a missing field is None (valid for a null union)
                        self.emit(depth, f"{x} = {v}.get({key})")
                self.fields(schema["fields"], sources, depth, ns, {})
            else:
                sources = {f: self.fresh("x") for f in row._fields}  # type: ignore[attr-defined]
                self.emit(depth, f"({', '.join(sources.values())},) = {v}")
                self.fields(schema["fields"], sources, depth, ns, {})
            self.active.discard(name)
        elif schema["type"] == "enum":
            table = {s: wire.ZIGZAG[2 * i] for i, s in enumerate(schema["symbols"])}
            k, e = self.const(table), self.fresh("e")
            self.emit(depth, f"{e} = {k}.get({v})")
            self.emit(depth, f"if {e} is None:")  # a str subclass whose hash is not its value's
            self.emit(depth + 1, f"{e} = {k}[str.__str__({v})]")
            self.emit(depth, f"buf += {e}")
        elif schema["type"] == "fixed":
            size = int(schema["size"])
            self.emit(depth, f"if len({v}) != {size}:")
            message = f"f'fixed {schema['name']} needs {size} bytes, got {{len({v})}}'"
            self.emit(depth + 1, f"raise ValueError({message})")
            self.emit(depth, f"buf += {v}")
        elif schema["type"] in ("array", "map"):
            self.sequence(schema, v, depth, ns, row)
        else:
            raise Unsupported(f"type {schema['type']!r}")

    def sequence(self, schema: dict[str, Any], v: str, depth: int, ns: str, row: Any) -> None:
        """One block (count, items) then the 0 terminator; nothing but 0 when empty."""
        n, item = self.fresh("n"), self.fresh("i")
        self.emit(depth, f"{n} = len({v})")
        self.emit(depth, f"if {n}:")
        self.emit(depth + 1, f"buf += LENGTH[{n}] if {n} < LENGTH_TABLE_SIZE else write_long({n})")
        if schema["type"] == "array":
            self.emit(depth + 1, f"for {item} in {v}:")
            lines = len(self.lines)
            self.write(schema["items"], item, depth + 2, ns, row)
            if len(self.lines) == lines:  # items that take no bytes (null)
                self.emit(depth + 2, "pass")
        else:
            key = self.fresh("k")
            self.emit(depth + 1, f"for {key}, {item} in {v}.items():")
            self.primitive("string", key, depth + 2)
            self.write(schema["values"], item, depth + 2, ns, None)
        self.emit(depth, "buf += B0")

    def fields(
        self,
        fields: list[dict[str, Any]],
        sources: dict[str, str],
        depth: int,
        ns: str,
        rows: dict[str, type],
    ) -> None:
        """Write ``fields`` from the locals in ``sources`` (a missing one: its default)."""
        for field in fields:
            name = field["name"]
            v = sources.get(name)
            if v is None:
                if "default" not in field:
                    raise Unsupported(f"no value and no default for field {name}")
                v = self.const(default_value(field, self.resolve(field["type"], ns)[0]))
            self.write(field["type"], v, depth, ns, rows.get(name))

    def primitive(self, kind: str, v: str, depth: int) -> None:
        emit = self.emit
        if kind in ("int", "long"):
            key = (v, kind)
            if depth == TOP and key in self.memo:
                emit(depth, f"buf += {self.memo[key]}")
                return
            slow = "write_long" if kind == "long" else "write_int"
            emit(depth, f"z = ({v} << 1) ^ ({v} >> 63)")
            if depth == TOP and v in self.reuse:  # kept for a second use
                encoded = self.memo[key] = self.fresh("enc")
                emit(depth, f"{encoded} = ZIGZAG[z] if z < ZIGZAG_TABLE_SIZE else {slow}({v})")
                emit(depth, f"buf += {encoded}")
                return
            # 1-2 bytes: one table entry; 3-4 bytes: two (in range of int and long alike)
            emit(depth, "if z < ZIGZAG_TABLE_SIZE:")
            emit(depth + 1, "buf += ZIGZAG[z]")
            emit(depth, "elif z < TWO_GROUPS_MAX:")
            emit(depth + 1, "buf += GROUP[z & 0x3FFF]")
            emit(depth + 1, "buf += ZIGZAG[z >> 14]")
            emit(depth, "else:")
            emit(depth + 1, f"buf += {slow}({v})")
        elif kind == "string":
            if isinstance(self.consts.get(v), str):
                emit(depth, f"buf += {self.const(encoded_string(self.consts[v]))}")
                return
            emit(depth, f"b = {v}.encode()")
            emit(depth, "n = len(b)")
            emit(depth, "buf += LENGTH[n] if n < LENGTH_TABLE_SIZE else write_long(n)")
            emit(depth, "buf += b")
        elif kind == "bytes":
            emit(depth, f"n = len({v})")
            emit(depth, "buf += LENGTH[n] if n < LENGTH_TABLE_SIZE else write_long(n)")
            emit(depth, f"buf += {v}")
        elif kind == "boolean":
            emit(depth, f"buf += B1 if {v} else B0")
        elif kind == "float":
            emit(depth, f"buf += PACK_FLOAT({v})")
        elif kind == "double":
            emit(depth, f"buf += PACK_DOUBLE({v})")
        else:
            assert kind == "null", kind


@lru_cache(maxsize=COMPILED_MAX)
def _dict_factory(text: str) -> Any:
    schema = json.loads(text)
    source = _Writer(schema)
    source.emit(TOP, "buf = bytearray(HEADER)")
    source.write(schema, "record", TOP, "", None)
    source.emit(TOP, "return bytes(buf)")
    return source.build("encode", "record")


def dict_encoder(text: str, header: bytes) -> Callable[[dict[str, Any]], bytes]:
    """``encode(record) -> wire bytes`` (header + body) for the schema ``text``."""
    encoder: Callable[[dict[str, Any]], bytes] = _dict_factory(text)(header)
    return encoder


# Envelope field -> where its value comes from in the domain encoder.
ENVELOPE_SOURCES = {
    **{name: f"env_{name}" for name in EnvelopeFields._fields},
    "event_time_ns": "obj_event_time_ns",
    "prev_hash": "prev_hash",
}


@lru_cache(maxsize=COMPILED_MAX)
def _domain_factory(text: str, binding: Binding) -> Any:
    schema = json.loads(text)
    source = _Writer(schema)
    fields = schema["fields"]
    if fields[0]["name"] != "envelope" or fields[-1]["name"] != "hash":
        raise Unsupported("not an envelope ... hash record")
    hash_type, _ = source.resolve(fields[-1]["type"], "")
    if not isinstance(hash_type, dict) or hash_type.get("size") != HASH_SIZE:
        raise Unsupported("hash is not a fixed of HASH_SIZE bytes")
    if "event_time_ns" not in binding.fields:
        raise Unsupported(f"{binding.cls.__name__} has no event_time_ns")
    envelope, env_ns = source.resolve(fields[0]["type"], schema.get("namespace", ""))
    if not isinstance(envelope, dict) or envelope["type"] != "record":
        raise Unsupported("envelope is not a record")
    emit = source.emit
    emit(TOP, f"({', '.join('obj_' + f for f in binding.fields)},) = obj")
    emit(TOP, f"({', '.join('env_' + f for f in EnvelopeFields._fields)},) = fields")
    emit(TOP, f"if len(prev_hash) != {HASH_SIZE}:")
    emit(TOP + 1, f"raise ValueError('prev_hash must be {HASH_SIZE} bytes')")
    emit(TOP, "buf = bytearray(HEADER)")
    source.reuse.add("obj_event_time_ns")
    env_sources = {**ENVELOPE_SOURCES, "type": source.const(binding.cls.__name__)}
    name = source.enter(envelope, env_ns)
    source.fields(envelope["fields"], env_sources, TOP, env_ns, {})
    source.active.discard(name)
    rows = {name: row for _, name, row in binding.row_fields + binding.list_fields}
    payload = {name: f"obj_{name}" for name in binding.fields}
    source.fields(fields[1:-1], payload, TOP, schema.get("namespace", ""), rows)
    emit(TOP, "if len(buf) > RECORD_SIZE_MAX:")
    emit(TOP + 1, "raise ValueError(f'{len(buf)} bytes exceeds RECORD_SIZE_MAX')")
    emit(TOP, f"digest = sha256(prev_hash + buf[{HEADER_SIZE}:]).digest()  # chain.record_hash")
    emit(TOP, "buf += digest")
    emit(TOP, "return TUPLE_NEW(Sealed, (bytes(buf), digest))")
    extra = (("Sealed", Sealed), ("RECORD_SIZE_MAX", RECORD_SIZE_MAX))
    return source.build("encode_domain", "obj, fields, prev_hash", *extra)


def domain_encoder(text: str, binding: Binding, header: bytes) -> Callable[..., Sealed]:
    """``encode_domain(obj, fields: EnvelopeFields, prev_hash) -> Sealed`` for the domain
    type of ``binding`` written with the schema ``text`` (the hash chain included)."""
    encoder: Callable[..., Sealed] = _domain_factory(text, binding)(header)
    return encoder
