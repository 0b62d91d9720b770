"""Test helper: run the same commands through the engine and the reference book."""

from __future__ import annotations

import numpy as np

from tradex.matching.book import BatchResult, Book, OutputBuffers
from tradex.matching.commands import Command, batch
from tradex.matching.reference import ReferenceBook

ORDERS_MAX = 256
PRICE_LEVELS_MAX = 4096


class Twin:
    """An engine book and a reference book fed the same commands; outputs must agree."""

    def __init__(self, orders_max: int = ORDERS_MAX) -> None:
        self.engine = Book(orders_max=orders_max, price_levels_max=PRICE_LEVELS_MAX)
        self.ref = ReferenceBook(orders_max=orders_max, price_levels_max=PRICE_LEVELS_MAX)
        self.out = OutputBuffers(orders_max)

    def run(self, *rows: Command) -> BatchResult:
        cmds = batch(list(rows))
        got = self.engine.process_all(cmds, self.out)
        want = self.ref.process(cmds)
        for name in ("trades", "events", "l2"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), (
                f"{name}:\n engine    {getattr(got, name)}\n reference {getattr(want, name)}"
            )
        assert self.engine.state_hash() == self.ref.state_hash()
        self.engine.validate_internal_state()
        self.ref.validate_internal_state()
        return got

    def live(self) -> list[tuple[int, ...]]:
        """(order_id, owner, side, price, remaining, filled) in canonical order."""
        return [tuple(r) for r in self.engine.live_orders().tolist()]


def kinds(res: BatchResult) -> list[tuple[int, int, int]]:
    """(kind, order_id, reason) per event."""
    return [(int(e["kind"]), int(e["order_id"]), int(e["reason"])) for e in res.events]


def trades(res: BatchResult) -> list[tuple[int, int, int, int]]:
    """(maker_id, taker_id, price, qty) per trade."""
    return [
        (int(t["maker_id"]), int(t["taker_id"]), int(t["price"]), int(t["qty"])) for t in res.trades
    ]
