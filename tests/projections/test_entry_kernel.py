"""The entry packer (C) writes what ``msgpack.Packer().pack`` writes for the same
values: ints of every msgpack size class and sign, strings of every length class (and
multi-byte UTF-8), 0 to 17 balances, types with no field and with twenty; and the xadd
ops it packs unpack to the program :class:`~tradex.projections.redis_store.Ops` builds."""

from __future__ import annotations

import random

import msgpack
import numpy as np
import pytest

from tradex.projections.entry_kernel import (
    FIELD_INT,
    FIELD_STR,
    pack_entries,
    pack_stream_ops,
)
from tradex.projections.redis_store import Ops

ENTRIES = 3_000
FIELDS_MAX = 20
INT_EDGES = (
    0, 1, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**63 - 1, -1, -32, -33,
    -128, -129, -32_768, -32_769, -(2**31), -(2**31) - 1, -(2**63),
)  # fmt: skip
STRING_LENGTHS = (0, 1, 5, 31, 32, 255, 256, 300, 65_535, 65_536)
TYPES = (("Deposited", (FIELD_STR, FIELD_INT, FIELD_INT)), ("X" * 40, (FIELD_INT,) * 20), ("Y", ()))


class _Pool:
    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, text: str) -> tuple[int, int]:
        start = len(self.data)
        self.data.extend(text.encode())
        return start, len(self.data)


def test_entries_are_msgpack_packer_bytes() -> None:
    rng = random.Random(7)
    pack = msgpack.Packer().pack

    def an_int() -> int:
        if rng.random() < 0.5:
            return rng.choice(INT_EDGES)
        return rng.randint(-(2**63), 2**63 - 1) >> rng.randint(0, 63)

    def a_string() -> str:
        length = rng.choice(STRING_LENGTHS)
        return "".join(rng.choice("abc") for _ in range(min(length, 40))) + "é" * max(
            0, (length - 40) // 2
        )

    pool = _Pool()
    kinds = np.zeros((len(TYPES), FIELDS_MAX), np.int64)
    names = np.zeros((len(TYPES), 2), np.int64)
    for t, (name, field_kinds) in enumerate(TYPES):
        kinds[t, : len(field_kinds)] = field_kinds
        names[t] = pool.add(name)
    kind_row = np.zeros(ENTRIES, np.int64)
    value_a = np.zeros((ENTRIES, FIELDS_MAX), np.int64)
    value_b = np.zeros((ENTRIES, FIELDS_MAX), np.int64)
    begin = np.zeros(ENTRIES, np.int64)
    end = np.zeros(ENTRIES, np.int64)
    after: list[list[int]] = [[], [], [], []]  # asset start, end, available, held
    expected = []
    for i in range(ENTRIES):
        t = rng.randrange(len(TYPES))
        kind_row[i] = t
        values: list[object] = [TYPES[t][0]]
        for f, kind in enumerate(TYPES[t][1]):
            if kind == FIELD_INT:
                value_a[i, f] = x = an_int()
                values.append(x)
            else:
                text = a_string()
                value_a[i, f], value_b[i, f] = pool.add(text)
                values.append(text)
        begin[i] = len(after[0])
        balances = []
        for _ in range(rng.choice((0, 1, 2, 3, 17))):
            asset, available, held = a_string()[:12], an_int(), an_int()
            for column, value in zip(after, (*pool.add(asset), available, held), strict=True):
                column.append(value)
            balances.append((asset, available, held))
        end[i] = len(after[0])
        expected.append(pack((*values, balances)))
    data, offsets = pack_entries(
        np.frombuffer(bytes(pool.data), np.uint8), kinds, names, kind_row, value_a, value_b,
        begin, end, *(np.array(column, np.int64) for column in after),
    )  # fmt: skip
    blob, at = data, offsets.tolist()
    assert [blob[at[i] : at[i + 1]] for i in range(ENTRIES)] == expected


def test_stream_ops_unpack_to_the_program() -> None:
    entries = [b"\x93\xa1a\x01\x90", b"e" * 40, b"f" * 70_000, b"g"]
    offsets = np.cumsum([0] + [len(e) for e in entries]).astype(np.int64)
    pool = _Pool()
    op_name = np.array(pool.add("xadd"), np.int64)
    keys = np.array([pool.add("a:7:events"), pool.add("a:-3:events")], np.int64)
    trims = np.array([pool.add("1000"), pool.add("0")], np.int64)
    seq = np.array([9, 10, 11, 123_456_789_012], np.int64)
    packed = pack_stream_ops(
        b"".join(entries), offsets, seq,
        np.frombuffer(bytes(pool.data), np.uint8), op_name, keys, trims,
        np.array([3, 1], np.int64),
    )  # fmt: skip
    ops = Ops()
    ops.xadd("a:7:events", 1_000, [("9-0", entries[0]), ("10-0", entries[1]), ("11-0", entries[2])])
    ops.xadd("a:-3:events", 1_000, [("123456789012-0", entries[3])], 1)
    unpacker = msgpack.Unpacker(raw=True)
    unpacker.feed(packed)
    assert list(unpacker) == msgpack.unpackb(
        msgpack.packb(ops.program, use_bin_type=False), raw=True
    )


def test_ranges_outside_their_buffers_are_refused() -> None:
    pool = np.frombuffer(b"Deposited", np.uint8)
    kinds = np.array([[FIELD_STR]], np.int64)
    names = np.array([[0, 9]], np.int64)
    row = np.zeros(1, np.int64)
    none = np.zeros(0, np.int64)
    for a, b in ((0, 10), (-1, 3), (5, 4)):  # past the pool, before it, backwards
        with pytest.raises(ValueError, match="out of range"):
            pack_entries(
                pool, kinds, names, row, np.array([[a]], np.int64), np.array([[b]], np.int64),
                row, row, none, none, none, none,
            )  # fmt: skip
    with pytest.raises(ValueError, match="do not agree"):
        pack_stream_ops(
            b"x", np.array([0, 1], np.int64), np.array([1], np.int64), pool,
            np.array([0, 4], np.int64), np.array([[0, 4]], np.int64),
            np.array([[0, 4]], np.int64), np.array([2], np.int64),
        )  # fmt: skip
