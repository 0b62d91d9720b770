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
from tradex.matching.dtypes import EVENT_DTYPE, L2_DTYPE, TRADE_DTYPE

TRADE_WIDTH = len(TRADE_DTYPE.names or ())
EVENT_WIDTH = len(EVENT_DTYPE.names or ())
L2_WIDTH = len(L2_DTYPE.names or ())
CMD_INDEX = 1  # column of cmd_index in every output row
assert TRADE_DTYPE.names is not None and TRADE_DTYPE.names[CMD_INDEX] == "cmd_index"
assert EVENT_DTYPE.names is not None and EVENT_DTYPE.names[CMD_INDEX] == "cmd_index"
assert L2_DTYPE.names is not None and L2_DTYPE.names[CMD_INDEX] == "cmd_index"


class Rows(NamedTuple):
    """A book's outputs as int64 rows, ``cmd_index`` relative to the commands given."""

    trades: np.ndarray  # (n, TRADE_WIDTH)
    events: np.ndarray  # (n, EVENT_WIDTH)
    l2: np.ndarray  # (n, L2_WIDTH)


def resolve_amend(book: Book, cmds: np.ndarray, i: int) -> None:
    """Row i is an amend with 0 meaning "keep": take side, price and total qty from the book."""
    assert int(cmds["op"][i]) == OP_AMEND
    found = book.order(int(cmds["order_id"][i]))
    price, qty = int(cmds["price"][i]), int(cmds["qty"][i])
    if found is None:
        # Unknown order: make the fields valid so the kernel says so (unless they are bad).
        cmds["price"][i] = 1 if price == 0 else price
        cmds["qty"][i] = 1 if qty == 0 else qty
        return
    side, old_price, remaining, filled = found
    cmds["side"][i] = side
    cmds["price"][i] = old_price if price == 0 else price
    cmds["qty"][i] = remaining + filled if qty == 0 else qty


def _rows(records: np.ndarray, width: int, shift: int) -> np.ndarray:
    """Int64 rows of a slice of an output buffer (copied), cmd_index + ``shift``."""
    rows = records.view(np.int64).reshape(records.shape[0], width).copy()
    if shift:
        rows[:, CMD_INDEX] += shift
    return rows


def run_book(book: Book, cmds: np.ndarray, amend_rows: Sequence[int], out: OutputBuffers) -> Rows:
    """Process ``cmds`` (COMMAND_DTYPE, resolved in place), resolving each row of
    ``amend_rows`` (increasing) just before it runs; return all outputs."""
    n = cmds.shape[0]
    trades: list[np.ndarray] = []
    events: list[np.ndarray] = []
    l2: list[np.ndarray] = []
    start = 0
    segments_max = len(amend_rows) + 1
    for segment, stop in enumerate((*amend_rows, n)):
        assert segment < segments_max
        assert start <= stop <= n, "amend rows out of order"
        while start < stop:  # each call consumes >= 1 command
            part: BatchResult = book.process(cmds[start:stop], out)
            trades.append(_rows(part.trades, TRADE_WIDTH, start))
            events.append(_rows(part.events, EVENT_WIDTH, start))
            l2.append(_rows(part.l2, L2_WIDTH, start))
            start += part.n_commands
        if stop < n:
            resolve_amend(book, cmds, stop)
    return Rows(_joined(trades, TRADE_WIDTH), _joined(events, EVENT_WIDTH), _joined(l2, L2_WIDTH))


def _joined(parts: list[np.ndarray], width: int) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.empty((0, width), np.int64)
    return np.concatenate(parts)
