"""Domain records rebuilt from a columnar batch, in log order, for folds written per record.

A read model whose fold is sequential per record (the ``redis`` model: books, channel
entries with the balances after each event) still gains from the columnar read: the
runner reads and decodes the batch in C (no ``Message``, ``LogRecord`` or per-record decode
call), and :func:`events_of` rebuilds the records the fold needs from the columns with
one C-level ``map`` per type — the same values ``Codec.decode_domain`` gives (ints, ``str``
for strings and enum symbols; an array such as the journal postings as a tuple of plain
tuples, equal to decode_domain's tuple of row records).
Types with nested records (reference data: rare) go through
:meth:`~tradex.schemas.columns.TypeColumns.records`, the columns' own slow twin. The
envelope is not rebuilt (``None``): folds that use these events do not read it.
"""

from __future__ import annotations

from itertools import islice, repeat
from typing import Any, cast

import numpy as np

from tradex.projections.projector import ColumnarBatch, Event
from tradex.schemas.bindings import BINDINGS
from tradex.schemas.columns import Dictionary, Enum, TypeColumns, to_pylist
from tradex.schemas.envelope import Envelope

_NO_ENVELOPE = cast(Envelope, None)


def _values(column: Any) -> list[Any]:
    if isinstance(column, Enum | Dictionary):
        return column.to_pylist()
    return to_pylist(column)


def _flat(columns: TypeColumns) -> list[Any] | None:
    """The records of a type whose values are all top-level columns or arrays of flat
    rows; None for any other shape (rebuilt by ``records()`` instead)."""
    cls: Any = columns.cls
    fields = cls._fields
    lists: list[list[Any]] = []
    for name in fields:
        if name in columns.values:
            column = columns.values[name]
            if isinstance(column, np.ndarray) and column.ndim != 1:
                return None
            lists.append(_values(column))
        elif name in columns.items:
            items = columns.items[name]
            row_names = [key.split(".", 1)[1] for key in items.values]
            row_type = _row_type(cls, name)
            if row_type is None or tuple(row_names) != row_type._fields:
                return None
            # plain tuples: equal to the row records decode_domain gives (tuple equality),
            # and what the folds unpack; the items come in record order
            per_item = iter(zip(*(_values(items.values[k]) for k in items.values), strict=True))
            parent = items.parent
            assert not len(parent) or bool((parent[1:] >= parent[:-1]).all()), "items out of order"
            counts = np.bincount(parent, minlength=len(columns)).tolist()
            lists.append([tuple(islice(per_item, count)) for count in counts])
        else:
            return None  # a nested record (e.g. reference data's instrument)
    if not fields:
        return [cls() for _ in range(len(columns))]
    return list(map(cls, *lists))


def _row_type(cls: Any, name: str) -> Any:
    binding = BINDINGS.get(cls.__name__)
    if binding is None:
        return None
    for _, field_name, row_type in binding.list_fields:
        if field_name == name:
            return row_type
    return None


def events_of(batch: ColumnarBatch) -> list[Event]:
    """The decoded records of ``batch`` as :class:`Event` in batch order (envelope None)."""
    records = batch.records
    slots: list[Any] = [None] * len(records)
    for columns in batch.types.values():
        bodies = _flat(columns)
        if bodies is None:
            bodies = [body for _envelope, body in columns.records()]
        for row, body in zip(columns.rows.tolist(), bodies, strict=True):
            slots[row] = body
    topics = records.topics
    topic_index = records.topic_index.tolist()
    partitions = records.partition.tolist()
    offsets = records.offset.tolist()
    kept = [i for i, body in enumerate(slots) if body is not None]
    names = [topics[topic_index[i]] for i in kept]
    return list(map(
        Event, names, [partitions[i] for i in kept], [offsets[i] for i in kept],
        repeat(_NO_ENVELOPE, len(kept)), [slots[i] for i in kept],
    ))  # fmt: skip


def bodies_of(batch: ColumnarBatch) -> list[Any]:
    """The decoded records of ``batch``, bodies only, in batch order: :func:`events_of`
    without the per-record topic, partition and offset (a fold that needs only the
    bodies; the batch's other records cost nothing here)."""
    rows: list[np.ndarray] = []
    bodies: list[Any] = []
    for columns in batch.types.values():
        found = _flat(columns)
        if found is None:
            found = [body for _envelope, body in columns.records()]
        assert len(found) == len(columns), columns.cls
        rows.append(columns.rows)
        bodies += found
    if not bodies:
        return []
    order = np.argsort(np.concatenate(rows), kind="stable").tolist()
    return [bodies[i] for i in order]
