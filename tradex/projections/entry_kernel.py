"""The jitted packer of account channel entries (:mod:`.market_accounts`): msgpack arrays
``[type, field…, [[asset, available, held], …]]`` written straight from columns, byte for
byte what ``msgpack.Packer().pack`` writes for the same Python values (ints and ``str``:
``tests/projections/test_entry_kernel.py`` compares them over every size class).

Inputs, all numpy arrays (no Python object):

- ``pool``: uint8, every string the entries hold (type names, string fields, asset codes);
  a string is a ``[start, end)`` range of it;
- per entry ``i``: ``kind_row[i]`` (the row of ``kinds`` and of ``names`` for its type),
  ``value_a[i, f]`` / ``value_b[i, f]``: field ``f``'s int (``a``) or string range
  (``a``, ``b``); ``after_begin[i]``, ``after_end[i]``: its balances, rows of
  ``after_start``/``after_end_at`` (the asset's range), ``after_available``, ``after_held``;
- ``kinds[t, f]``: ``FIELD_INT``, ``FIELD_STR`` or ``FIELD_NONE`` (past the type's last
  field); ``names[t]``: the type name's range.

Returns the entries as one buffer and ``n + 1`` offsets.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FIELD_NONE = 0
FIELD_INT = 1
FIELD_STR = 2
ENTRY_BYTES_MAX = 1 << 24  # one entry (asserted by the caller's sizes)


@njit(cache=True, inline="always")
def _int_size(x: int) -> int:
    if x < -32:
        if x < -32768:
            return 5 if x >= -2147483648 else 9
        return 2 if x >= -128 else 3
    if x < 128:
        return 1
    if x < 65536:
        return 2 if x < 256 else 3
    return 5 if x < 4294967296 else 9


@njit(cache=True, inline="always")
def _str_size(length: int) -> int:
    if length < 32:
        return 1 + length
    if length < 256:
        return 2 + length
    if length < 65536:
        return 3 + length
    return 5 + length


@njit(cache=True, inline="always")
def _array_size(count: int) -> int:
    if count < 16:
        return 1
    if count < 65536:
        return 3
    return 5


@njit(cache=True, inline="always")
def _put_be(out: np.ndarray, at: int, x: int, width: int) -> int:
    for k in range(width):
        out[at + k] = (x >> (8 * (width - 1 - k))) & 0xFF
    return at + width


@njit(cache=True, inline="always")
def _put_int(out: np.ndarray, at: int, x: int) -> int:
    if x < -32:
        if x < -32768:
            if x >= -2147483648:
                out[at] = 0xD2
                return _put_be(out, at + 1, x, 4)
            out[at] = 0xD3
            return _put_be(out, at + 1, x, 8)
        if x >= -128:
            out[at] = 0xD0
            return _put_be(out, at + 1, x, 1)
        out[at] = 0xD1
        return _put_be(out, at + 1, x, 2)
    if x < 0:
        out[at] = x & 0xFF  # negative fixint
        return at + 1
    if x < 128:
        out[at] = x
        return at + 1
    if x < 256:
        out[at] = 0xCC
        return _put_be(out, at + 1, x, 1)
    if x < 65536:
        out[at] = 0xCD
        return _put_be(out, at + 1, x, 2)
    if x < 4294967296:
        out[at] = 0xCE
        return _put_be(out, at + 1, x, 4)
    out[at] = 0xCF
    return _put_be(out, at + 1, x, 8)


@njit(cache=True, inline="always")
def _put_str(out: np.ndarray, at: int, pool: np.ndarray, start: int, end: int) -> int:
    length = end - start
    if length < 32:
        out[at] = 0xA0 | length
        at += 1
    elif length < 256:
        out[at] = 0xD9
        at = _put_be(out, at + 1, length, 1)
    elif length < 65536:
        out[at] = 0xDA
        at = _put_be(out, at + 1, length, 2)
    else:
        out[at] = 0xDB
        at = _put_be(out, at + 1, length, 4)
    for k in range(length):  # a loop: a slice copy costs more for these short strings
        out[at + k] = pool[start + k]
    return at + length


@njit(cache=True, inline="always")
def _put_array(out: np.ndarray, at: int, count: int) -> int:
    if count < 16:
        out[at] = 0x90 | count
        return at + 1
    if count < 65536:
        out[at] = 0xDC
        return _put_be(out, at + 1, count, 2)
    out[at] = 0xDD
    return _put_be(out, at + 1, count, 4)


@njit(cache=True)
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
) -> tuple[np.ndarray, np.ndarray]:
    n = len(kind_row)
    fields_max = kinds.shape[1]
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    for i in range(n):  # sizes
        t = kind_row[i]
        count = 2  # the type, the balances
        size = _str_size(names[t, 1] - names[t, 0])
        for f in range(fields_max):
            kind = kinds[t, f]
            if kind == FIELD_INT:
                size += _int_size(value_a[i, f])
                count += 1
            elif kind == FIELD_STR:
                size += _str_size(value_b[i, f] - value_a[i, f])
                count += 1
        size += _array_size(count)
        size += _array_size(after_end[i] - after_begin[i])
        for j in range(after_begin[i], after_end[i]):
            size += 1 + _str_size(after_end_at[j] - after_start[j])
            size += _int_size(after_available[j]) + _int_size(after_held[j])
        offsets[i + 1] = offsets[i] + size
    out = np.empty(offsets[n], np.uint8)
    for i in range(n):  # bytes
        t = kind_row[i]
        count = 2
        for f in range(fields_max):
            if kinds[t, f] != FIELD_NONE:
                count += 1
        at = _put_array(out, offsets[i], count)
        at = _put_str(out, at, pool, names[t, 0], names[t, 1])
        for f in range(fields_max):
            kind = kinds[t, f]
            if kind == FIELD_INT:
                at = _put_int(out, at, value_a[i, f])
            elif kind == FIELD_STR:
                at = _put_str(out, at, pool, value_a[i, f], value_b[i, f])
        at = _put_array(out, at, after_end[i] - after_begin[i])
        for j in range(after_begin[i], after_end[i]):
            out[at] = 0x93
            at = _put_str(out, at + 1, pool, after_start[j], after_end_at[j])
            at = _put_int(out, at, after_available[j])
            at = _put_int(out, at, after_held[j])
        if at != offsets[i + 1]:
            raise AssertionError("an entry's size")
    return out, offsets


@njit(cache=True, inline="always")
def _digits(x: int) -> int:
    count = 1
    while x >= 10:
        x //= 10
        count += 1
    return count


@njit(cache=True, inline="always")
def _put_raw_header(out: np.ndarray, at: int, length: int) -> int:
    """A string's header as the batch script's payload has it (msgpack raw: no str8)."""
    if length < 32:
        out[at] = 0xA0 | length
        return at + 1
    if length < 65536:
        out[at] = 0xDA
        return _put_be(out, at + 1, length, 2)
    out[at] = 0xDB
    return _put_be(out, at + 1, length, 4)


@njit(cache=True)
def pack_stream_ops(
    entries: np.ndarray,
    entry_offsets: np.ndarray,
    seq: np.ndarray,
    pool: np.ndarray,
    op_name: np.ndarray,
    stream_key: np.ndarray,
    stream_trim: np.ndarray,
    stream_count: np.ndarray,
) -> np.ndarray:
    """The batch script's ``xadd`` ops (:class:`.redis_store.Ops`), msgpack, one after the
    other: per stream ``s``, ``["xadd", key, trim, id, entry, …]`` with its
    ``stream_count[s]`` entries (the next ones of ``entries``, ids ``<seq>-0``); ``key``
    and ``trim`` are pool ranges (``stream_key[s]``, ``stream_trim[s]``)."""
    streams = len(stream_count)
    n = len(seq)
    size = 0
    for s in range(streams):
        size += 5 + 5 + op_name[1] - op_name[0]
        size += 5 + stream_key[s, 1] - stream_key[s, 0]
        size += 5 + stream_trim[s, 1] - stream_trim[s, 0]
    for i in range(n):
        size += 1 + _digits(seq[i]) + 2 + 5 + entry_offsets[i + 1] - entry_offsets[i]
    out = np.empty(size, np.uint8)
    at = 0
    i = 0
    for s in range(streams):
        count = stream_count[s]
        at = _put_array(out, at, 3 + 2 * count)
        for part in range(3):
            if part == 0:
                start, end = op_name[0], op_name[1]
            elif part == 1:
                start, end = stream_key[s, 0], stream_key[s, 1]
            else:
                start, end = stream_trim[s, 0], stream_trim[s, 1]
            at = _put_raw_header(out, at, end - start)
            for k in range(end - start):
                out[at + k] = pool[start + k]
            at += end - start
        for _ in range(count):
            value = seq[i]
            assert value > 0
            digits = _digits(value)
            at = _put_raw_header(out, at, digits + 2)
            for k in range(digits):
                out[at + digits - 1 - k] = 48 + value % 10
                value //= 10
            out[at + digits] = 45  # "-"
            out[at + digits + 1] = 48  # "0"
            at += digits + 2
            start, end = entry_offsets[i], entry_offsets[i + 1]
            at = _put_raw_header(out, at, end - start)
            for k in range(end - start):
                out[at + k] = entries[start + k]
            at += end - start
            i += 1
    if i != n:
        raise AssertionError("entries left over")
    return out[:at]


def warm_up() -> None:
    """Load the kernels' cached machine code now (numba's first call in a process costs
    ~1 s here): at import, before a rebuild's clock starts, not inside its first batch."""
    none = np.zeros(0, np.int64)
    kinds = np.zeros((1, 1), np.int64)
    pool = np.frombuffer(b"", np.uint8)  # read-only, as the callers' pools (one signature)
    data, offsets = pack_entries(
        pool, kinds, np.zeros((1, 2), np.int64), none, kinds[:0], kinds[:0],
        none, none, none, none, none, none,
    )  # fmt: skip
    assert len(data) == 0, len(data)
    ranges = np.zeros((0, 2), np.int64)
    ops = pack_stream_ops(data, offsets, none, pool, np.zeros(2, np.int64), ranges, ranges, none)
    assert len(ops) == 0, len(ops)
