"""One test per semantic rule, each run through the engine and the reference book."""

from __future__ import annotations

import pytest

from tests.matching.twin import Twin, kinds, trades
from tradex.matching import constants as k
from tradex.matching.commands import amend, cancel, gtc, market, order, rules

BUY, SELL = k.SIDE_BUY, k.SIDE_SELL


def test_price_time_priority_and_maker_price() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 101, 5), gtc(SELL, 2, 100, 5), gtc(SELL, 3, 100, 5))
    res = t.run(gtc(BUY, 4, 102, 12))
    assert trades(res) == [(2, 4, 100, 5), (3, 4, 100, 5), (1, 4, 101, 2)]
    assert t.live() == [(1, 1, SELL, 101, 3, 2)]
    l2 = [(int(d["side"]), int(d["price"]), int(d["qty"])) for d in res.l2]
    assert l2 == [(SELL, 100, 0), (SELL, 101, 3)]  # one delta per level touched


def test_gtc_rest_rests_at_back_of_level() -> None:
    t = Twin()
    t.run(gtc(BUY, 1, 100, 5), gtc(SELL, 2, 99, 3))
    assert t.live() == [(1, 1, BUY, 100, 2, 3)]
    res = t.run(gtc(SELL, 3, 100, 4))
    assert trades(res) == [(1, 3, 100, 2)]
    assert t.live() == [(3, 3, SELL, 100, 2, 2)]
    assert (k.EV_RESTED, 3, k.REASON_NONE) in kinds(res)


def test_ioc_remainder_expires_and_never_rests() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 2))
    res = t.run(order(k.OP_LIMIT_IOC, BUY, 2, 101, 5))
    assert trades(res) == [(1, 2, 100, 2)]
    assert kinds(res)[-1] == (k.EV_EXPIRED, 2, k.REASON_IOC_REMAINDER)
    assert t.live() == []


def test_fok_fills_completely_or_not_at_all() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 3), gtc(SELL, 2, 101, 3))
    res = t.run(order(k.OP_LIMIT_FOK, BUY, 3, 101, 7))
    assert trades(res) == []
    assert kinds(res)[-1] == (k.EV_EXPIRED, 3, k.REASON_FOK_UNFILLABLE)
    res = t.run(order(k.OP_LIMIT_FOK, BUY, 4, 101, 6))
    assert trades(res) == [(1, 4, 100, 3), (2, 4, 101, 3)]
    assert kinds(res)[-1] == (k.EV_FILLED, 4, k.REASON_NONE)


def test_fok_meeting_own_order_with_stp_is_killed() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 3, owner=9), gtc(SELL, 2, 100, 3, owner=8))
    res = t.run(order(k.OP_LIMIT_FOK, BUY, 3, 100, 4, owner=8, stp_mode=k.STP_CANCEL_OLDEST))
    assert trades(res) == []
    assert kinds(res)[-1] == (k.EV_EXPIRED, 3, k.REASON_SELF_TRADE)


def test_post_only_rejected_when_it_would_trade_else_rests() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 3))
    res = t.run(order(k.OP_POST_ONLY, BUY, 2, 100, 1))
    assert kinds(res) == [(k.EV_REJECTED, 2, k.REASON_POST_ONLY_WOULD_TRADE)]
    res = t.run(order(k.OP_POST_ONLY, BUY, 3, 99, 1))
    assert kinds(res) == [(k.EV_ACCEPTED, 3, 0), (k.EV_RESTED, 3, 0)]


def test_market_sweeps_and_protection_stops_it() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 2), gtc(SELL, 2, 102, 2), gtc(SELL, 3, 105, 2))
    res = t.run(market(BUY, 4, 10, protection_ticks=2))  # best 100: up to 102
    assert trades(res) == [(1, 4, 100, 2), (2, 4, 102, 2)]
    assert kinds(res)[-1] == (k.EV_EXPIRED, 4, k.REASON_MARKET_REMAINDER)
    res = t.run(market(BUY, 5, 10))  # no protection: sweeps everything
    assert trades(res) == [(3, 5, 105, 2)]
    assert t.live() == []
    res = t.run(market(SELL, 6, 1))  # empty opposite side: expires
    assert kinds(res) == [(k.EV_ACCEPTED, 6, 0), (k.EV_EXPIRED, 6, k.REASON_MARKET_REMAINDER)]


def test_market_hard_limit_stops_the_sweep_with_or_without_protection() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 2), gtc(SELL, 2, 102, 2), gtc(SELL, 3, 105, 2))
    res = t.run(market(BUY, 4, 10, limit=103))  # never above 103: stops before 105
    assert trades(res) == [(1, 4, 100, 2), (2, 4, 102, 2)]
    assert kinds(res)[-1] == (k.EV_EXPIRED, 4, k.REASON_MARKET_REMAINDER)
    assert res.events[-1]["qty"] == 6
    t.run(gtc(SELL, 5, 101, 1), gtc(SELL, 6, 103, 1))
    # protection 4 from 101 (up to 105) and limit 102: the limit is tighter
    res = t.run(market(BUY, 7, 10, protection_ticks=4, limit=102))
    assert trades(res) == [(5, 7, 101, 1)]
    # protection 1 from 103 (up to 104) and limit 110: the protection is tighter
    res = t.run(market(BUY, 8, 10, protection_ticks=1, limit=110))
    assert trades(res) == [(6, 8, 103, 1)]
    # best already beyond the limit: nothing fills, the order expires (never rests)
    res = t.run(market(BUY, 9, 1, limit=104))
    assert kinds(res) == [(k.EV_ACCEPTED, 9, 0), (k.EV_EXPIRED, 9, k.REASON_MARKET_REMAINDER)]
    # a sell never below its limit
    t.run(gtc(BUY, 10, 99, 2), gtc(BUY, 11, 97, 2))
    res = t.run(market(SELL, 12, 10, limit=98))
    assert trades(res) == [(10, 12, 99, 2)]
    assert t.live() == [(11, 11, BUY, 97, 2, 0), (3, 3, SELL, 105, 2, 0)]


def test_amend_keep_takes_side_price_and_total_from_the_order() -> None:
    def keep(order_id: int, price: int, qty: int, owner: int = 0) -> tuple[int, ...]:
        row = list(amend(SELL, order_id, price, qty, owner))  # the side is ignored
        row[0] = k.OP_AMEND_KEEP
        return tuple(row)

    t = Twin()
    t.run(gtc(BUY, 1, 100, 5), gtc(BUY, 2, 100, 4), gtc(SELL, 3, 105, 1))
    t.run(order(k.OP_LIMIT_IOC, SELL, 9, 100, 1))  # 1 of order 1 fills: 4 left, total 5
    res = t.run(keep(1, 0, 3))  # same price, total 3: in place, priority kept
    assert kinds(res) == [(k.EV_AMENDED, 1, 0)]
    assert t.live()[0] == (1, 1, BUY, 100, 2, 1)
    res = t.run(keep(2, 101, 0))  # a new price, the same total: re-queued at 101
    assert [e[0] for e in kinds(res)] == [k.EV_AMENDED, k.EV_RESTED]
    assert t.engine.order(2) == (BUY, 101, 4, 0)
    res = t.run(keep(2, 0, 0))  # keeps everything: an amend that changes nothing
    assert kinds(res) == [(k.EV_AMENDED, 2, 0)]
    assert kinds(t.run(keep(1, 0, 1))) == [(k.EV_REJECTED, 1, k.REASON_AMEND_QTY_TOO_LOW)]
    assert kinds(t.run(keep(42, 0, 0))) == [(k.EV_REJECTED, 42, k.REASON_UNKNOWN_ORDER)]
    assert kinds(t.run(keep(1, -1, 0))) == [(k.EV_REJECTED, 1, k.REASON_BAD_PRICE)]
    assert kinds(t.run(keep(1, 0, -1))) == [(k.EV_REJECTED, 1, k.REASON_BAD_QTY)]
    assert kinds(t.run(keep(1, 0, 0, owner=7))) == [(k.EV_REJECTED, 1, k.REASON_NOT_OWNER)]
    res = t.run(keep(2, 105, 0))  # crosses the ask at 105: trades as a taker
    assert trades(res) == [(3, 2, 105, 1)]
    # plain OP_AMEND keeps nothing: 0 is a bad price
    assert kinds(t.run(amend(BUY, 1, 0, 3)))[0] == (k.EV_REJECTED, 1, k.REASON_BAD_PRICE)


def test_order_lookup_is_the_live_order_or_none() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 5), gtc(BUY, 2, 99, 3), gtc(BUY, 3, 100, 2))  # 3 fills 2 of 1
    assert t.engine.order(1) == t.ref.order(1) == (SELL, 100, 3, 2)
    assert t.engine.order(2) == t.ref.order(2) == (BUY, 99, 3, 0)
    for gone in (3, 4, 0, -1):  # filled, never existed, not an id
        assert t.engine.order(gone) is None
        assert t.ref.order(gone) is None
    t.run(cancel(2))
    assert t.engine.order(2) is None


def test_cancel_live_and_dead_orders() -> None:
    t = Twin()
    t.run(gtc(BUY, 1, 100, 5))
    assert kinds(t.run(cancel(1, owner=7))) == [(k.EV_REJECTED, 1, k.REASON_NOT_OWNER)]
    assert kinds(t.run(cancel(1))) == [(k.EV_CANCELLED, 1, k.REASON_USER_CANCEL)]
    assert kinds(t.run(cancel(1))) == [(k.EV_REJECTED, 1, k.REASON_UNKNOWN_ORDER)]
    assert kinds(t.run(cancel(42))) == [(k.EV_REJECTED, 42, k.REASON_UNKNOWN_ORDER)]


def test_amend_down_same_price_keeps_priority() -> None:
    t = Twin()
    t.run(gtc(BUY, 1, 100, 5), gtc(BUY, 2, 100, 5))
    res = t.run(amend(BUY, 1, 100, 3))
    assert kinds(res) == [(k.EV_AMENDED, 1, 0)]
    assert t.live()[0] == (1, 1, BUY, 100, 3, 0)


def test_amend_up_or_new_price_loses_priority() -> None:
    t = Twin()
    t.run(gtc(BUY, 1, 100, 5), gtc(BUY, 2, 100, 5))
    t.run(amend(BUY, 1, 100, 6))
    assert [r[0] for r in t.live()] == [2, 1]
    t.run(amend(BUY, 2, 99, 5))
    assert [r[0] for r in t.live()] == [1, 2]


def test_amend_total_quantity_counts_fills_and_crossing_amend_trades() -> None:
    t = Twin()
    t.run(gtc(BUY, 1, 100, 5), gtc(SELL, 2, 100, 2))  # 1 filled 2, remaining 3
    res = t.run(amend(BUY, 1, 100, 2))  # new total 2 <= filled: rejected
    assert kinds(res) == [(k.EV_REJECTED, 1, k.REASON_AMEND_QTY_TOO_LOW)]
    t.run(gtc(SELL, 3, 102, 4))
    res = t.run(amend(BUY, 1, 102, 6))  # remaining 4, crosses at 102
    assert trades(res) == [(3, 1, 102, 4)]
    assert kinds(res)[-1] == (k.EV_FILLED, 1, 0)
    assert kinds(t.run(amend(SELL, 1, 100, 9))) == [(k.EV_REJECTED, 1, k.REASON_UNKNOWN_ORDER)]


def test_amend_side_mismatch_rejected() -> None:
    t = Twin()
    t.run(gtc(BUY, 1, 100, 5))
    assert kinds(t.run(amend(SELL, 1, 100, 3))) == [(k.EV_REJECTED, 1, k.REASON_SIDE_MISMATCH)]


@pytest.mark.parametrize(
    ("mode", "taker_events", "live_ids", "n_trades"),
    [
        (k.STP_NONE, [(k.EV_FILLED, 3, 0)], [2], 1),
        (k.STP_CANCEL_NEWEST, [(k.EV_CANCELLED, 3, k.REASON_SELF_TRADE)], [1, 2], 0),
        (k.STP_CANCEL_OLDEST, [(k.EV_FILLED, 3, 0)], [], 1),
        (k.STP_CANCEL_BOTH, [(k.EV_CANCELLED, 3, k.REASON_SELF_TRADE)], [2], 0),
    ],
)
def test_self_trade_prevention_modes(
    mode: int, taker_events: list, live_ids: list, n_trades: int
) -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 4, owner=7), gtc(SELL, 2, 100, 4, owner=8))
    res = t.run(gtc(BUY, 3, 100, 4, owner=7, stp_mode=mode))
    assert len(res.trades) == n_trades
    assert kinds(res)[-1:] == taker_events
    assert [r[0] for r in t.live()] == live_ids


def test_decrement_and_cancel() -> None:
    t = Twin()
    t.run(gtc(SELL, 1, 100, 3, owner=7), gtc(SELL, 2, 100, 4, owner=8))
    res = t.run(gtc(BUY, 3, 100, 5, owner=7, stp_mode=k.STP_DECREMENT_AND_CANCEL))
    # maker 1 (3) reaches 0: cancelled; taker 5 -> 2 (decremented), then trades 2 with maker 2.
    assert kinds(res)[1:3] == [
        (k.EV_CANCELLED, 1, k.REASON_SELF_TRADE),
        (k.EV_DECREMENTED, 3, k.REASON_SELF_TRADE),
    ]
    assert trades(res) == [(2, 3, 100, 2)]
    t2 = Twin()
    t2.run(gtc(SELL, 1, 100, 5, owner=7))
    res = t2.run(gtc(BUY, 3, 100, 2, owner=7, stp_mode=k.STP_DECREMENT_AND_CANCEL))
    assert kinds(res)[1:] == [
        (k.EV_DECREMENTED, 1, k.REASON_SELF_TRADE),
        (k.EV_CANCELLED, 3, k.REASON_SELF_TRADE),
    ]
    assert t2.live() == [(1, 7, SELL, 100, 3, 0)]


def test_price_band_against_last_trade_then_mid() -> None:
    t = Twin()
    t.run(rules(100, 0))  # 1 %
    t.run(gtc(BUY, 1, 1000, 1), gtc(SELL, 2, 1010, 1))  # no reference yet: no check
    assert kinds(t.run(gtc(BUY, 3, 1016, 1)))[0] == (
        k.EV_REJECTED,
        3,
        k.REASON_PRICE_BAND,
    )  # mid 1005
    t.run(gtc(BUY, 4, 1010, 1))  # trades: last = 1010
    assert kinds(t.run(gtc(BUY, 5, 1021, 1)))[0] == (k.EV_REJECTED, 5, k.REASON_PRICE_BAND)
    assert kinds(t.run(gtc(BUY, 6, 1020, 1)))[0] == (k.EV_ACCEPTED, 6, 0)


def test_halt_rejects_orders_and_amends_but_accepts_cancels() -> None:
    t = Twin()
    t.run(gtc(BUY, 1, 100, 5), rules(0, 1))
    assert kinds(t.run(gtc(BUY, 2, 100, 5)))[0] == (k.EV_REJECTED, 2, k.REASON_HALTED)
    # an amend of the requester's live order: refused, the row carrying the order's terms
    # (the account gets them confirmed); of an unknown or another owner's order: plain halted
    res = t.run(amend(BUY, 1, 101, 3))
    assert kinds(res) == [(k.EV_REJECTED, 1, k.REASON_AMEND_HALTED)]
    e = res.events[0]
    assert (int(e["price"]), int(e["qty"]), int(e["filled"])) == (100, 5, 0)
    assert kinds(t.run(amend(BUY, 7, 100, 3)))[0] == (k.EV_REJECTED, 7, k.REASON_HALTED)
    assert kinds(t.run(amend(BUY, 1, 100, 3, 9)))[0] == (k.EV_REJECTED, 1, k.REASON_HALTED)
    assert kinds(t.run(cancel(1)))[0] == (k.EV_CANCELLED, 1, k.REASON_USER_CANCEL)
    assert kinds(t.run(rules(0, 2))) == [(k.EV_REJECTED, 0, k.REASON_BAD_RULES)]
    t.run(rules(0, 0))
    assert kinds(t.run(gtc(BUY, 2, 100, 5)))[0] == (k.EV_ACCEPTED, 2, 0)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (order(k.OP_LIMIT_GTC, 2, 1, 100, 1), k.REASON_BAD_SIDE),
        (order(k.OP_LIMIT_GTC, BUY, -1, 100, 1, owner=1), k.REASON_BAD_ID),
        (order(k.OP_LIMIT_GTC, BUY, 1, 100, 0), k.REASON_BAD_QTY),
        (order(k.OP_LIMIT_GTC, BUY, 1, 0, 1), k.REASON_BAD_PRICE),
        (order(k.OP_MARKET, BUY, 1, -5, 1), k.REASON_BAD_PRICE),
        (order(k.OP_MARKET, BUY, 1, 0, 1, protection_ticks=-2), k.REASON_BAD_PROTECTION),
        (order(k.OP_LIMIT_GTC, BUY, 1, 100, 1, stp_mode=9), k.REASON_BAD_STP),
        (order(99, BUY, 1, 100, 1), k.REASON_BAD_OP),
    ],
)
def test_invalid_commands_are_rejected_and_change_nothing(row: tuple, reason: int) -> None:
    t = Twin()
    t.run(gtc(SELL, 50, 200, 1))
    before = t.engine.state_hash()
    res = t.run(row)
    assert [(e[0], e[2]) for e in kinds(res)] == [(k.EV_REJECTED, reason)]
    assert t.live() == [(50, 50, SELL, 200, 1, 0)]
    assert t.engine.seq == 4  # accepted, rested, L2 of order 50, then the rejection
    assert before != t.engine.state_hash()  # only the sequence number moved


def test_duplicate_live_id_and_price_window() -> None:
    t = Twin()
    t.run(gtc(BUY, 1, 5000, 1))
    assert kinds(t.run(gtc(SELL, 1, 5100, 1))) == [(k.EV_REJECTED, 1, k.REASON_DUPLICATE_ID)]
    far = 5000 + 4096
    assert kinds(t.run(gtc(SELL, 2, far, 1))) == [(k.EV_REJECTED, 2, k.REASON_PRICE_OUT_OF_RANGE)]
    assert (
        kinds(t.run(order(k.OP_LIMIT_IOC, SELL, 3, far, 1)))[-1][0] == k.EV_EXPIRED
    )  # IOC never rests


def test_sequence_numbers_are_shared_and_dense() -> None:
    t = Twin()
    res = t.run(gtc(SELL, 1, 100, 2), gtc(BUY, 2, 100, 5), cancel(2))
    seqs = sorted(
        [int(x) for x in res.trades["seq"]]
        + [int(x) for x in res.events["seq"]]
        + [int(x) for x in res.l2["seq"]]
    )
    assert seqs == list(range(1, len(seqs) + 1))
    assert sorted(set(res.events["cmd_index"].tolist())) == [0, 1, 2]
