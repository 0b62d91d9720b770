"""Enumerations and limits shared by every domain record.

Enumerations are ``StrEnum``: their members are plain ``str`` values, so they travel through
Avro enums unchanged and a decoded ``str`` compares equal to the member. Every Avro enum
built from these carries a ``default`` symbol (see ``tradex/schemas``) so a reader on an old
schema survives a symbol added later.
"""

from __future__ import annotations

from enum import StrEnum

INT64_MAX = (1 << 63) - 1
PPM = 1_000_000  # fee rates are parts per million
FEE_PPM_MAX = PPM  # a fee rate above 100 % is refused
SCALE_MAX = 18  # decimal places of an asset (10**18 still fits int64)
PRICE_BAND_BPS_MAX = 10_000
ID_TEXT_LENGTH_MAX = 128  # command ids, asset codes, symbols, names


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderKind(StrEnum):
    """GTC/IOC/FOK/POST_ONLY are limit orders; MARKET carries its protection price in ``price``."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "POST_ONLY"
    MARKET = "MARKET"


class StpMode(StrEnum):
    """Self-trade prevention, applied by the matcher."""

    NONE = "NONE"
    CANCEL_TAKER = "CANCEL_TAKER"
    CANCEL_MAKER = "CANCEL_MAKER"
    CANCEL_BOTH = "CANCEL_BOTH"
    # both orders lose the quantity they would have traded; one left with none ends
    # (the engine's decrement-and-cancel: docs/matching.md)
    DECREMENT = "DECREMENT"


class Liquidity(StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"


class EndReason(StrEnum):
    """Why an order left the book (carried by OrderEnded)."""

    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


class InstrumentKind(StrEnum):
    SPOT = "SPOT"
    PERPETUAL = "PERPETUAL"  # reserved: the account aggregate refuses it until margin exists


class InstrumentStatus(StrEnum):
    TRADING = "TRADING"
    HALTED = "HALTED"


class Reason(StrEnum):
    """Reason codes of rejection events. Append only; ``UNKNOWN`` is the Avro enum default."""

    UNKNOWN = "UNKNOWN"
    INVALID_COMMAND = "INVALID_COMMAND"
    DUPLICATE_COMMAND = "DUPLICATE_COMMAND"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    UNKNOWN_ASSET = "UNKNOWN_ASSET"
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    UNKNOWN_USER = "UNKNOWN_USER"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    UNKNOWN_WITHDRAWAL = "UNKNOWN_WITHDRAWAL"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    AMOUNT_NOT_POSITIVE = "AMOUNT_NOT_POSITIVE"
    PRICE_NOT_POSITIVE = "PRICE_NOT_POSITIVE"
    QTY_NOT_POSITIVE = "QTY_NOT_POSITIVE"
    BAD_TICK = "BAD_TICK"
    BAD_LOT = "BAD_LOT"
    BELOW_MIN_NOTIONAL = "BELOW_MIN_NOTIONAL"
    AMOUNT_OVERFLOW = "AMOUNT_OVERFLOW"
    INSTRUMENT_HALTED = "INSTRUMENT_HALTED"
    INSTRUMENT_KIND_UNSUPPORTED = "INSTRUMENT_KIND_UNSUPPORTED"
    CANCEL_ALREADY_REQUESTED = "CANCEL_ALREADY_REQUESTED"
    INVALID_FILL = "INVALID_FILL"
    INVALID_RULES = "INVALID_RULES"
    OPEN_ORDERS_MAX = "OPEN_ORDERS_MAX"
    NOT_HALTED = "NOT_HALTED"
    # matcher-side reasons (engine Rejected / Cancelled events)
    OUTSIDE_PRICE_BAND = "OUTSIDE_PRICE_BAND"
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE"
    FOK_NOT_FILLABLE = "FOK_NOT_FILLABLE"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    SELF_TRADE_PREVENTED = "SELF_TRADE_PREVENTED"
    BOOK_FULL = "BOOK_FULL"
    # the command side's identity rules (issue 11)
    MAKER_CHECKER = "MAKER_CHECKER"  # a withdrawal decided by the user who requested it
    FORBIDDEN = "FORBIDDEN"  # the actor's roles or ownership do not allow the command
    AMEND_QTY_TOO_LOW = "AMEND_QTY_TOO_LOW"  # an amend's new total <= the filled quantity


SIDES = frozenset(Side)
ORDER_KINDS = frozenset(OrderKind)
STP_MODES = frozenset(StpMode)
LIQUIDITIES = frozenset(Liquidity)
END_REASONS = frozenset(EndReason)
INSTRUMENT_KINDS = frozenset(InstrumentKind)
INSTRUMENT_STATUSES = frozenset(InstrumentStatus)
REASONS = frozenset(Reason)
