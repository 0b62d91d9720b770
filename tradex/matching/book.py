"""The engine's Python face: one :class:`Book` per instrument, batches in, arrays out.

Python overhead is paid per batch: :meth:`Book.process` hands the whole command array to the
jitted kernel, which writes trades, events and L2 deltas into preallocated
:class:`OutputBuffers` (shareable by every book of a process, reused call after call).
"""

from __future__ import annotations

import contextlib
import mmap
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradex.matching.bitmap import LEVELS_PER_HI_BIT
from tradex.matching.constants import (
    COMMANDS_PER_BATCH_MAX,
    ORDERS_MAX_DEFAULT,
    ORDERS_MAX_LIMIT,
    OUTPUT_SLACK_MAX,
    PRICE_LEVELS_MAX_DEFAULT,
    PRICE_LEVELS_MAX_LIMIT,
    STATUS_OK,
    STATUS_ORDERS_FULL,
    STATUS_OUTPUT_FULL,
)
from tradex.matching.dtypes import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    L2_DTYPE,
    LEVEL_DTYPE,
    M_BAND_BPS,
    M_BEST_ASK,
    M_BEST_BID,
    M_DONE,
    M_FREE,
    M_HALTED,
    M_HASH_SHIFT,
    M_LAST_TRADE,
    M_LIVE,
    M_N_EVENTS,
    M_N_L2,
    M_N_TRADES,
    M_PRICE_LO,
    M_SEQ,
    META_SIZE,
    ORDER_DTYPE,
    TRADE_DTYPE,
)
from tradex.matching.hashtable import buckets_for
from tradex.matching.kernel import process_batch
from tradex.matching.snapshot import BookState, SnapshotError, decode_snapshot
from tradex.matching.state_kernels import (
    CANONICAL_WIDTH,
    export_canonical,
    order_slot,
    restore_rows,
    validate_state,
)

VALIDATION_FAILURES: dict[int, str] = {
    1: "bit set for an empty level",
    2: "empty level with quantity",
    3: "non-empty level without its bitmap bit",
    4: "summary bitmap bit missing",
    5: "broken level link",
    6: "prev link inconsistent",
    7: "mixed sides on one level",
    8: "order price differs from its level",
    9: "order with bad quantities",
    10: "hash table does not point at the order's slot",
    11: "level list does not end at its tail",
    12: "level total differs from the sum of its orders",
    13: "crossed book",
    14: "live order count wrong",
    15: "best bid/ask wrong",
    16: "order slots leaked",
    17: "hash table holds stale ids",
}


class CapacityError(RuntimeError):
    """A named capacity (``*_max``) was exceeded: the engine refuses to go on."""


class BookCorruptError(AssertionError):
    """validate_internal_state() found an inconsistency."""


@dataclass(frozen=True)
class BatchResult:
    """Outputs of one call. From :meth:`Book.process` these are VIEWS into the reused
    buffers, valid until the next call; copy what you keep."""

    n_commands: int
    trades: np.ndarray  # TRADE_DTYPE
    events: np.ndarray  # EVENT_DTYPE
    l2: np.ndarray  # L2_DTYPE

    def copy(self) -> BatchResult:
        return BatchResult(self.n_commands, self.trades.copy(), self.events.copy(), self.l2.copy())


class OutputBuffers:
    """Preallocated output records for books with up to ``orders_max`` live orders.

    Sized so that one command's worst case (a sweep of every live order) always fits an
    empty buffer; pages are touched only as far as a batch actually writes.
    """

    def __init__(self, orders_max: int = ORDERS_MAX_DEFAULT) -> None:
        assert 0 < orders_max <= ORDERS_MAX_LIMIT
        self.orders_max = orders_max
        self.trades = np.empty(OUTPUT_SLACK_MAX + orders_max + 1, TRADE_DTYPE)
        self.events = np.empty(OUTPUT_SLACK_MAX + 2 * orders_max + 8, EVENT_DTYPE)
        self.l2 = np.empty(OUTPUT_SLACK_MAX + orders_max + 4, L2_DTYPE)


ZEROED_MAPPED_BYTES_MIN = 1 << 20  # smaller arrays: np.zeros


def zeroed(count: int, dtype: Any) -> np.ndarray:
    """``np.zeros(count, dtype)``, a large one in an anonymous mapping of its own: the
    kernel gives it zero pages as they are first touched. ``np.zeros`` takes its memory
    from ``calloc``, which, once malloc's threshold for mappings has grown past the size
    (it does after large blocks are freed), carves it from a heap and clears every byte —
    a book's ~60 MB, most of it never touched (one book cost 0.12 s of CPU that way in
    ``tradex audit verify``, whose re-run makes its books after the scan freed much)."""
    dtype = np.dtype(dtype)
    assert count >= 0, count
    nbytes = count * dtype.itemsize
    if nbytes < ZEROED_MAPPED_BYTES_MIN:
        return np.zeros(count, dtype)
    pages = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
    huge = getattr(mmap, "MADV_HUGEPAGE", None)  # as numpy asks for its large arrays
    if huge is not None:
        with contextlib.suppress(OSError):  # a kernel without transparent huge pages
            pages.madvise(huge)
    array = np.frombuffer(pages, dtype, count)
    assert array.flags.writeable
    return array


class Book:
    """One instrument's order book: state arrays allocated once, reused across batches."""

    def __init__(
        self,
        orders_max: int = ORDERS_MAX_DEFAULT,
        price_levels_max: int = PRICE_LEVELS_MAX_DEFAULT,
    ) -> None:
        if not 0 < orders_max <= ORDERS_MAX_LIMIT:
            raise ValueError(f"orders_max must be in 1..{ORDERS_MAX_LIMIT}, got {orders_max}")
        if (
            price_levels_max < LEVELS_PER_HI_BIT
            or price_levels_max > PRICE_LEVELS_MAX_LIMIT
            or price_levels_max & (price_levels_max - 1)
        ):
            raise ValueError(
                f"price_levels_max must be a power of two in {LEVELS_PER_HI_BIT}.."
                f"{PRICE_LEVELS_MAX_LIMIT}, got {price_levels_max}"
            )
        self.orders_max = orders_max
        self.price_levels_max = price_levels_max
        self._allocate()

    def _allocate(self) -> None:
        buckets = buckets_for(self.orders_max)
        self.orders = zeroed(self.orders_max, ORDER_DTYPE)
        self.levels = zeroed(self.price_levels_max, LEVEL_DTYPE)
        self.bits_lo = zeroed(self.price_levels_max // 64, np.int64)
        self.bits_hi = zeroed(self.price_levels_max // LEVELS_PER_HI_BIT, np.int64)
        self.htable = zeroed(2 * buckets, np.int64)  # (key, slot) pairs
        # Popped from the end: slots are handed out 0, 1, 2, ... (deterministic).
        self.free_slots = np.arange(self.orders_max - 1, -1, -1, dtype=np.int64)
        self.meta = np.zeros(META_SIZE, np.int64)
        self.meta[M_FREE] = self.orders_max
        self.meta[M_BEST_BID] = -1
        self.meta[M_BEST_ASK] = -1
        self.meta[M_HASH_SHIFT] = 64 - (buckets.bit_length() - 1)

    # --- commands ---------------------------------------------------------------------

    def process(self, cmds: np.ndarray, out: OutputBuffers) -> BatchResult:
        """Process a prefix of ``cmds`` (at most COMMANDS_PER_BATCH_MAX, fewer if the output
        buffers fill up); return views of its outputs. Call again with the rest."""
        if cmds.dtype != COMMAND_DTYPE:
            raise TypeError(f"commands must have dtype COMMAND_DTYPE, got {cmds.dtype}")
        if out.orders_max < self.orders_max:
            raise ValueError("output buffers are sized for fewer live orders than this book")
        chunk = cmds[:COMMANDS_PER_BATCH_MAX]
        status = process_batch(
            self.orders, self.levels, self.bits_lo, self.bits_hi, self.htable,
            self.free_slots, self.meta, chunk, out.trades, out.events, out.l2,
        )  # fmt: skip
        meta = self.meta
        done = int(meta[M_DONE])
        if status == STATUS_ORDERS_FULL:
            raise CapacityError(
                f"orders_max={self.orders_max} live orders reached at command {done} of the batch"
            )
        assert status in (STATUS_OK, STATUS_OUTPUT_FULL)
        assert done > 0 or chunk.shape[0] == 0  # an empty buffer always fits one command
        return BatchResult(
            done,
            out.trades[: meta[M_N_TRADES]],
            out.events[: meta[M_N_EVENTS]],
            out.l2[: meta[M_N_L2]],
        )

    def process_all(self, cmds: np.ndarray, out: OutputBuffers) -> BatchResult:
        """Process every command; return COPIES of all outputs (convenient, allocates)."""
        parts: list[BatchResult] = []
        done = 0
        while done < cmds.shape[0]:
            part = self.process(cmds[done:], out).copy()
            part.trades["cmd_index"] += done
            part.events["cmd_index"] += done
            part.l2["cmd_index"] += done
            parts.append(part)
            done += part.n_commands
        if not parts:
            return BatchResult(0, out.trades[:0].copy(), out.events[:0].copy(), out.l2[:0].copy())
        return BatchResult(
            done,
            np.concatenate([p.trades for p in parts]),
            np.concatenate([p.events for p in parts]),
            np.concatenate([p.l2 for p in parts]),
        )

    # --- inspection -------------------------------------------------------------------

    @property
    def live(self) -> int:
        return int(self.meta[M_LIVE])

    @property
    def seq(self) -> int:
        return int(self.meta[M_SEQ])

    def best_bid(self) -> int:
        """Best bid price in ticks, 0 if no bids."""
        idx = int(self.meta[M_BEST_BID])
        return idx + int(self.meta[M_PRICE_LO]) if idx >= 0 else 0

    def best_ask(self) -> int:
        """Best ask price in ticks, 0 if no asks."""
        idx = int(self.meta[M_BEST_ASK])
        return idx + int(self.meta[M_PRICE_LO]) if idx >= 0 else 0

    def order(self, order_id: int) -> tuple[int, int, int, int] | None:
        """(side, price, remaining, filled) of the resting order ``order_id``, None if it
        is not in the book: one id-table lookup (O(1)), no walk of the book."""
        if order_id <= 0:
            return None  # ids are positive; 0 marks an empty bucket
        slot = int(order_slot(self.htable, order_id))
        if slot < 0:
            return None
        found, _owner, side, price, remaining, filled, _next, _prev = self.orders[slot].item()
        assert found == order_id, "the id table points at another order"
        assert remaining > 0, "a resting order without quantity"
        return side, price, remaining, filled

    def live_orders(self) -> np.ndarray:
        """(live, 6) int64 rows: order_id, owner, side, price, remaining, filled (canonical)."""
        out = np.empty((self.live, CANONICAL_WIDTH), np.int64)
        n = export_canonical(self.orders, self.levels, self.bits_lo, self.bits_hi, self.meta, out)
        assert n == out.shape[0]
        return out

    def state(self) -> BookState:
        meta = self.meta
        return BookState(
            price_levels_max=self.price_levels_max,
            seq=int(meta[M_SEQ]),
            last_trade_price=int(meta[M_LAST_TRADE]),
            band_bps=int(meta[M_BAND_BPS]),
            halted=int(meta[M_HALTED]),
            price_lo=int(meta[M_PRICE_LO]),
            rows=self.live_orders(),
        )

    def state_hash(self) -> str:
        return self.state().hash_hex()

    def validate_internal_state(self) -> None:
        code = validate_state(
            self.orders, self.levels, self.bits_lo, self.bits_hi, self.htable,
            self.free_slots, self.meta,
        )  # fmt: skip
        if code != 0:
            raise BookCorruptError(f"book state invalid: {VALIDATION_FAILURES.get(code, code)}")

    # --- snapshots --------------------------------------------------------------------

    def snapshot(self) -> bytes:
        return self.state().snapshot()

    def restore(self, blob: bytes) -> None:
        """Replace this book's state with a snapshot's; on any error nothing changes."""
        state = decode_snapshot(blob)
        if state.price_levels_max != self.price_levels_max:
            raise SnapshotError(
                f"snapshot window is {state.price_levels_max} ticks, this book has "
                f"{self.price_levels_max}"
            )
        if state.rows.shape[0] > self.orders_max:
            raise SnapshotError(
                f"snapshot holds {state.rows.shape[0]} orders, orders_max is {self.orders_max}"
            )
        fresh = Book(self.orders_max, self.price_levels_max)
        meta = fresh.meta
        meta[M_SEQ] = state.seq
        meta[M_LAST_TRADE] = state.last_trade_price
        meta[M_BAND_BPS] = state.band_bps
        meta[M_HALTED] = state.halted
        meta[M_PRICE_LO] = state.price_lo
        restore_rows(
            fresh.orders, fresh.levels, fresh.bits_lo, fresh.bits_hi, fresh.htable,
            fresh.free_slots, meta, np.ascontiguousarray(state.rows),
        )  # fmt: skip
        fresh.validate_internal_state()
        assert fresh.state_hash() == state.hash_hex()
        self.__dict__.update(fresh.__dict__)


def load_kernels(out: OutputBuffers) -> None:
    """Load (or compile) the jitted code a service runs, now: a first batch would otherwise
    pay it (~1 s from the on-disk cache, ~20 s cold). ``out``: the service's buffers, so
    the kernel is loaded for exactly the array types it will be called with."""
    book = Book(1, LEVELS_PER_HI_BIT)
    result = book.process(np.zeros(1, COMMAND_DTYPE), out)  # op 0: rejected (bad op)
    assert result.n_commands == 1
    assert book.order(1) is None
