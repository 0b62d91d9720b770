"""What each domain type's ``validate()`` checks, as data the columnar decoder runs in C.

``Codec.decode_domain`` calls the domain type's own ``validate()`` on every record it
decodes. The columnar decoder makes no domain object, so it checks the same conditions on
the values as it reads them: :data:`CHECKS` lists them per type, one entry per condition
of ``validate()`` (same bounds, same symbol sets). A record failing one is *flagged*, not
refused: the runner decodes flagged records again with ``decode_domain``, which raises the
same ``CodecError`` (message included) as ever, or keeps the record if it passes.

So this table only has to be *complete* (every record ``validate()`` refuses is flagged)
for the columnar path to refuse exactly what ``decode_domain`` refuses; it is also exact
(it flags nothing ``validate()`` accepts), so flagged records are rare.
``tests/schemas/test_columns.py`` checks both on random records with boundary values for
every type, and that every type with a ``validate()`` is listed here (the columnar decoder
refuses to serve one that is not).

Kinds: ``range`` (an int within [lo, hi]), ``length`` (a string of lo..hi characters,
counted as ``len(str)`` counts), ``member`` (an enum symbol in a set), ``count`` (an array
of lo..hi items), ``balanced`` (the array's ``value`` sums to 0 per ``key``, exactly),
``equal_if`` (``field == other`` when the enum ``when`` is ``symbol``), ``differ``
(``field != other``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from tradex.domain.journal import POSTINGS_MAX
from tradex.domain.reference import InstrumentKind
from tradex.domain.types import (
    END_REASONS,
    FEE_PPM_MAX,
    ID_TEXT_LENGTH_MAX,
    INSTRUMENT_KINDS,
    INSTRUMENT_STATUSES,
    INT64_MAX,
    LIQUIDITIES,
    ORDER_KINDS,
    PRICE_BAND_BPS_MAX,
    REASONS,
    SCALE_MAX,
    SIDES,
    STP_MODES,
    Side,
)

INT64_MIN = -(1 << 63)


@dataclass(frozen=True)
class Check:
    kind: str
    field: str
    lo: int = 0
    hi: int = 0
    members: frozenset[str] = frozenset()
    key: str = ""
    value: str = ""
    other: str = ""
    when: str = ""
    symbol: str = ""


def positive(field: str) -> Check:
    return Check("range", field, 1, INT64_MAX)


def not_negative(field: str) -> Check:
    return Check("range", field, 0, INT64_MAX)


def within(field: str, lo: int, hi: int) -> Check:
    return Check("range", field, lo, hi)


def text(field: str) -> Check:
    """``_text`` / ``_command_id``: 1..ID_TEXT_LENGTH_MAX characters."""
    return Check("length", field, 1, ID_TEXT_LENGTH_MAX)


def member(field: str, members: Collection[str]) -> Check:
    return Check("member", field, members=frozenset(members))


def journal(field: str) -> tuple[Check, Check]:
    """``check_balanced``: 1..POSTINGS_MAX postings summing to zero per asset."""
    return (
        Check("count", field, 1, POSTINGS_MAX),
        Check("balanced", field, key="asset", value="delta"),
    )


def _fee_rules() -> tuple[Check, ...]:
    return (
        not_negative("min_notional"),
        within("price_band_bps", 0, PRICE_BAND_BPS_MAX),
        within("maker_fee_ppm", 0, FEE_PPM_MAX),
        within("taker_fee_ppm", 0, FEE_PPM_MAX),
    )


CHECKS: dict[str, tuple[Check, ...]] = {
    # account commands (tradex.domain.commands)
    "Deposit": (text("command_id"),),
    "RequestWithdrawal": (text("command_id"),),
    "ApproveWithdrawal": (text("command_id"),),
    "RejectWithdrawal": (text("command_id"),),
    "PlaceOrder": (
        text("command_id"), member("side", SIDES), member("kind", ORDER_KINDS),
        member("stp_mode", STP_MODES), not_negative("protection_ticks"),
    ),
    "CancelOrder": (text("command_id"),),
    "ModifyOrder": (
        text("command_id"), not_negative("new_price"), not_negative("new_qty"),
    ),
    "CancelAllOrders": (
        text("command_id"), not_negative("instrument_id"), not_negative("after_order_id"),
        not_negative("up_to_order_id"),
    ),
    "FillLeg": (
        member("side", SIDES), member("liquidity", LIQUIDITIES), positive("price"),
        positive("qty"),
    ),
    "OrderEnded": (member("reason", END_REASONS),),
    "AmendConfirmed": (positive("price"), positive("qty")),
    # account events (tradex.domain.events)
    "Deposited": (positive("amount"), *journal("postings")),
    "WithdrawalRequested": (positive("amount"),),
    "WithdrawalPaid": (positive("amount"), *journal("postings")),
    "WithdrawalReleased": (positive("amount"),),
    "OrderAccepted": (
        member("side", SIDES), positive("price"), positive("qty"), positive("hold_amount"),
        Check("equal_if", "hold_asset", other="quote_asset", when="side", symbol=Side.BUY),
        Check("equal_if", "hold_asset", other="base_asset", when="side", symbol=Side.SELL),
    ),
    "OrderRejected": (member("reason", REASONS), not_negative("order_id")),
    "CancelRequested": (not_negative("order_id"),),
    "OrderAmended": (
        positive("price_bound"), positive("qty_bound"), not_negative("new_price"),
        not_negative("new_qty"), not_negative("hold_added"),
    ),
    "AmendSettled": (
        positive("price"), positive("qty"), positive("price_bound"), positive("qty_bound"),
        not_negative("hold_released"),
    ),
    "FillSettled": (
        member("side", SIDES), member("liquidity", LIQUIDITIES), positive("qty"),
        positive("hold_consumed"), not_negative("fee"), *journal("postings"),
    ),
    "HoldReleased": (not_negative("amount"), member("end_reason", END_REASONS)),
    "CommandRejected": (member("reason", REASONS),),
    # order requests (tradex.domain.orders)
    "NewOrder": (
        member("side", SIDES), member("kind", ORDER_KINDS), member("stp_mode", STP_MODES),
        positive("price"), positive("qty"), not_negative("protection_ticks"),
    ),
    "CancelOrderRequest": (not_negative("order_id"),),
    "AmendOrder": (not_negative("new_price"), not_negative("new_qty")),
    "InstrumentRules": (
        member("kind", INSTRUMENT_KINDS), member("status", INSTRUMENT_STATUSES),
        positive("tick_size"), positive("lot_size"),
    ),
    # reference commands (tradex.domain.reference); its events have no validate()
    "CreateAsset": (text("command_id"), text("code"), within("scale", 0, SCALE_MAX)),
    "CreateInstrument": (
        text("command_id"), text("symbol"), positive("instrument_id"), positive("tick_size"),
        positive("lot_size"), *_fee_rules(), member("kind", InstrumentKind.__members__),
        Check("differ", "base", other="quote"),
    ),
    "UpdateInstrumentRules": (text("command_id"), *_fee_rules()),
    "HaltInstrument": (text("command_id"),),
    "ResumeInstrument": (text("command_id"),),
    "RegisterUser": (text("command_id"), text("name"), positive("user_id")),
    "ChangeUserRoles": (text("command_id"), positive("user_id"), not_negative("actor")),
    "OpenAccount": (text("command_id"), positive("account_id")),
    # engine events (tradex.domain.engine)
    "Accepted": (
        positive("order_id"), member("side", SIDES), member("kind", ORDER_KINDS),
        positive("price"), positive("qty"),
    ),
    "Rested": (positive("order_id"), member("side", SIDES), positive("price"), positive("qty")),
    "Trade": (
        positive("trade_id"), positive("price"), positive("qty"), member("taker_side", SIDES),
        positive("maker_order_id"), positive("taker_order_id"),
    ),
    "Filled": (positive("order_id"), member("side", SIDES), positive("filled_qty")),
    "Cancelled": (positive("order_id"), not_negative("remaining_qty"), member("reason", REASONS)),
    "Expired": (positive("order_id"), not_negative("remaining_qty"), member("reason", REASONS)),
    "Rejected": (member("reason", REASONS),),
    "AmendApplied": (positive("order_id"), positive("new_price"), positive("new_qty")),
    "L2Delta": (
        member("side", SIDES), positive("price"), not_negative("qty"), not_negative("book_seq"),
    ),
    "RulesApplied": (not_negative("price_band_bps"),),
}  # fmt: skip
