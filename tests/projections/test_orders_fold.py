"""The orders fold merges the two topics' facts to the same rows in any interleaving."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradex import domain
from tradex.domain import engine
from tradex.domain.journal import Posting
from tradex.domain.types import EndReason, Liquidity, OrderKind, Reason, Side
from tradex.projections import orders_fold

T = 1_700_000_000_000_000_000
BUYER, SELLER, POOR = 11, 12, 13
BUY_ORDER, SELL_ORDER, REJECTED_ORDER, CANCELLED_ORDER = 101, 102, 103, 104


def _settled(order_id: int, account: int, side: Side, qty: int, trade_id: int, t: int) -> Any:
    notional = 10 * qty
    fee = qty
    postings = (Posting(account, "USD", -notional), Posting(-3, "USD", notional))
    return domain.FillSettled(
        f"fill-{order_id}-{trade_id}", account, t, order_id, trade_id, 1, side,
        Liquidity.MAKER if side == Side.BUY else Liquidity.TAKER, 10, qty, notional, fee,
        fee * 10, "USD", notional, postings,
    )  # fmt: skip


# the engine's AmendConfirmed of the buy order's first amend (AmendApplied at T + 8)
# settled on the account side: part of its hold released
AMEND_SETTLED = domain.AmendSettled(
    command_id=f"amend/{BUY_ORDER}/{T + 4}", account_id=BUYER, event_time_ns=T + 11,
    order_id=BUY_ORDER, instrument_id=1, price=10, qty=9, price_bound=10, qty_bound=9,
    hold_asset="USD", hold_released=9, amend_time_ns=T + 4,
)  # fmt: skip


# Each order's facts as the two topics carry them (in each topic's own order).
# fmt: off
ACCOUNT: list[Any] = [
    domain.OrderAccepted(
        "c-buy", BUYER, T, BUY_ORDER, 1, Side.BUY, OrderKind.GTC, 10, 8, 0, "NONE", "BTC", "USD",
        1, 1000, 1000, 2000, "USD", 100,
    ),
    domain.OrderAccepted(
        "c-sell", SELLER, T + 1, SELL_ORDER, 1, Side.SELL, OrderKind.IOC, 10, 6, 0, "NONE",
        "BTC", "USD", 1, 1000, 1000, 2000, "BTC", 6000,
    ),
    domain.OrderRejected(
        "c-poor", POOR, T + 2, 1, Side.BUY, OrderKind.GTC, 10, 1000, Reason.INSUFFICIENT_FUNDS,
        "0 USD available", order_id=REJECTED_ORDER,
    ),
    domain.OrderAccepted(
        "c-cancel", POOR, T + 3, CANCELLED_ORDER, 1, Side.BUY, OrderKind.GTC, 9, 1, 0, "NONE",
        "BTC", "USD", 1, 1000, 1000, 2000, "USD", 10,
    ),
    _settled(BUY_ORDER, BUYER, Side.BUY, 4, 1, T + 10),
    _settled(SELL_ORDER, SELLER, Side.SELL, 4, 1, T + 10),
    AMEND_SETTLED,
    domain.CancelRequested("c-x", POOR, T + 11, CANCELLED_ORDER, 1),
    domain.HoldReleased("end-sell", SELLER, T + 12, SELL_ORDER, "BTC", 2000, EndReason.EXPIRED),
    domain.HoldReleased("end-x", POOR, T + 13, CANCELLED_ORDER, "USD", 10, EndReason.CANCELLED),
    _settled(BUY_ORDER, BUYER, Side.BUY, 4, 2, T + 20),
    domain.HoldReleased("end-buy", BUYER, T + 21, BUY_ORDER, "USD", 0, EndReason.FILLED),
]
ENGINE: list[Any] = [
    engine.Accepted(1, BUY_ORDER, BUYER, Side.BUY, OrderKind.GTC, 10, 8, T + 5),
    engine.Rested(1, BUY_ORDER, BUYER, Side.BUY, 10, 8, T + 5),
    engine.Accepted(1, CANCELLED_ORDER, POOR, Side.BUY, OrderKind.GTC, 9, 1, T + 5),
    engine.Rested(1, CANCELLED_ORDER, POOR, Side.BUY, 9, 1, T + 5),
    engine.Accepted(1, SELL_ORDER, SELLER, Side.SELL, OrderKind.IOC, 10, 6, T + 6),
    engine.Trade(1, 1, 10, 4, Side.SELL, BUY_ORDER, BUYER, SELL_ORDER, SELLER, T + 6),
    engine.Expired(1, SELL_ORDER, SELLER, 2, Reason.NO_LIQUIDITY, "ioc_remainder", T + 6),
    engine.Rejected(1, BUY_ORDER, BUYER, Reason.UNKNOWN_ORDER, "AmendOrder", "x", T + 7),
    engine.AmendApplied(1, BUY_ORDER, BUYER, 10, 9, False, T + 8),
    engine.AmendApplied(1, BUY_ORDER, BUYER, 10, 8, False, T + 9),
    engine.Cancelled(1, CANCELLED_ORDER, POOR, 1, Reason.UNKNOWN, "user_cancel", T + 12),
    engine.Trade(1, 2, 10, 4, Side.SELL, BUY_ORDER, BUYER, 200, 14, T + 15),
    engine.Filled(1, BUY_ORDER, BUYER, Side.BUY, 8, T + 15),
]
# fmt: on


def fold(stream: list[tuple[bool, int, Any]], cuts: list[int]) -> dict[int, list[Any]]:
    """Batches cut at ``cuts``: merged within a batch, then into the stored rows."""
    stored: dict[int, list[Any]] = {}
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for start, end in itertools.pairwise(bounds):
        batch: dict[int, list[Any]] = {}
        for engine_side, offset, body in stream[start:end]:
            for fact in orders_fold.facts(engine_side, offset, body):
                orders_fold.apply(batch, fact)
        for order_id, row in batch.items():
            known = stored.get(order_id)
            stored[order_id] = row if known is None else orders_fold.merge(list(known), row)
    return stored


def interleave(choices: list[bool]) -> list[tuple[bool, int, Any]]:
    """The two topics interleaved as ``choices`` says (True: the engine's next record),
    each topic's own order kept."""
    account, engine_events = list(enumerate(ACCOUNT)), list(enumerate(ENGINE))
    stream: list[tuple[bool, int, Any]] = []
    for pick_engine in choices:
        source = engine_events if (pick_engine and engine_events) or not account else account
        offset, body = source.pop(0)
        stream.append((source is engine_events, offset, body))
    for offset, body in account:
        stream.append((False, offset, body))
    for offset, body in engine_events:
        stream.append((True, offset, body))
    return stream


EXPECTED = fold(interleave([False] * len(ACCOUNT)), [])  # all account, then all engine


def test_the_reference_fold_is_what_the_orders_did() -> None:
    status = {order_id: orders_fold.status(row) for order_id, row in EXPECTED.items()}
    assert status == {
        BUY_ORDER: "FILLED",
        SELL_ORDER: "EXPIRED",
        REJECTED_ORDER: "REJECTED",
        CANCELLED_ORDER: "CANCELLED",
        200: "PARTIALLY_FILLED",  # only its trade is known: the account side is elsewhere
    }
    buy = dict(zip(orders_fold.NAMES, EXPECTED[BUY_ORDER], strict=True))
    assert buy["command_id"] == "c-buy"
    assert (buy["filled_qty"], buy["filled_notional"], buy["trades"]) == (8, 80, 2)
    assert (buy["settled_qty"], buy["settled_notional"], buy["fees"]) == (8, 80, 8)
    assert (buy["amended_price"], buy["amended_qty"]) == (10, 8), "the newest amend wins"
    # (its AmendSettled, of the first amend, on the account topic, picks no terms: the
    # engine's offsets order amends, the account's do not order against them)
    assert buy["refused_request"] == "AmendOrder"
    assert buy["created_time_ns"] == T and buy["updated_time_ns"] == T + 21
    rejected = dict(zip(orders_fold.NAMES, EXPECTED[REJECTED_ORDER], strict=True))
    assert rejected["reject_reason"] == "INSUFFICIENT_FUNDS"


@settings(max_examples=300, deadline=None)
@given(
    choices=st.lists(st.booleans(), max_size=len(ACCOUNT) + len(ENGINE)),
    cuts=st.lists(st.integers(0, len(ACCOUNT) + len(ENGINE)), max_size=8),
)
def test_any_interleaving_and_any_batches_give_the_same_rows(
    choices: list[bool], cuts: list[int]
) -> None:
    assert fold(interleave(choices), cuts) == EXPECTED


def test_contradicting_facts_are_refused_in_a_batch_and_across_batches() -> None:
    accepted = next(iter(orders_fold.facts(False, 0, ACCOUNT[0])))
    other = next(iter(orders_fold.facts(True, 0, ENGINE[0]._replace(price=11))))
    with pytest.raises(AssertionError, match="price"):
        orders_fold.apply({BUY_ORDER: orders_fold.row_of(accepted)}, other)
    with pytest.raises(AssertionError, match="price"):
        orders_fold.merge(orders_fold.row_of(accepted), orders_fold.row_of(other))
    elsewhere = next(iter(orders_fold.facts(False, 9, AMEND_SETTLED._replace(instrument_id=2))))
    with pytest.raises(AssertionError, match="instrument_id is 1 and 2"):
        orders_fold.apply({BUY_ORDER: orders_fold.row_of(accepted)}, elsewhere)


def test_an_amend_settled_states_its_order_and_its_time_only() -> None:
    (fact,) = orders_fold.facts(False, 5, AMEND_SETTLED)
    row = dict(zip(orders_fold.NAMES, orders_fold.row_of(fact), strict=True))
    assert (row["order_id"], row["account_id"], row["instrument_id"]) == (BUY_ORDER, BUYER, 1)
    assert row["created_time_ns"] == row["updated_time_ns"] == T + 11
    assert (row["amend_offset"], row["amended_price"], row["amended_qty"]) == (-1, None, None)
    assert (row["hold_amount"], row["released_amount"], row["price"], row["qty"]) == (
        None, None, None, None,
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.permutations(list(range(len(ACCOUNT) + len(ENGINE)))))
def test_merging_one_event_rows_equals_applying_the_facts(order: list[int]) -> None:
    """merge() of one-fact rows (the stored side's rule) and apply() (the batch's) agree."""
    stream = [(False, i, e) for i, e in enumerate(ACCOUNT)] + [
        (True, i, e) for i, e in enumerate(ENGINE)
    ]
    merged: dict[int, list[Any]] = {}
    for index in order:
        engine_side, offset, body = stream[index]
        for fact in orders_fold.facts(engine_side, offset, body):
            row = orders_fold.row_of(fact)
            known = merged.get(row[0])
            merged[row[0]] = row if known is None else orders_fold.merge(known, row)
    assert merged == EXPECTED
