"""The Book wrapper: snapshots, capacities, output splitting, internal validation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.matching.random_commands import random_commands
from tests.matching.twin import PRICE_LEVELS_MAX
from tradex.matching import constants as k
from tradex.matching.book import (
    ZEROED_MAPPED_BYTES_MIN,
    Book,
    BookCorruptError,
    CapacityError,
    OutputBuffers,
    zeroed,
)
from tradex.matching.commands import batch, cancel, gtc, rules
from tradex.matching.dtypes import M_LIVE, ORDER_DTYPE
from tradex.matching.reference import ReferenceBook
from tradex.matching.snapshot import MAGIC, SnapshotError


def busy_book(n: int = 3000, seed: int = 11) -> Book:
    """Random history, then rules reset and 200 resting orders on both sides."""
    book = Book(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX)
    out = OutputBuffers(4096)
    book.process_all(random_commands(n, seed), out)
    resting = [rules(0, 0)]
    for i in range(100):
        resting.append(gtc(k.SIDE_BUY, 10**12 + i, 4900 - i % 37, 1 + i % 5))
        resting.append(gtc(k.SIDE_SELL, 2 * 10**12 + i, 5100 + i % 41, 1 + i % 7))
    book.process_all(batch(resting), out)
    assert book.live > 150
    return book


def test_snapshot_restore_gives_equal_hash_and_equal_future() -> None:
    book = busy_book()
    blob = book.snapshot()
    restored = Book(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX)
    restored.restore(blob)
    assert restored.state_hash() == book.state_hash()
    restored.validate_internal_state()
    more = random_commands(2000, seed=12)
    a = book.process_all(more, OutputBuffers(4096))
    b = restored.process_all(more, OutputBuffers(4096))
    assert np.array_equal(a.events, b.events)
    assert np.array_equal(a.trades, b.trades)
    assert book.state_hash() == restored.state_hash()


def test_reference_book_restores_engine_snapshot() -> None:
    book = busy_book()
    ref = ReferenceBook(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX)
    ref.restore(book.snapshot())
    assert ref.state_hash() == book.state_hash()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:20], "truncated"),
        (lambda b: b"XXXXXXXX" + b[8:], "bad magic"),
        (lambda b: b[:-40] + bytes([b[-40] ^ 1]) + b[-39:], "checksum"),
        (lambda b: b[:-32] + b"\x00" * 32, "checksum"),
    ],
)
def test_corrupt_snapshot_is_refused_and_changes_nothing(mangle, message: str) -> None:
    book = busy_book()
    before = book.state_hash()
    with pytest.raises(SnapshotError, match=message):
        book.restore(mangle(busy_book(500, seed=3).snapshot()))
    assert book.state_hash() == before


def test_wrong_version_snapshot_is_refused() -> None:
    import hashlib

    blob = busy_book(200).snapshot()
    payload = bytearray(blob[len(MAGIC) : -32])
    payload[0] = 99  # format version field
    forged = MAGIC + bytes(payload) + hashlib.sha256(bytes(payload)).digest()
    with pytest.raises(SnapshotError, match="version 99"):
        Book(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX).restore(forged)


def test_snapshot_for_another_window_or_too_many_orders_is_refused() -> None:
    blob = busy_book().snapshot()
    with pytest.raises(SnapshotError, match="window"):
        Book(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX * 2).restore(blob)
    with pytest.raises(SnapshotError, match="orders_max"):
        Book(orders_max=8, price_levels_max=PRICE_LEVELS_MAX).restore(blob)


def test_orders_max_exceeded_fails_loudly_before_the_command() -> None:
    book = Book(orders_max=4, price_levels_max=PRICE_LEVELS_MAX)
    out = OutputBuffers(4)
    book.process(batch([gtc(k.SIDE_BUY, i, 100 - i, 1) for i in range(1, 5)]), out)
    before = book.state_hash()
    with pytest.raises(CapacityError, match="orders_max=4"):
        book.process(batch([gtc(k.SIDE_BUY, 9, 90, 1)]), out)
    assert book.state_hash() == before
    res = book.process(batch([cancel(1), gtc(k.SIDE_BUY, 9, 90, 1)]), out)  # room again
    assert res.n_commands == 2


def test_output_buffers_too_small_split_the_batch() -> None:
    cmds = random_commands(20_000, seed=5)
    small = Book(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX)
    big = Book(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX)
    out_small = OutputBuffers(4096)
    out_small.events = out_small.events[: 2 * 4096 + 8 + 500]  # forces many partial calls
    first = small.process(cmds, out_small).copy()  # views are reused by the next call
    assert first.n_commands < len(cmds)
    rest = small.process_all(cmds[first.n_commands :], out_small)
    whole = big.process_all(cmds, OutputBuffers(4096))
    assert first.n_commands + rest.n_commands == len(cmds)
    assert np.array_equal(
        np.concatenate([first.events["seq"], rest.events["seq"]]), whole.events["seq"]
    )
    assert small.state_hash() == big.state_hash()


def test_validate_internal_state_detects_corruption() -> None:
    book = busy_book()
    book.validate_internal_state()
    book.meta[M_LIVE] += 1
    with pytest.raises(BookCorruptError, match="live order count"):
        book.validate_internal_state()
    book.meta[M_LIVE] -= 1
    slot = int(np.flatnonzero(book.orders["order_id"])[0])
    book.orders[slot]["remaining"] += 1
    with pytest.raises(BookCorruptError, match="level total"):
        book.validate_internal_state()


def test_bad_construction_and_dtype_are_refused() -> None:
    with pytest.raises(ValueError, match="power of two"):
        Book(price_levels_max=5000)
    with pytest.raises(ValueError, match="orders_max"):
        Book(orders_max=0)
    with pytest.raises(TypeError, match="COMMAND_DTYPE"):
        Book(orders_max=16, price_levels_max=PRICE_LEVELS_MAX).process(
            np.zeros(3, np.int64), OutputBuffers(16)
        )


def test_sparse_partition_ids_work_like_dense_ones() -> None:
    dense = random_commands(5000, seed=21)
    sparse = dense.copy()
    for name in ("order_id",):
        ids = sparse[name]
        sparse[name] = np.where(ids > 0, ((ids % 7) << 40) | (ids & ((1 << 40) - 1)), ids)
    a = Book(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX)
    b = ReferenceBook(orders_max=4096, price_levels_max=PRICE_LEVELS_MAX)
    ra = a.process_all(sparse, OutputBuffers(4096))
    rb = b.process(sparse)
    assert np.array_equal(ra.events, rb.events)
    assert a.state_hash() == b.state_hash()


def test_zeroed_is_np_zeros_small_or_mapped() -> None:
    for count in (0, 3, ZEROED_MAPPED_BYTES_MIN // ORDER_DTYPE.itemsize + 5):
        array = zeroed(count, ORDER_DTYPE)
        assert array.shape == (count,)
        assert array.dtype == ORDER_DTYPE
        assert array.flags.writeable and array.flags.c_contiguous
        assert array.tobytes() == bytes(count * ORDER_DTYPE.itemsize)
        if count:
            array[-1]["price"] = 7  # writable to its last byte
            assert int(array[-1]["price"]) == 7
    mapped = zeroed(ZEROED_MAPPED_BYTES_MIN, np.int64)
    assert mapped.base is not None, "a large array lies in its own mapping"
    assert np.count_nonzero(mapped) == 0
