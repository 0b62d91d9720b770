"""Running one book's commands of a batch, resolving the amends against the book.

An AmendOrder names neither the side of its order nor, when a field is 0, the kept price or
quantity; the kernel's amend row needs all three. :func:`resolve_amend` fills them from the
live order (:meth:`Book.order`, one id-table lookup) just before the amend runs, so
:func:`run_book` processes the commands in segments that end before each amend — the
outputs are exactly those of one kernel call over the resolved commands (batch boundaries
never change outputs). MARKET orders need no resolution: the kernel takes their protection
price as a hard limit (:func:`tradex.matching.wire.market_fields`).

Outputs are plain int64 rows (one row per record, the dtype's fields in order: see
:mod:`tradex.matching.dtypes`), copied out of the shared output buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from tradex.matching.book import BatchResult, Book, OutputBuffers
from tradex.matching.constants import OP_AMEND
from tradex.matching.dtypes import COMMAND_DTYPE, EVENT_DTYPE, L2_DTYPE, TRADE_DTYPE

CMD_WIDTH = len(COMMAND_DTYPE.names or ())
TRADE_WIDTH = len(TRADE_DTYPE.names or ())
EVENT_WIDTH = len(EVENT_DTYPE.names or ())
L2_WIDTH = len(L2_DTYPE.names or ())
CMD_INDEX = 1  # column of cmd_index in every output row
assert TRADE_DTYPE.names is not None and TRADE_DTYPE.names[CMD_INDEX] == "cmd_index"
assert EVENT_DTYPE.names is not None and EVENT_DTYPE.names[CMD_INDEX] == "cmd_index"
assert L2_DTYPE.names is not None and L2_DTYPE.names[CMD_INDEX] == "cmd_index"
_COMMAND_FIELDS = COMMAND_DTYPE.names or ()
C_OP, C_SIDE, C_ORDER_ID, C_PRICE, C_QTY = (
    _COMMAND_FIELDS.index(name) for name in ("op", "side", "order_id", "price", "qty")
)


class Rows(NamedTuple):
    """A book's outputs as int64 rows, ``cmd_index`` relative to the commands given."""

    trades: np.ndarray  # (n, TRADE_WIDTH)
    events: np.ndarray  # (n, EVENT_WIDTH)
    l2: np.ndarray  # (n, L2_WIDTH)


def resolve_amend(book: Book, rows: np.ndarray, i: int) -> None:
    """Row i of ``rows`` (commands as int64 rows) is an amend with 0 meaning "keep": take
    side, price and total qty from the book."""
    assert rows[i, C_OP] == OP_AMEND
    found = book.order(int(rows[i, C_ORDER_ID]))
    price, qty = int(rows[i, C_PRICE]), int(rows[i, C_QTY])
    if found is None:
        # Unknown order: make the fields valid so the kernel says so (unless they are bad).
        rows[i, C_PRICE] = 1 if price == 0 else price
        rows[i, C_QTY] = 1 if qty == 0 else qty
        return
    side, old_price, remaining, filled = found
    rows[i, C_SIDE] = side
    rows[i, C_PRICE] = old_price if price == 0 else price
    rows[i, C_QTY] = remaining + filled if qty == 0 else qty


class _Window:
    """The unused tail of an :class:`OutputBuffers` (what ``Book.process`` writes into), so
    a book's segments land one after the other and are copied out once."""

    __slots__ = ("events", "l2", "orders_max", "trades")

    def __init__(self, out: OutputBuffers, filled: list[int]) -> None:
        self.orders_max = out.orders_max
        self.trades = out.trades[filled[0] :]
        self.events = out.events[filled[1] :]
        self.l2 = out.l2[filled[2] :]


def _as_rows(records: np.ndarray, width: int) -> np.ndarray:
    return records.view(np.int64).reshape(records.shape[0], width)


def run_book(book: Book, cmds: np.ndarray, amend_rows: Sequence[int], out: OutputBuffers) -> Rows:
    """Process ``cmds`` (COMMAND_DTYPE, contiguous; resolved in place), resolving each row
    of ``amend_rows`` (increasing) just before it runs; return all outputs (copies)."""
    n = cmds.shape[0]
    command_rows = _as_rows(cmds, CMD_WIDTH)
    buffers = (
        _as_rows(out.trades, TRADE_WIDTH),
        _as_rows(out.events, EVENT_WIDTH),
        _as_rows(out.l2, L2_WIDTH),
    )
    filled = [0, 0, 0]  # rows of each buffer holding this book's outputs
    flushed: list[tuple[np.ndarray, ...]] = []
    start = 0
    segments_max = len(amend_rows) + 1
    for segment, stop in enumerate((*amend_rows, n)):
        assert segment < segments_max
        assert start <= stop <= n, "amend rows out of order"
        while start < stop:  # each call consumes >= 1 command
            part: BatchResult = book.process(cmds[start:stop], _Window(out, filled))  # type: ignore[arg-type]
            for j, records in enumerate((part.trades, part.events, part.l2)):
                count = records.shape[0]
                if count and start:
                    buffers[j][filled[j] : filled[j] + count, CMD_INDEX] += start
                filled[j] += count
            start += part.n_commands
            if start < stop:  # the buffers are full: copy out what they hold, start over
                flushed.append(tuple(b[:f].copy() for b, f in zip(buffers, filled, strict=True)))
                filled = [0, 0, 0]
        if stop < n:
            resolve_amend(book, command_rows, stop)
    last = tuple(b[:f].copy() for b, f in zip(buffers, filled, strict=True))
    if not flushed:
        return Rows(*last)
    parts = [*flushed, last]
    return Rows(*(np.concatenate([p[j] for p in parts]) for j in range(3)))
