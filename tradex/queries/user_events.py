"""An account's channel entries as Binance's user-data events (docs/api.md, *User data
stream*).

| account entry | Binance event |
|---|---|
| ``OrderAccepted`` | ``executionReport`` x=NEW |
| ``OrderRejected`` | ``executionReport`` x=REJECTED (``r``: the reason) |
| ``FillSettled`` | ``executionReport`` x=TRADE, X=PARTIALLY_FILLED / FILLED |
| ``OrderAmended`` | ``executionReport`` x=REPLACED (the new price and quantity) |
| ``AmendSettled`` | nothing of its own (the order's terms become the engine's, for later reports; the hold it released: the position below) |
| ``HoldReleased`` CANCELLED / EXPIRED / REJECTED | ``executionReport`` x=CANCELED / EXPIRED / REJECTED (FILLED: the last TRADE said it) |
| ``CancelRequested`` | nothing (its id is the CANCELED report's ``c``; ``C`` the order's) |
| ``Deposited``, ``WithdrawalPaid`` | ``balanceUpdate`` (``d``: + / − the amount) |
| every entry that changed balances | ``outboundAccountPosition`` (those assets, after it) |

The account channel carries the account's own records only (docs/redis.md), so the order
a fill or an end belongs to — its symbol, client id, quantity and what it has filled so
far — is state: :class:`UserEvents` keeps it for the orders it has seen accepted, and
asks ``lookup`` (the PostgreSQL read model) the first time it meets an order accepted
before the stream started. One :class:`UserEvents` renders one stream's entries in
order, each once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tradex.queries.binance_format import KIND_TO_BINANCE, STP_TO_BINANCE, ms
from tradex.queries.markets import Market, fmt_amount

Entry = tuple[int, dict[str, Any]]
ORDERS_MAX = 10_000  # orders remembered by one stream (the oldest forgotten beyond)
END_EXECUTION = {"CANCELLED": "CANCELED", "EXPIRED": "EXPIRED", "REJECTED": "REJECTED"}
BALANCE_DELTA_SIGN = {"Deposited": 1, "WithdrawalPaid": -1}


@dataclass
class OrderState:
    market: Market
    client_id: str
    side: str
    kind: str
    price: int  # ticks
    qty: int  # lots
    created_ms: int
    filled: int = 0  # lots
    notional: int = 0  # Σ price·qty, ticks·lots
    cancel_id: str = ""  # the cancel command's id, once requested
    stp_mode: str = "NONE"  # TradeX's name (StpMode)


# (account, order id, the fill's trade id or None) -> the order as the read model has it,
# its fills before that trade counted in ``filled``/``notional``; None: not known there
Lookup = Callable[[int, int | None], Awaitable[OrderState | None]]
MarketOf = Callable[[int], Awaitable[Market | None]]


class UserEvents:
    def __init__(
        self, market_of: MarketOf, scales: Callable[[], Awaitable[dict[str, int]]],
        lookup: Lookup,
    ) -> None:  # fmt: skip
        self.market_of = market_of
        self.scales = scales
        self.lookup = lookup
        self.orders: dict[int, OrderState] = {}
        self.last_seq = 0

    async def render(self, entries: list[Entry]) -> list[dict[str, Any]]:
        """The Binance events of consecutive entries, in order (an entry already rendered
        is skipped: each is rendered once)."""
        out: list[dict[str, Any]] = []
        for seq, fields in entries:
            if seq <= self.last_seq:
                continue
            self.last_seq = seq
            out += await self._entry(fields)
        return out

    async def _entry(self, fields: dict[str, Any]) -> list[dict[str, Any]]:
        kind = fields["type"]
        time_ms = ms(fields.get("event_time_ns"))
        out: list[dict[str, Any]] = []
        state: OrderState | None
        if kind in ("OrderAccepted", "OrderRejected"):
            market = await self.market_of(int(fields["instrument_id"]))
            if market is not None:
                # (an OrderRejected entry carries no self-trade prevention mode)
                state = OrderState(market, str(fields["command_id"]), str(fields["side"]),
                                   str(fields["kind"]), int(fields["price"]),
                                   int(fields["qty"]), time_ms,
                                   stp_mode=str(fields.get("stp_mode", "NONE")))  # fmt: skip
                if kind == "OrderAccepted":
                    self._remember(int(fields["order_id"]), state)
                    out.append(report(state, fields, "NEW", "NEW", time_ms))
                else:
                    out.append(report(state, fields, "REJECTED", "REJECTED", time_ms,
                                      reject=str(fields["reason"])))  # fmt: skip
        elif kind == "FillSettled":
            state = await self._order(int(fields["order_id"]), int(fields["trade_id"]))
            if state is not None:
                out.append(fill_report(state, fields, time_ms))
        elif kind == "OrderAmended":
            state = await self._order(int(fields["order_id"]), None)
            if state is not None:
                # 0 keeps a field (ModifyOrder)
                state.price = int(fields["new_price"]) or state.price
                state.qty = int(fields["new_qty"]) or state.qty
                out.append(report(state, fields, "REPLACED", status_of(state), time_ms))
        elif kind == "AmendSettled":  # the engine applied it: its terms from now on
            state = self.orders.get(int(fields["order_id"]))  # unknown: looked up when needed
            if state is not None:
                state.price, state.qty = int(fields["price"]), int(fields["qty"])
        elif kind == "CancelRequested":
            state = await self._order(int(fields["order_id"]), None)
            if state is not None:
                state.cancel_id = str(fields["command_id"])
        elif kind == "HoldReleased":
            out += await self._ended(fields, time_ms)
        elif kind in BALANCE_DELTA_SIGN:
            scale = (await self.scales()).get(str(fields["asset"]))
            if scale is not None:
                delta = BALANCE_DELTA_SIGN[kind] * int(fields["amount"])
                out.append({"e": "balanceUpdate", "E": time_ms, "a": fields["asset"],
                            "d": fmt_amount(delta, scale), "T": time_ms})  # fmt: skip
        if fields.get("balances"):
            out.append(await self._position(fields["balances"], time_ms))
        return out

    async def _ended(self, fields: dict[str, Any], time_ms: int) -> list[dict[str, Any]]:
        order_id = int(fields["order_id"])
        execution = END_EXECUTION.get(str(fields["end_reason"]))
        state = await self._order(order_id, None) if execution is not None else None
        self.orders.pop(order_id, None)
        if state is None or execution is None:
            return []
        return [report(state, fields, execution, execution, time_ms)]

    async def _position(self, balances: dict[str, Any], time_ms: int) -> dict[str, Any]:
        scales = await self.scales()
        rows = []
        for asset, (available, held) in sorted(balances.items()):
            scale = scales.get(asset)
            if scale is None:
                continue
            rows.append({"a": asset, "f": fmt_amount(int(available), scale),
                         "l": fmt_amount(int(held), scale)})  # fmt: skip
        return {"e": "outboundAccountPosition", "E": time_ms, "u": time_ms, "B": rows}

    async def _order(self, order_id: int, trade_id: int | None) -> OrderState | None:
        state = self.orders.get(order_id)
        if state is None:
            state = await self.lookup(order_id, trade_id)
            if state is not None:
                self._remember(order_id, state)
        return state

    def _remember(self, order_id: int, state: OrderState) -> None:
        self.orders[order_id] = state
        while len(self.orders) > ORDERS_MAX:
            del self.orders[next(iter(self.orders))]
        assert len(self.orders) <= ORDERS_MAX


def status_of(state: OrderState) -> str:
    if state.filled == 0:
        return "NEW"
    return "FILLED" if state.filled >= state.qty else "PARTIALLY_FILLED"


def fill_report(state: OrderState, fields: dict[str, Any], time_ms: int) -> dict[str, Any]:
    price, qty = int(fields["price"]), int(fields["qty"])
    assert qty > 0, fields
    state.filled += qty
    state.notional += price * qty
    market = state.market
    found = report(state, fields, "TRADE", status_of(state), time_ms)
    found.update({
        "l": market.fmt_qty(qty), "L": market.fmt_price(price),
        "n": market.fmt_quote(int(fields["fee"])), "N": market.quote,
        "t": int(fields["trade_id"]), "m": fields["liquidity"] == "MAKER",
        "Y": market.fmt_notional(price * qty),
    })  # fmt: skip
    return found


def report(
    state: OrderState, fields: dict[str, Any], execution: str, status: str, time_ms: int,
    reject: str = "NONE",
) -> dict[str, Any]:  # fmt: skip
    """Binance's ``executionReport`` of ``state`` (no trade in it: see :func:`fill_report`)."""
    market = state.market
    order_type, tif = KIND_TO_BINANCE[state.kind]
    client_id, original = state.client_id, ""
    if execution == "CANCELED" and state.cancel_id:
        client_id, original = state.cancel_id, state.client_id
    working = status in ("NEW", "PARTIALLY_FILLED")
    return {
        "e": "executionReport", "E": time_ms, "s": market.binance, "c": client_id,
        "S": state.side, "o": order_type, "f": tif, "q": market.fmt_qty(state.qty),
        "p": market.fmt_price(0 if order_type == "MARKET" else state.price),
        "P": market.fmt_price(0), "F": market.fmt_qty(0), "g": -1, "C": original,
        "x": execution, "X": status, "r": reject, "i": int(fields["order_id"]),
        "l": market.fmt_qty(0), "z": market.fmt_qty(state.filled), "L": market.fmt_price(0),
        "n": "0", "N": None, "T": time_ms, "t": -1, "w": working, "m": False, "M": False,
        "O": state.created_ms, "Z": market.fmt_notional(state.notional),
        "Y": market.fmt_notional(0), "Q": market.fmt_quote(0), "W": state.created_ms,
        "V": STP_TO_BINANCE.get(state.stp_mode, "NONE"),
    }  # fmt: skip
