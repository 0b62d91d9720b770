"""A market maker to copy: quotes one lot-size on each side around the mid, leaning
against its inventory, and requotes on every call.

Run it over the recorded stream of a topic prefix (docs/backtest.md):

    tradex backtest --prefix demo- --out /tmp/mm --strategy examples/market_maker.py:MarketMaker \
        --strategy-instrument 1 --every 20

Everything it needs is in the ``View`` (top of book, last price, its fills, its resting
orders, inventory); everything it does is a list of ``Place`` / ``Cancel``. Prices are
ticks and quantities lots, integers, as in the engine.
"""

from __future__ import annotations

from tradex.backtest.strategy import Action, Cancel, Place, View


class MarketMaker:
    half_spread_ticks = 1  # quote this far from the mid
    size_lots = 2  # per side
    inventory_max_lots = 10  # stop buying (selling) beyond this long (short) position
    skew_ticks_per_lot = 0.2  # move both quotes against the inventory

    def __init__(self) -> None:
        self.fills = 0

    def __call__(self, view: View) -> list[Action]:
        self.fills += len(view.fills)
        actions: list[Action] = [Cancel(o.order_id) for o in view.open_orders]
        if view.bids and view.asks:
            mid2 = view.bids[0][0] + view.asks[0][0]  # twice the mid, in ticks
        elif view.last_price:
            mid2 = 2 * view.last_price
        else:
            return actions  # nothing to quote around yet
        skew = round(view.inventory_lots * self.skew_ticks_per_lot)
        bid = mid2 // 2 - self.half_spread_ticks - skew
        ask = -(-mid2 // 2) + self.half_spread_ticks - skew
        if bid > 0 and view.inventory_lots < self.inventory_max_lots:
            actions.append(Place("BUY", bid, self.size_lots, "POST_ONLY"))
        if view.inventory_lots > -self.inventory_max_lots:
            actions.append(Place("SELL", ask, self.size_lots, "POST_ONLY"))
        return actions
