"""One valid instance of every bound domain type (for round trips and benchmarks)."""

from __future__ import annotations

from typing import Any

from tradex import domain as d
from tradex.domain.reference import AccountRef, Asset, Instrument, User

T = 1_700_000_000_123_456_789
P = (d.Posting(1, "USD", -1_003), d.Posting(-3, "USD", 1_000), d.Posting(-2, "USD", 3))
INSTRUMENT = Instrument(
    1,
    "BTC-USD",
    d.InstrumentKind.SPOT,
    "BTC",
    "USD",
    1,
    1_000,
    100,
    500,
    1_000,
    2_000,
    d.InstrumentStatus.TRADING,
)


def samples() -> list[Any]:
    fill_postings = (*P[:2], d.Posting(1, "BTC", 3_000), d.Posting(-3, "BTC", -3_000), P[2])
    return [
        d.Deposited("c1", 1, T, "USD", 5, (d.Posting(1, "USD", 5), d.Posting(-1, "USD", -5))),
        d.WithdrawalRequested("c2", 1, T, "c2", "USD", 5),
        d.WithdrawalPaid("c3", 1, T, "c2", "USD", 5, (d.Posting(1, "USD", -5), d.Posting(-1, "USD", 5))),
        d.WithdrawalReleased("c4", 1, T, "c2", "USD", 5),
        d.OrderAccepted("c5", 1, T, 77, 1, d.Side.BUY, d.OrderKind.GTC, 50_000, 3, 0, d.StpMode.NONE, "BTC", "USD", 1, 1_000, 1_000, 2_000, "USD", 150_300),
        d.OrderRejected("c6", 1, T, 1, d.Side.SELL, d.OrderKind.MARKET, 1, 1, d.Reason.INSUFFICIENT_FUNDS, "0 BTC", 78),
        d.CancelRequested("c7", 1, T, 77, 1),
        d.FillSettled("fill/9/77", 1, T, 77, 9, 1, d.Side.BUY, d.Liquidity.TAKER, 1_000, 1, 1_000, 3, 2_000_000, "USD", 1_003, fill_postings),
        d.HoldReleased("end/77", 1, T, 77, "USD", 12, d.EndReason.FILLED),
        d.CommandRejected("c8", 1, T, "Deposit", d.Reason.UNKNOWN_ASSET, "EUR"),
        d.Deposit("c9", 1, T, "USD", 5),
        d.RequestWithdrawal("c10", 1, T, "USD", 5),
        d.ApproveWithdrawal("c11", 1, T, "c10"),
        d.RejectWithdrawal("c12", 1, T, "c10"),
        d.PlaceOrder("c13", 1, T, 1, d.Side.BUY, d.OrderKind.POST_ONLY, 10, 2, 0, d.StpMode.CANCEL_TAKER),
        d.CancelOrder("c14", 1, T, 77),
        d.ModifyOrder("c15", 1, T, 77, 49_999, 4, 7),
        d.CancelAllOrders("c16", 1, T, 1, 7, 77, 99),
        d.OrderAmended("c15", 1, T, 77, 1, 49_999, 4, 50_000, 4, "USD", 50_100, 7),
        d.FillLeg(1, 77, 9, 1, d.Side.BUY, 1_000, 1, d.Liquidity.TAKER, T),
        d.OrderEnded(1, 77, 1, d.EndReason.CANCELLED, T),
        d.AmendConfirmed(1, 77, 1, 49_999, 4, T - 1, T),
        d.AmendSettled("amend/77/1", 1, T, 77, 1, 49_999, 4, 49_999, 4, "USD", 100, T - 1),
        d.NewOrder(77, 1, 1, d.Side.BUY, d.OrderKind.IOC, 10, 2, 5, d.StpMode.NONE, 1_000, 2_000, T),
        d.CancelOrderRequest(77, 1, 1, T),
        d.AmendOrder(77, 1, 1, 0, 1, T),
        d.InstrumentRules(1, "BTC-USD", d.InstrumentKind.SPOT, d.InstrumentStatus.HALTED, 1, 1_000, 100, 500, 1_000, 2_000, T),
        d.CreateAsset("r1", T, "BTC", 8),
        d.CreateInstrument("r2", T, 1, "BTC-USD", d.InstrumentKind.SPOT, "BTC", "USD", 1, 1_000, 100, 500, 1_000, 2_000),
        d.UpdateInstrumentRules("r3", T, 1, 100, 500, 1_000, 2_000),
        d.HaltInstrument("r4", T, 1),
        d.ResumeInstrument("r5", T, 1),
        d.RegisterUser("r6", T, 7, "alice", "admin,trader"),
        d.OpenAccount("r7", T, 1, 7),
        d.ChangeUserRoles("r9", T, 7, "auditor,trader", 8),
        d.AssetCreated("r1", T, Asset("BTC", 8)),
        d.InstrumentCreated("r2", T, INSTRUMENT),
        d.InstrumentRulesUpdated("r3", T, INSTRUMENT),
        d.InstrumentHalted("r4", T, INSTRUMENT._replace(status=d.InstrumentStatus.HALTED)),
        d.InstrumentResumed("r5", T, INSTRUMENT),
        d.UserRegistered("r6", T, User(7, "alice", "trader")),
        d.AccountOpened("r7", T, AccountRef(1, 7)),
        d.UserRolesChanged("r9", T, User(7, "alice", "auditor,trader"), 8),
        d.ReferenceCommandRejected("r8", T, "OpenAccount", d.Reason.UNKNOWN_USER, "user 9"),
        d.Accepted(1, 77, 1, d.Side.BUY, d.OrderKind.MARKET, 50_000, 3, T),
        d.Rested(1, 77, 1, d.Side.BUY, 50_000, 2, T),
        d.Trade(1, (3 << 40) | 9, 50_000, 1, d.Side.SELL, 77, 1, 78, 2, T),
        d.Filled(1, 78, 2, d.Side.SELL, 1, T),
        d.Cancelled(1, 77, 1, 2, d.Reason.SELF_TRADE_PREVENTED, "self_trade", T),
        d.Expired(1, 79, 3, 4, d.Reason.NO_LIQUIDITY, "ioc_remainder", T),
        d.Rejected(1, 80, 3, d.Reason.OUTSIDE_PRICE_BAND, "NewOrder", "price_band", T),
        d.AmendApplied(1, 77, 1, 49_999, 3, True, T),
        d.L2Delta(1, d.Side.BUY, 50_000, 0, 12, T),
        d.RulesApplied(1, 500, False, T),
    ]  # fmt: skip
