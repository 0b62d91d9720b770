"""Jitted parsing of an archive's Avro blocks into columns (:mod:`tradex.log.archive`).

An archive block (decompressed) is ``count`` records of ``tradex.archive.LogRecord``:
zigzag varint ``offset``, zigzag varint ``timestamp_ms``, then ``key`` and ``value`` each
a union index (0: null, 1: bytes) and, for bytes, a zigzag varint length and the bytes.
:func:`parse_records` finds every field without a Python object per record;
:func:`gather` copies the value (or key) spans into one buffer. Numpy arrays and scalars
only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FLAG_VALUE_NULL = 1  # as tradex.log.batch
FLAG_KEY_NULL = 2
varint_bytes_max = 10


@njit(cache=True)
def _long(data: np.ndarray, pos: int) -> tuple[int, int]:
    """(value, position after it) of the zigzag varint at ``pos``; position -1: bad."""
    n = len(data)
    result = 0
    shift = 0
    for _ in range(varint_bytes_max):
        if pos >= n:
            return 0, -1
        byte = int(data[pos])
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
    return 0, -1


@njit(cache=True)
def parse_records(
    data: np.ndarray,
    count: int,
    offset: np.ndarray,
    timestamp_ms: np.ndarray,
    flags: np.ndarray,
    key_span: np.ndarray,
    value_span: np.ndarray,
) -> int:
    """Fill the columns (``key_span``/``value_span``: (count, 2) start, end) from ``data``;
    returns the bytes consumed, or ``-1 - i`` when record ``i`` is malformed."""
    pos = 0
    n = len(data)
    for i in range(count):
        value, pos = _long(data, pos)
        if pos < 0:
            return -1 - i
        offset[i] = value
        value, pos = _long(data, pos)
        if pos < 0:
            return -1 - i
        timestamp_ms[i] = value
        flag = 0
        for field in range(2):
            branch, pos = _long(data, pos)
            if pos < 0 or branch < 0 or branch > 1:
                return -1 - i
            if branch == 0:
                flag |= FLAG_KEY_NULL if field == 0 else FLAG_VALUE_NULL
                start = pos
                end = pos
            else:
                size, pos = _long(data, pos)
                if pos < 0 or size < 0 or pos + size > n:
                    return -1 - i
                start = pos
                end = pos + size
                pos = end
            if field == 0:
                key_span[i, 0] = start
                key_span[i, 1] = end
            else:
                value_span[i, 0] = start
                value_span[i, 1] = end
        flags[i] = flag
    return pos


@njit(cache=True)
def gather(
    data: np.ndarray, span: np.ndarray, rows: np.ndarray, out_offsets: np.ndarray
) -> np.ndarray:
    """The spans ``span[rows]`` of ``data`` concatenated; ``out_offsets`` (len(rows) + 1)
    gets where each one starts."""
    total = 0
    for j in range(len(rows)):
        total += span[rows[j], 1] - span[rows[j], 0]
    out = np.empty(total, np.uint8)
    at = 0
    out_offsets[0] = 0
    for j in range(len(rows)):
        start = span[rows[j], 0]
        end = span[rows[j], 1]
        out[at : at + end - start] = data[start:end]
        at += end - start
        out_offsets[j + 1] = at
    return out
