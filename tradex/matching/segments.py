"""Running one book's commands of a batch, resolving the commands that depend on the book.

Two order requests need the book's state at the moment they run, which the kernel's
command row cannot express:

- MARKET: the domain bounds it by a protection *price* (a buy never fills above it); the
  kernel bounds a market order by ``protection_ticks`` from the best opposite price at
  entry. :func:`resolve_market` turns the price into ticks from the current best price.
- AmendOrder: the domain names neither the side nor, when a field is 0, the kept price or
  quantity; :func:`resolve_amend` fills them from the live order.

:func:`run_book` processes the commands in segments that end before each such command,
resolves it against the book as it stands, and goes on — so the outputs are exactly those
of one kernel call over the resolved commands (batch boundaries never change outputs).
Requested from the engine core: a market order with a hard price limit and an amend that
takes the side from the book (docs/matching_service.md, "Engine API wishes").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tradex.matching.book import BatchResult, Book, OutputBuffers
from tradex.matching.constants import (
    OP_LIMIT_IOC,
    OP_MARKET,
    PROTECTION_NONE,
    SIDE_BUY,
    SIDE_SELL,
)

Resolver = Callable[[Book, np.ndarray, int], None]


def live_order(book: Book, order_id: int) -> tuple[int, int, int, int] | None:
    """(side, price, remaining, filled) of a resting order, None if not in the book.

    O(live orders) through the public canonical export: amends are rare (the account side
    does not send them yet). Asked of the engine core: an O(1) ``Book.order(order_id)``."""
    if order_id <= 0:
        return None
    rows = book.live_orders()
    hits = np.flatnonzero(rows[:, 0] == order_id)
    if hits.shape[0] == 0:
        return None
    assert hits.shape[0] == 1, "an order id rests twice"
    _oid, _owner, side, price, remaining, filled = (int(x) for x in rows[hits[0]])
    return side, price, remaining, filled


def resolve_market(book: Book, cmds: np.ndarray, i: int) -> None:
    """Row i is a MARKET order with ``price`` = protection price (ticks) and
    ``protection_ticks`` = the domain's extra bound (0: none). Rewrite it for the kernel."""
    assert int(cmds["op"][i]) == OP_MARKET
    limit = int(cmds["price"][i])
    extra = int(cmds["protection_ticks"][i])
    side = int(cmds["side"][i])
    if limit <= 0:
        cmds["price"][i] = -1 if limit == 0 else limit  # the kernel rejects it: bad price
        return
    if extra < 0:
        cmds["price"][i] = 0  # the kernel rejects it: bad protection
        return
    if side == SIDE_BUY:
        best = book.best_ask()
        room = limit - best
    elif side == SIDE_SELL:
        best = book.best_bid()
        room = best - limit
    else:
        cmds["price"][i] = 0  # the kernel rejects it: bad side
        cmds["protection_ticks"][i] = PROTECTION_NONE
        return
    if best == 0:
        # Nothing to trade against: the order expires (no liquidity) whatever its bound.
        cmds["price"][i] = 0
        cmds["protection_ticks"][i] = PROTECTION_NONE
    elif room < 0:
        # The best price is already beyond the protection price: nothing may fill. An IOC at
        # the protection price does exactly that (it expires, or the band rejects it).
        cmds["op"][i] = OP_LIMIT_IOC
    else:
        cmds["price"][i] = 0
        cmds["protection_ticks"][i] = min(room, extra) if extra > 0 else room


def resolve_amend(book: Book, cmds: np.ndarray, i: int) -> None:
    """Row i is an amend with 0 meaning "keep": take side, price and total qty from the book."""
    found = live_order(book, int(cmds["order_id"][i]))
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


def run_book(
    book: Book, cmds: np.ndarray, resolvers: list[tuple[int, Resolver]], out: OutputBuffers
) -> BatchResult:
    """Process ``cmds`` (resolving rows first where listed, in increasing row order); return
    copies of all outputs with ``cmd_index`` relative to ``cmds``."""
    if not resolvers:
        return book.process_all(cmds, out)
    parts: list[BatchResult] = []
    start = 0
    for index, resolve in resolvers:
        assert start <= index < cmds.shape[0], "resolvers out of order"
        if index > start:
            parts.append(_shifted(book.process_all(cmds[start:index], out), start))
        resolve(book, cmds, index)
        start = index
    parts.append(_shifted(book.process_all(cmds[start:], out), start))
    return BatchResult(
        sum(p.n_commands for p in parts),
        np.concatenate([p.trades for p in parts]),
        np.concatenate([p.events for p in parts]),
        np.concatenate([p.l2 for p in parts]),
    )


def _shifted(part: BatchResult, start: int) -> BatchResult:
    part.trades["cmd_index"] += start
    part.events["cmd_index"] += start
    part.l2["cmd_index"] += start
    return part
