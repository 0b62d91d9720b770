"""Programs for the C codec (``tradex.schemas._native_codec``, source in ``_native/``).

The C extension interprets a tree of op tuples; this module builds that tree from one
subject's schema and a domain binding, the same walk the Python compilers
(:mod:`.compile_writer`, :mod:`.compile_reader`) do, and hands it to
``Program.encoder`` / ``Program.decoder`` once at start-up. The result has the signature
of the Python twin:

    encode_domain(obj, fields: EnvelopeFields, prev_hash) -> Sealed     # hash chain included
    decode_domain(data: bytes) -> (Envelope, record, end)               # not validated

Op tuple: ``(code, src, index, arg, flag, obj, child, slots)`` (documented in the C file).
Handled: null, boolean, int, long, string, bytes, fixed, enum, ``[null, X]`` unions,
records that are domain rows (NamedTuples), arrays. Anything else (maps, float/double,
records read as dicts, other unions) raises :class:`Unsupported` and the codec keeps the
Python twin for that subject.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tradex.schemas import _native_codec as native
from tradex.schemas.bindings import Binding
from tradex.schemas.chain import HASH_SIZE
from tradex.schemas.compile_base import Source, Unsupported, default_value
from tradex.schemas.compile_reader import min_size
from tradex.schemas.envelope import RECORD_SIZE_MAX, Envelope, EnvelopeFields, Sealed

OP_NULL, OP_BOOLEAN, OP_INT, OP_LONG, OP_STRING, OP_BYTES = 0, 1, 2, 3, 4, 5
OP_FIXED, OP_ENUM, OP_UNION, OP_RECORD, OP_ARRAY = 6, 7, 8, 9, 10
SRC_ROW, SRC_FIELDS, SRC_PREV_HASH, SRC_CONST, SRC_SELF = 0, 1, 2, 3, 4
PRIMITIVE_OPS = {
    "null": OP_NULL,
    "boolean": OP_BOOLEAN,
    "int": OP_INT,
    "long": OP_LONG,
    "string": OP_STRING,
    "bytes": OP_BYTES,
}
assert native.RECORD_SIZE_MAX == RECORD_SIZE_MAX, "the C codec's RECORD_SIZE_MAX differs"

Op = tuple[int, int, int, int, int, Any, "tuple[Any, ...] | None", int]


def _op(code: int, src: int, index: int, *, arg: int = 0, flag: int = 0, obj: Any = None,
        child: tuple[Op, ...] | None = None, slots: int = 0) -> Op:  # fmt: skip
    return (code, src, index, arg, flag, obj, child, slots)


class _Writer(Source):
    def op(self, schema: Any, ns: str, src: int, index: int, const: Any, row: Any) -> Op:
        """The op writing a value of ``schema`` read from ``src``/``index`` (``const``: the
        value when ``src`` is SRC_CONST). ``row``: the NamedTuple standing for a record."""
        schema, ns = self.resolve(schema, ns)
        if isinstance(schema, str):
            code = PRIMITIVE_OPS.get(schema)
            if code is None:
                raise Unsupported(f"type {schema!r} in the C codec")
            return _op(code, src, index, obj=const)
        if isinstance(schema, list):
            null_index, _other_index, other = self.null_union(schema, ns)
            child = (self.op(other, ns, SRC_SELF, 0, None, row),)
            return _op(OP_UNION, src, index, arg=null_index, obj=const, child=child)
        kind = schema["type"]
        if kind in ("record", "error"):
            if row is None:
                raise Unsupported("a record without a row type (a dict) in the C codec")
            name = self.enter(schema, ns)
            fields: tuple[str, ...] = row._fields
            ops = []
            for field in schema["fields"]:
                if field["name"] in fields:
                    ops.append(
                        self.op(field["type"], ns, SRC_ROW, fields.index(field["name"]), None, None)
                    )
                else:
                    ops.append(self.default(field, ns))
            self.active.discard(name)
            return _op(OP_RECORD, src, index, obj=const, child=tuple(ops), slots=len(fields))
        if kind == "enum":
            table = {symbol: i for i, symbol in enumerate(schema["symbols"])}
            if const is not None:
                raise Unsupported("an enum default in the C codec")
            return _op(OP_ENUM, src, index, arg=len(table), obj=table)
        if kind == "fixed":
            return _op(OP_FIXED, src, index, arg=int(schema["size"]), obj=const)
        if kind == "array":
            child = (self.op(schema["items"], ns, SRC_SELF, 0, None, row),)
            return _op(OP_ARRAY, src, index, obj=const, child=child)
        raise Unsupported(f"type {kind!r} in the C codec")

    def default(self, field: dict[str, Any], ns: str) -> Op:
        if "default" not in field:
            raise Unsupported(f"no value and no default for field {field['name']}")
        kind = self.resolve(field["type"], ns)[0]
        if not isinstance(kind, str) or kind == "null":
            raise Unsupported(f"a default of a complex type ({field['name']}) in the C codec")
        return self.op(field["type"], ns, SRC_CONST, 0, default_value(field, kind), None)


def envelope_source(name: str, binding: Binding) -> tuple[int, int, Any] | None:
    """Where the domain encoder takes envelope field ``name`` from (None: its default)."""
    if name in EnvelopeFields._fields:
        return SRC_FIELDS, EnvelopeFields._fields.index(name), None
    if name == "event_time_ns":
        return SRC_ROW, binding.fields.index("event_time_ns"), None
    if name == "prev_hash":
        return SRC_PREV_HASH, 0, None
    if name == "type":
        return SRC_CONST, 0, binding.cls.__name__
    return None


def _check_envelope_record(source: Source, schema: dict[str, Any], binding: Binding) -> None:
    fields = schema["fields"]
    if fields[0]["name"] != "envelope" or fields[-1]["name"] != "hash":
        raise Unsupported("not an envelope ... hash record")
    hash_type, _ = source.resolve(fields[-1]["type"], schema.get("namespace", ""))
    if not isinstance(hash_type, dict) or hash_type.get("type") != "fixed":
        raise Unsupported("hash is not a fixed")
    if hash_type.get("size") != HASH_SIZE:
        raise Unsupported("hash is not a fixed of HASH_SIZE bytes")
    if "event_time_ns" not in binding.fields:
        raise Unsupported(f"{binding.cls.__name__} has no event_time_ns")


def encoder_ops(text: str, binding: Binding) -> tuple[Op, ...]:
    schema = json.loads(text)
    source = _Writer(schema)
    _check_envelope_record(source, schema, binding)
    ns = schema.get("namespace", "")
    envelope, env_ns = source.resolve(schema["fields"][0]["type"], ns)
    if not isinstance(envelope, dict) or envelope["type"] != "record":
        raise Unsupported("envelope is not a record")
    ops: list[Op] = []
    name = source.enter(envelope, env_ns)
    for field in envelope["fields"]:
        where = envelope_source(field["name"], binding)
        if where is None:
            ops.append(source.default(field, env_ns))
        else:
            src, index, const = where
            ops.append(source.op(field["type"], env_ns, src, index, const, None))
    source.active.discard(name)
    rows = {name: row for _, name, row in binding.row_fields + binding.list_fields}
    for field in schema["fields"][1:-1]:
        if field["name"] in binding.fields:
            index = binding.fields.index(field["name"])
            ops.append(source.op(field["type"], ns, SRC_ROW, index, None, rows.get(field["name"])))
        else:
            ops.append(source.default(field, ns))
    return tuple(ops)


def domain_program(text: str, binding: Binding, header: bytes) -> native.Program:
    """The C encoder of ``binding``'s type: ``encode_domain(obj, fields, prev_hash) ->
    Sealed`` and ``encode_append(outputs, output_type, topic, key, partition, obj,
    prev_hash, *fields) -> hash`` (see :meth:`tradex.schemas.codec.Codec.appender`)."""
    ops = encoder_ops(text, binding)
    return native.Program.encoder(
        ops, len(binding.fields), len(EnvelopeFields._fields), header, Sealed
    )


def domain_encoder(text: str, binding: Binding, header: bytes) -> Callable[..., Sealed]:
    """The C ``encode_domain(obj, fields, prev_hash) -> Sealed`` of ``binding``'s type."""
    encode: Callable[..., Sealed] = domain_program(text, binding, header).encode_domain
    return encode


class _Reader(Source):
    def op(self, schema: Any, ns: str, slot: int, row: Any) -> Op:
        """The op reading a value of ``schema`` into ``slot`` (-1: dropped)."""
        schema, ns = self.resolve(schema, ns)
        if isinstance(schema, str):
            code = PRIMITIVE_OPS.get(schema)
            if code is None:
                raise Unsupported(f"type {schema!r} in the C codec")
            return _op(code, 0, slot)
        if isinstance(schema, list):
            null_index, _other_index, other = self.null_union(schema, ns)
            return _op(OP_UNION, 0, slot, arg=null_index, child=(self.op(other, ns, 0, row),))
        kind = schema["type"]
        if kind in ("record", "error"):
            if row is None:
                raise Unsupported("a record without a row type (a dict) in the C codec")
            name = self.enter(schema, ns)
            fields: tuple[str, ...] = row._fields
            in_schema = {field["name"] for field in schema["fields"]}
            missing = [f for f in fields if f not in in_schema]
            if missing:
                raise Unsupported(f"{row.__name__} fields {missing} are not in the schema")
            ops = tuple(
                self.op(f["type"], ns, fields.index(f["name"]) if f["name"] in fields else -1, None)
                for f in schema["fields"]
            )
            self.active.discard(name)
            return _op(OP_RECORD, 0, slot, obj=row, child=ops, slots=len(fields))
        if kind == "enum":
            symbols = tuple(schema["symbols"])
            return _op(OP_ENUM, 0, slot, arg=len(symbols), obj=symbols)
        if kind == "fixed":
            return _op(OP_FIXED, 0, slot, arg=int(schema["size"]))
        if kind == "array":
            item = (self.op(schema["items"], ns, 0, row),)
            sized = 1 if min_size(self, schema["items"], ns) else 0
            return _op(OP_ARRAY, 0, slot, arg=sized, flag=int(row is not None), child=item)
        raise Unsupported(f"type {kind!r} in the C codec")


def decoder_ops(text: str, binding: Binding) -> tuple[Op, ...]:
    """Slot 0: the envelope; slot 1 + i: field i of the domain type; the hash is dropped."""
    schema = json.loads(text)
    source = _Reader(schema)
    _check_envelope_record(source, schema, binding)
    ns = schema.get("namespace", "")
    payload = schema["fields"][1:-1]
    missing = [f for f in binding.fields if f not in {field["name"] for field in payload}]
    if missing:
        raise Unsupported(f"{binding.cls.__name__} fields {missing} are not in the schema")
    rows = {name: row for _, name, row in binding.row_fields + binding.list_fields}
    ops = [source.op(schema["fields"][0]["type"], ns, 0, Envelope)]
    for field in payload:
        name = field["name"]
        slot = 1 + binding.fields.index(name) if name in binding.fields else -1
        ops.append(source.op(field["type"], ns, slot, rows.get(name)))
    ops.append(source.op(schema["fields"][-1]["type"], ns, -1, None))
    return tuple(ops)


def enum_symbols(text: str, binding: Binding) -> dict[str, tuple[str, ...]]:
    """The symbols of each enum field of the payload, in wire order (index -> symbol): what
    a scan through ``codec_api.h`` reads as an index."""
    ops = decoder_ops(text, binding)
    found: dict[str, tuple[str, ...]] = {}
    for op in ops[1:-1]:
        code, _src, slot, _arg, _flag, obj = op[:6]
        if code == OP_ENUM and slot > 0:
            found[binding.fields[slot - 1]] = tuple(obj)
    return found


def domain_decoder(text: str, binding: Binding) -> Callable[[bytes], tuple[Envelope, Any, int]]:
    """The C ``decode_domain(data) -> (Envelope, record, end)`` of ``binding``'s type."""
    program = native.Program.decoder(decoder_ops(text, binding), len(binding.fields), binding.cls)
    decode: Callable[[bytes], tuple[Envelope, Any, int]] = program.decode_domain
    return decode


def readers(
    codec_error: type[Exception],
    validate_errors: tuple[type[Exception], ...],
    fallback: Callable[[bytes], tuple[Envelope, Any]],
) -> native.Readers:
    """The C ``decode_domain`` table (``Readers.add(wire_id, program, subject, name,
    validate)`` per subject): bytes it serves are decoded, framed, end-checked and
    validated in one call, failures raised as ``codec_error``; the rest go to ``fallback``."""
    return native.Readers(codec_error, validate_errors, fallback)
