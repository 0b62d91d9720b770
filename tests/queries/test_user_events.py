"""Account entries as Binance user-data events (no I/O): an order's life (NEW, two TRADEs
up to FILLED, the end reported by the last TRADE), a cancel (the cancel's id in ``c``,
the order's in ``C``), a rejection, an amend and the engine's confirmation of one (the
hold it released), an order accepted before the stream started (looked up once, its
earlier fills counted), deposits and paid withdrawals, every entry rendered once."""

from __future__ import annotations

import asyncio
from typing import Any

from tradex.queries.markets import Market
from tradex.queries.user_events import OrderState, UserEvents

BTCUSD = Market(7, "BTC-USD", "BTCUSD", "BTC", "USD", 8, 2, 1, 100_000, 1_000, 0, 1_000,
                2_000, "TRADING")  # fmt: skip  # tick 10 USD, lot 0.001 BTC
SCALES = {"BTC": 8, "USD": 2}
MS = 1_000_000


def entry(event: str, time_ms: int, balances: dict[str, tuple[int, int]] | None = None,
          **fields: Any) -> dict[str, Any]:  # fmt: skip
    return {"type": event, "event_time_ns": time_ms * MS, "balances": balances or {}, **fields}


def accepted(order_id: int, client_id: str, qty: int, price: int = 6_100) -> dict[str, Any]:
    return entry("OrderAccepted", 1_000, {"USD": (100, 200)}, command_id=client_id,
                 order_id=order_id, instrument_id=7, side="BUY", kind="GTC", price=price,
                 qty=qty)  # fmt: skip


def fill(order_id: int, trade_id: int, qty: int, price: int = 6_100) -> dict[str, Any]:
    return entry("FillSettled", 2_000, {"BTC": (qty * 100_000, 0)}, command_id=f"fill/{trade_id}",
                 order_id=order_id, trade_id=trade_id, instrument_id=7, side="BUY",
                 liquidity="TAKER", price=price, qty=qty, fee=13)  # fmt: skip


class Events:
    def __init__(self, known: dict[int, OrderState] | None = None) -> None:
        self.lookups: list[tuple[int, int | None]] = []
        self.known = known or {}

        async def market_of(instrument_id: int) -> Market | None:
            return BTCUSD if instrument_id == 7 else None

        async def scales() -> dict[str, int]:
            return SCALES

        async def lookup(order_id: int, trade_id: int | None) -> OrderState | None:
            self.lookups.append((order_id, trade_id))
            return self.known.get(order_id)

        self.events = UserEvents(market_of, scales, lookup)

    def render(self, *entries: dict[str, Any], first: int = 1) -> list[dict[str, Any]]:
        numbered = list(enumerate(entries, start=first))
        return asyncio.run(self.events.render(numbered))


def brief(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (m["e"], m["x"], m["X"], m["i"], m["l"], m["z"], m["c"], m["C"])
        if m["e"] == "executionReport" else (m["e"],)
        for m in found
    ]  # fmt: skip


def test_an_orders_life_is_new_then_trades_up_to_filled() -> None:
    events = Events()
    found = events.render(
        accepted(11, "mine-1", qty=3), fill(11, 501, qty=1), fill(11, 502, qty=2),
        entry("HoldReleased", 3_000, {"USD": (290, 0)}, command_id="end/11", order_id=11,
              asset="USD", amount=10, end_reason="FILLED"),
    )  # fmt: skip
    assert brief(found) == [
        ("executionReport", "NEW", "NEW", 11, "0.000", "0.000", "mine-1", ""),
        ("outboundAccountPosition",),
        ("executionReport", "TRADE", "PARTIALLY_FILLED", 11, "0.001", "0.001", "mine-1", ""),
        ("outboundAccountPosition",),
        ("executionReport", "TRADE", "FILLED", 11, "0.002", "0.003", "mine-1", ""),
        ("outboundAccountPosition",),
        ("outboundAccountPosition",),  # the end: FILLED was the last TRADE's
    ]
    new, trade = found[0], found[4]
    assert (new["s"], new["S"], new["o"], new["f"], new["q"], new["p"]) == (
        "BTCUSD",
        "BUY",
        "LIMIT",
        "GTC",
        "0.003",
        "61000",
    )
    assert (trade["L"], trade["n"], trade["N"], trade["t"], trade["m"]) == (
        "61000",
        "0.13",
        "USD",
        502,
        False,
    )
    assert trade["Z"] == "183.00" and trade["Y"] == "122.00" and trade["w"] is False
    assert found[1]["B"] == [{"a": "USD", "f": "1.00", "l": "2.00"}]
    assert events.lookups == [] and events.events.orders == {}


def test_a_cancel_a_rejection_and_an_amend() -> None:
    found = Events().render(
        accepted(12, "mine-2", qty=5),
        entry("OrderAmended", 1_500, command_id="amend-1", order_id=12, instrument_id=7,
              new_price=6_000, new_qty=4, hold_added=0),
        entry("CancelRequested", 1_600, command_id="cancel-1", order_id=12, instrument_id=7),
        entry("HoldReleased", 1_700, command_id="end/12", order_id=12, asset="USD",
              amount=100, end_reason="CANCELLED"),
        entry("OrderRejected", 1_800, command_id="mine-3", order_id=13, instrument_id=7,
              side="SELL", kind="IOC", price=1, qty=1, reason="INSUFFICIENT_FUNDS", detail=""),
    )  # fmt: skip
    reports = [m for m in found if m["e"] == "executionReport"]
    assert brief(reports) == [
        ("executionReport", "NEW", "NEW", 12, "0.000", "0.000", "mine-2", ""),
        ("executionReport", "REPLACED", "NEW", 12, "0.000", "0.000", "mine-2", ""),
        ("executionReport", "CANCELED", "CANCELED", 12, "0.000", "0.000", "cancel-1", "mine-2"),
        ("executionReport", "REJECTED", "REJECTED", 13, "0.000", "0.000", "mine-3", ""),
    ]
    assert (reports[1]["q"], reports[1]["p"]) == ("0.004", "60000")
    assert reports[3]["r"] == "INSUFFICIENT_FUNDS" and reports[3]["f"] == "IOC"


def test_an_order_from_before_the_stream_is_looked_up_once() -> None:
    earlier = OrderState(BTCUSD, "old-1", "SELL", "GTC", 6_200, 4, 500, filled=1,
                         notional=6_200)  # fmt: skip
    events = Events({21: earlier})
    found = events.render(fill(21, 700, qty=3, price=6_200), first=40)
    assert brief(found)[0] == (
        "executionReport",
        "TRADE",
        "FILLED",
        21,
        "0.003",
        "0.004",
        "old-1",
        "",
    )
    assert found[0]["O"] == 500 and found[0]["S"] == "SELL"
    assert events.render(fill(22, 701, qty=1), first=41) == [
        {"e": "outboundAccountPosition", "E": 2_000, "u": 2_000,
         "B": [{"a": "BTC", "f": "0.00100000", "l": "0.00000000"}]},
    ]  # fmt: skip  # an order nobody knows: its balances only
    assert events.lookups == [(21, 700), (22, 701)]


def test_balance_updates_and_each_entry_once() -> None:
    events = Events()
    deposit = entry("Deposited", 5_000, {"USD": (12_345, 0)}, command_id="d1", asset="USD",
                    amount=12_345)  # fmt: skip
    paid = entry("WithdrawalPaid", 6_000, {"USD": (0, 0)}, command_id="w1", withdrawal_id=3,
                 asset="USD", amount=345)  # fmt: skip
    found = events.render(deposit, paid)
    assert [(m["e"], m.get("d")) for m in found] == [
        ("balanceUpdate", "123.45"),
        ("outboundAccountPosition", None),
        ("balanceUpdate", "-3.45"),
        ("outboundAccountPosition", None),
    ]
    assert found[0] == {"e": "balanceUpdate", "E": 5_000, "a": "USD", "d": "123.45", "T": 5_000}
    assert events.render(deposit, paid) == []  # seq 1 and 2 again: already rendered


def test_an_amend_the_engine_confirmed_moves_balances_and_the_orders_terms() -> None:
    """OrderAmended (the quantity only: 0 keeps the price) reports REPLACED with the kept
    price; its AmendSettled (the engine confirmed it) reports no execution of its own: the
    position after the hold it released, and its terms in the order's later reports."""
    events = Events()
    found = events.render(
        accepted(14, "mine-4", qty=5),
        entry("OrderAmended", 1_500, command_id="amend-4", order_id=14, instrument_id=7,
              new_price=0, new_qty=4, hold_added=0),
        entry("AmendSettled", 1_600, {"USD": (160, 140)}, command_id="amend/14/1500",
              order_id=14, instrument_id=7, price=6_000, qty=4, hold_released=60),
        entry("AmendSettled", 1_650, command_id="amend/14/1550", order_id=14,
              instrument_id=7, price=6_000, qty=4, hold_released=0),
        fill(14, 503, qty=1, price=6_000),
    )  # fmt: skip
    assert brief(found) == [
        ("executionReport", "NEW", "NEW", 14, "0.000", "0.000", "mine-4", ""),
        ("outboundAccountPosition",),
        ("executionReport", "REPLACED", "NEW", 14, "0.000", "0.000", "mine-4", ""),
        ("outboundAccountPosition",),  # the AmendSettled's release
        ("executionReport", "TRADE", "PARTIALLY_FILLED", 14, "0.001", "0.001", "mine-4", ""),
        ("outboundAccountPosition",),
    ]
    replaced, position, trade = found[2], found[3], found[4]
    assert (replaced["q"], replaced["p"]) == ("0.004", "61000"), "the price kept"
    assert position["B"] == [{"a": "USD", "f": "1.60", "l": "1.40"}]
    assert (trade["q"], trade["p"]) == ("0.004", "60000"), "the engine's terms"
    assert events.lookups == []
    # an AmendSettled of an order the stream does not know: no lookup, its position only
    assert brief(events.render(
        entry("AmendSettled", 1_700, {"USD": (200, 100)}, command_id="amend/15/1", order_id=15,
              instrument_id=7, price=6_000, qty=4, hold_released=40), first=6,
    )) == [("outboundAccountPosition",)]  # fmt: skip
    assert events.lookups == []


def test_an_orders_self_trade_prevention_mode_is_reported_in_every_report() -> None:
    events = Events()
    decrement = accepted(21, "stp-1", qty=2) | {"stp_mode": "DECREMENT"}
    older = accepted(22, "old-1", qty=2)  # an entry written before the mode was kept
    found = events.render(
        decrement, older, fill(21, 601, qty=1),
        entry("HoldReleased", 3_000, {"USD": (290, 0)}, command_id="end/21", order_id=21,
              asset="USD", amount=10, end_reason="CANCELLED"),
    )  # fmt: skip
    reports = [(m["i"], m["x"], m["V"]) for m in found if m["e"] == "executionReport"]
    assert reports == [
        (21, "NEW", "DECREMENT"), (22, "NEW", "NONE"), (21, "TRADE", "DECREMENT"),
        (21, "CANCELED", "DECREMENT"),
    ]  # fmt: skip
    cancel_taker = accepted(23, "stp-2", qty=1) | {"stp_mode": "CANCEL_TAKER"}
    (report, _position) = events.render(cancel_taker, first=5)
    assert report["V"] == "EXPIRE_TAKER"  # Binance's name of the mode
