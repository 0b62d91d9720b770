"""A batch of wire records decoded into columns per record type, in C.

    reader = ColumnReader(codec, {Trade: ColumnSpec(), FillSettled: ColumnSpec()},
                          ignored=(RulesApplied,))
    decoded = reader.decode(values, value_offsets)       # a RecordBatch's buffers
    trades = decoded.types[Trade]
    trades.rows                # int32: where each Trade is in the batch
    trades["price"]            # numpy int64 column
    trades["taker_side"]       # Enum: int8 codes + the schema's symbols
    trades["envelope.event_id"]  # Strings: Arrow-style int64 offsets + UTF-8 bytes
    fills = decoded.types[FillSettled]
    fills.items["postings"]    # Items: parent row, index in its array, and its columns
    decoded.status             # uint8 per record: STATUS_DECODED, _FLAGGED, _IGNORED, ...

A record of a type asked for decodes into its type's columns exactly when
``Codec.decode_domain`` decodes it (same bounds checks, same end check: see
``_native/columns.c``); the checks ``validate()`` makes (:mod:`.column_checks`) run on the
values, and a record failing one is decoded but *flagged*: the caller re-checks it with
``decode_domain`` (which raises the usual ``CodecError``, or accepts it). Records the
reader does not serve (another type, an older schema version, bad framing) are
``STATUS_UNSERVED``, corrupt ones ``STATUS_CORRUPT`` (in no column); the caller decodes
those one by one as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tradex.schemas import _native_codec as native
from tradex.schemas.bindings import BINDINGS
from tradex.schemas.codec import Codec
from tradex.schemas.column_checks import CHECKS
from tradex.schemas.compile_columns import ENVELOPE, ColumnProgram, Leaf, column_program
from tradex.schemas.compile_native import OP_BOOLEAN, OP_ENUM, OP_FIXED, OP_INT, OP_LONG, OP_STRING
from tradex.schemas.envelope import Envelope

STATUS_DECODED: int = native.STATUS_DECODED  # in its type's columns, every check passed
STATUS_FLAGGED: int = native.STATUS_FLAGGED  # in its type's columns; a validate() check failed
STATUS_SKIPPED: int = native.STATUS_SKIPPED  # the caller asked to skip it
STATUS_IGNORED: int = native.STATUS_IGNORED  # a type (any version) the caller ignores
STATUS_UNSERVED: int = native.STATUS_UNSERVED  # not a type and version served here
STATUS_CORRUPT: int = native.STATUS_CORRUPT  # served, but does not decode: in no column

# String values dictionary-encoded unless a spec says otherwise: few distinct values.
LOW_CARDINALITY = frozenset((
    "asset", "hold_asset", "base_asset", "quote_asset", "postings.asset", "detail", "request",
    "command_type", "symbol", "base", "quote", "code", "asset.code", "instrument.symbol",
    "instrument.base", "instrument.quote", "envelope.type", "envelope.producer",
))  # fmt: skip
ENVELOPE_DEFAULT = frozenset(("event_id", "event_time_ns", "seq"))


@dataclass(frozen=True)
class ColumnSpec:
    """Which values of a record type get a column (the rest are read and dropped)."""

    fields: frozenset[str] | None = None  # payload values by dotted name; None: every one
    envelope: frozenset[str] = ENVELOPE_DEFAULT  # envelope fields wanted
    dictionary: frozenset[str] = LOW_CARDINALITY  # strings given as Dictionary

    def wants(self, leaf: Leaf) -> bool:
        if leaf.name.startswith(f"{ENVELOPE}."):
            return leaf.name[len(ENVELOPE) + 1 :] in self.envelope
        return self.fields is None or leaf.name in self.fields


EVERYTHING = ColumnSpec(envelope=frozenset(Envelope._fields))


# -- columns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strings:
    """Strings (or bytes) Arrow-style: item i is data[offsets[i]:offsets[i + 1]]."""

    offsets: np.ndarray  # int64, n + 1
    data: bytes
    text: bool = True  # str (UTF-8); False: bytes

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def to_pylist(self) -> list[Any]:
        view = memoryview(self.data)
        ends = self.offsets.tolist()
        items = [bytes(view[ends[i] : ends[i + 1]]) for i in range(len(ends) - 1)]
        return [item.decode() for item in items] if self.text else items

    def arrow(self) -> pa.Array:
        kind = pa.large_string() if self.text else pa.large_binary()
        buffers = [None, pa.py_buffer(self.offsets), pa.py_buffer(self.data)]
        return pa.Array.from_buffers(kind, len(self), buffers)

    def take(self, rows: np.ndarray) -> Strings:
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(ends - starts, out=offsets[1:])
        view = memoryview(self.data)
        pieces = (view[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True))
        return Strings(offsets, b"".join(pieces), self.text)


@dataclass(frozen=True)
class Dictionary:
    """Dictionary-encoded strings: item i is values[codes[i]]."""

    codes: np.ndarray  # int32
    values: Strings

    def __len__(self) -> int:
        return len(self.codes)

    def to_pylist(self) -> list[Any]:
        values = self.values.to_pylist()
        return [values[code] for code in self.codes.tolist()]

    def arrow(self) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(self.codes, self.values.arrow().cast(pa.string()))

    def take(self, rows: np.ndarray) -> Dictionary:
        return Dictionary(self.codes[rows], self.values)


@dataclass(frozen=True)
class Enum:
    """Enum symbols as their index in the schema's symbols."""

    codes: np.ndarray  # int8 or int16
    symbols: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.codes)

    def to_pylist(self) -> list[str]:
        return [self.symbols[code] for code in self.codes.tolist()]

    def arrow(self) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(
            self.codes.astype(np.int32), pa.array(self.symbols, pa.string())
        )

    def code(self, symbol: str) -> int:
        """The code of ``symbol`` (-1: not a symbol of this enum)."""
        return self.symbols.index(symbol) if symbol in self.symbols else -1

    def take(self, rows: np.ndarray) -> Enum:
        return Enum(self.codes[rows], self.symbols)


Column = np.ndarray | Strings | Dictionary | Enum


def to_pylist(column: Column) -> list[Any]:
    if isinstance(column, np.ndarray):
        if column.ndim == 2:  # fixed bytes
            return [bytes(row) for row in column]
        return column.tolist()
    return column.to_pylist()


def take(column: Column, rows: np.ndarray) -> Column:
    return column[rows] if isinstance(column, np.ndarray) else column.take(rows)


@dataclass(frozen=True)
class Items:
    """The items of one array field of every record of a type (e.g. journal postings)."""

    parent: np.ndarray  # int32: the record (row of its type) the item belongs to
    index: np.ndarray  # int32: its index in that record's array
    values: dict[str, Column]  # by dotted name ("postings.asset")

    def __getitem__(self, name: str) -> Column:
        return self.values[name]

    def __len__(self) -> int:
        return len(self.parent)


@dataclass(frozen=True)
class TypeColumns:
    """The records of one type in a batch, a column per value wanted."""

    cls: type
    rows: np.ndarray  # int32: the batch index of each record
    values: dict[str, Column]  # by dotted name
    items: dict[str, Items] = field(default_factory=dict)  # by array name

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> Column:
        return self.values[name]

    def select(self, keep: np.ndarray) -> TypeColumns:
        """The records where ``keep`` (bool per record of this type) is true."""
        assert keep.dtype == np.bool_ and len(keep) == len(self), (keep.dtype, len(keep))
        rows = np.flatnonzero(keep)
        renumber = np.cumsum(keep) - 1
        items = {}
        for name, found in self.items.items():
            kept = keep[found.parent]
            at = np.flatnonzero(kept)
            items[name] = Items(
                renumber[found.parent[at]].astype(np.int32), found.index[at],
                {n: take(c, at) for n, c in found.values.items()},
            )  # fmt: skip
        values = {name: take(column, rows) for name, column in self.values.items()}
        return TypeColumns(self.cls, self.rows[rows], values, items)

    def records(self) -> list[tuple[Envelope | None, Any]]:
        """Each record as ``decode_domain`` gives it (the slow twin, for tests): needs every
        value of the domain type (``EVERYTHING`` for the envelope too, else None)."""
        binding = BINDINGS[self.cls.__name__]
        lists = {name: to_pylist(column) for name, column in self.values.items()}
        rows: dict[str, Any] = {name: row for _, name, row in binding.row_fields}
        arrays: dict[str, Any] = {name: row for _, name, row in binding.list_fields}
        grouped: dict[str, list[list[Any]]] = {}
        for name, row_type in arrays.items():
            found = self.items[name]
            item_lists = [to_pylist(found.values[f"{name}.{f}"]) for f in row_type._fields]
            per_record: list[list[Any]] = [[] for _ in range(len(self))]
            for j, parent in enumerate(found.parent.tolist()):
                per_record[parent].append(row_type(*[values[j] for values in item_lists]))
            grouped[name] = per_record
        whole_envelope = all(f"{ENVELOPE}.{f}" in lists for f in Envelope._fields)
        out: list[tuple[Envelope | None, Any]] = []
        for i in range(len(self)):
            fields = []
            for name in binding.fields:
                if name in rows:
                    row_type = rows[name]
                    fields.append(row_type(*[lists[f"{name}.{f}"][i] for f in row_type._fields]))
                elif name in arrays:
                    fields.append(tuple(grouped[name][i]))
                else:
                    fields.append(lists[name][i])
            envelope = (
                Envelope(*[lists[f"{ENVELOPE}.{f}"][i] for f in Envelope._fields])
                if whole_envelope
                else None
            )
            out.append((envelope, self.cls(*fields)))
        return out


@dataclass(frozen=True)
class DecodedBatch:
    status: np.ndarray  # uint8 per record of the batch (STATUS_*)
    types: dict[type, TypeColumns]  # the types with at least one record here


# -- the reader --------------------------------------------------------------------------------


def _column(leaf: Leaf, output: Any) -> Column:
    if isinstance(output, tuple) and len(output) == 2:
        return Strings(np.frombuffer(output[0], np.int64), output[1], leaf.code == OP_STRING)
    if isinstance(output, tuple):
        values = Strings(np.frombuffer(output[1], np.int64), output[2], leaf.code == OP_STRING)
        return Dictionary(np.frombuffer(output[0], np.int32), values)
    if leaf.code == OP_ENUM:
        width = np.int8 if leaf.arg <= 128 else np.int16
        return Enum(np.frombuffer(output, width), leaf.symbols)
    if leaf.code == OP_BOOLEAN:
        return np.frombuffer(output, np.bool_)
    if leaf.code == OP_FIXED:
        return np.frombuffer(output, np.uint8).reshape(-1, leaf.arg)
    assert leaf.code in (OP_INT, OP_LONG), leaf
    return np.frombuffer(output, np.int64 if leaf.code == OP_LONG else np.int32)


class ColumnReader:
    """Decodes batches of wire records of chosen domain types into columns (module doc)."""

    def __init__(
        self, codec: Codec, specs: Mapping[type, ColumnSpec], ignored: Iterable[type] = ()
    ) -> None:
        self._decoder = native.ColumnDecoder()
        self._programs: list[tuple[type, ColumnProgram]] = []
        ignored = tuple(ignored)
        assert not set(ignored) & set(specs), "a type both wanted and ignored"
        for cls, spec in specs.items():
            name = cls.__name__
            binding = BINDINGS[name]
            checks = CHECKS.get(name)
            if checks is None and hasattr(cls, "validate"):
                raise ValueError(f"{name}.validate() has no checks in column_checks.CHECKS")
            text = codec.registry.latest(codec.subject_of(name)).text
            program = column_program(text, binding, spec.wants, spec.dictionary, checks or ())
            wire_id = codec.schema_id(name)
            slot = self._decoder.add(
                (wire_id,), program.ops, program.columns, program.record_checks
            )
            assert slot == len(self._programs), slot
            self._programs.append((cls, program))
        for cls in ignored:
            for header in codec.headers_of(cls.__name__):
                self._decoder.ignore(int.from_bytes(header[1:5], "big"))

    def decode(
        self, values: bytes, offsets: np.ndarray, skip: np.ndarray | None = None
    ) -> DecodedBatch:
        """The records ``values[offsets[i]:offsets[i + 1]]`` (``skip``: bool per record, true
        for records not to look at) by type; see the module doc."""
        assert offsets.dtype == np.int64, offsets.dtype
        if skip is not None:
            assert skip.dtype == np.bool_ and len(skip) == len(offsets) - 1, skip.dtype
        status, outputs = self._decoder.decode(values, offsets, skip)
        types: dict[type, TypeColumns] = {}
        for (cls, program), output in zip(self._programs, outputs, strict=True):
            if output is None:
                continue
            rows, columns, levels = output
            level_values: list[dict[str, Column]] = [{} for _ in program.levels]
            for leaf in program.leaves:
                if leaf.column >= 0:
                    level_values[leaf.level][leaf.name] = _column(leaf, columns[leaf.column])
            items = {}
            for level, (parent, index) in enumerate(levels, start=1):
                items[program.levels[level].name] = Items(
                    np.frombuffer(parent, np.int32), np.frombuffer(index, np.int32),
                    level_values[level],
                )  # fmt: skip
            types[cls] = TypeColumns(cls, np.frombuffer(rows, np.int32), level_values[0], items)
        return DecodedBatch(np.frombuffer(status, np.uint8), types)
