"""The packer of account channel entries (:mod:`.market_accounts`), in C
(``_native/entries_native.c``): msgpack arrays ``[type, field…, [[asset, available, held],
…]]`` written straight from columns, byte for byte what ``msgpack.Packer().pack`` writes for
the same Python values (ints and ``str``: ``tests/projections/test_entry_kernel.py``
compares them over every size class), and the batch script's ``xadd`` ops around them.

Inputs, all numpy arrays of int64 (the pool: uint8) — no Python object per entry:

- ``pool``: every string the entries hold (type names, string fields, asset codes); a
  string is a ``[start, end)`` range of it;
- per entry ``i``: ``kind_row[i]`` (the row of ``kinds`` and of ``names`` for its type),
  ``value_a[i, f]`` / ``value_b[i, f]``: field ``f``'s int (``a``) or string range
  (``a``, ``b``); ``after_begin[i]``, ``after_end[i]``: its balances, rows of
  ``after_start``/``after_end_at`` (the asset's range), ``after_available``, ``after_held``;
- ``kinds[t, f]``: :data:`FIELD_INT`, :data:`FIELD_STR` or :data:`FIELD_NONE` (past the
  type's last field); ``names[t]``: the type name's range.

The C side checks every index against its buffer (``ValueError``); this side the dtypes.
"""

from __future__ import annotations

import numpy as np

from tradex.projections import _entries_native as native

FIELD_NONE = 0
FIELD_INT = 1
FIELD_STR = 2


def _int64(*arrays: np.ndarray) -> None:
    for array in arrays:
        assert array.dtype == np.int64, array.dtype
        assert array.flags.c_contiguous, "a contiguous array"


def pack_entries(
    pool: np.ndarray,
    kinds: np.ndarray,
    names: np.ndarray,
    kind_row: np.ndarray,
    value_a: np.ndarray,
    value_b: np.ndarray,
    after_begin: np.ndarray,
    after_end: np.ndarray,
    after_start: np.ndarray,
    after_end_at: np.ndarray,
    after_available: np.ndarray,
    after_held: np.ndarray,
) -> tuple[bytes, np.ndarray]:
    """The entries, one after the other, and their ``n + 1`` offsets."""
    assert pool.dtype == np.uint8, pool.dtype
    assert kinds.ndim == 2, kinds.shape
    assert value_a.shape == value_b.shape == (len(kind_row), kinds.shape[1]), value_a.shape
    assert names.shape == (len(kinds), 2), names.shape
    _int64(kinds, names, kind_row, value_a, value_b, after_begin, after_end)
    _int64(after_start, after_end_at, after_available, after_held)
    data, offsets = native.pack_entries(
        pool, kinds, names, kind_row, value_a, value_b, after_begin, after_end, after_start,
        after_end_at, after_available, after_held, kinds.shape[1],
    )  # fmt: skip
    return data, np.frombuffer(offsets, np.int64)


def pack_stream_ops(
    entries: bytes,
    entry_offsets: np.ndarray,
    seq: np.ndarray,
    pool: np.ndarray,
    op_name: np.ndarray,
    stream_key: np.ndarray,
    stream_trim: np.ndarray,
    stream_count: np.ndarray,
) -> bytes:
    """The batch script's ``xadd`` ops (:class:`.redis_store.Ops`), msgpack, one after the
    other: per stream ``s``, ``["xadd", key, trim, id, entry, …]`` with its
    ``stream_count[s]`` entries (the next ones of ``entries``, ids ``<seq>-0``); ``key``
    and ``trim`` are pool ranges (``stream_key[s]``, ``stream_trim[s]``)."""
    assert pool.dtype == np.uint8, pool.dtype
    assert stream_key.shape == stream_trim.shape == (len(stream_count), 2), stream_key.shape
    _int64(entry_offsets, seq, op_name, stream_key, stream_trim, stream_count)
    ops: bytes = native.pack_stream_ops(
        entries, entry_offsets, seq, pool, op_name, stream_key, stream_trim, stream_count
    )
    return ops
