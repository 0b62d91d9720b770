"""The keys of the ``redis`` read model inside one version (``{ns}:v<N>:`` + suffix).

The writer (:mod:`.market`) and the readers (:mod:`.redis_read`) both name keys through
this module; nothing else knows them.

| key suffix | type | content |
|---|---|---|
| ``instruments`` / ``accounts`` | set | ids with keys below |
| ``i:<id>`` | hash | the market: ``book_seq``, best bid/ask and their qty, ``trade_seq``, last trade, ``event_time_ns``, ``halted``, ``price_band_bps`` |
| ``i:<id>:bids`` / ``i:<id>:asks`` | zset | the price levels (score and member = price in ticks) |
| ``i:<id>:bids:qty`` / ``i:<id>:asks:qty`` | hash | price → qty (lots) of each level |
| ``i:<id>:book`` | stream | book updates: id ``<book_seq>-0``; :data:`BOOK_UPDATE_FIELDS` |
| ``i:<id>:trades`` | stream | trades: id ``<trade_seq>-0``; :data:`TRADE_FIELDS` |
| ``i:<id>:candles`` | hash | minute → "open high low close volume quote_volume trades" (the ticker's window) |
| ``i:<id>:ticker`` | hash | the 24 h ticker (see :func:`ticker_window`) |
| ``a:<id>`` | hash | ``seq`` (of the account's stream) and ``available:<asset>`` / ``held:<asset>`` |
| ``a:<id>:events`` | stream | the account's events: id ``<seq>-0``; :data:`ACCOUNT_ENTRY_FIELDS` |
| ``ref:assets`` / ``ref:symbols`` | hash | asset → scale; symbol → instrument id |
| ``ref:i:<id>`` | hash | the instrument's reference row (symbol, base, quote, tick/lot size, fees, status) |

Streams are trimmed to exactly their ``*_KEPT`` length, so a rebuild holds the same entries.
A stream entry has one field, :data:`ENTRY`: a msgpack array of the values named below
(one field, not one per value: Redis appends a one-field entry in ~3 µs against ~20 µs
for fifteen fields, the difference between a rebuild at 50k and at 200k events/s).
Hash values are decimal text. Prices are ticks, quantities lots, balances minor units.
"""

from __future__ import annotations

from typing import Any

import msgpack

from tradex.projections.redis_store import ENTRY_FIELD

BOOK_UPDATES_KEPT = 10_000  # entries of an instrument's book stream
TRADES_KEPT = 1_000  # entries of an instrument's trade stream (= the last trades served)
ACCOUNT_EVENTS_KEPT = 1_000  # entries of an account's stream
TICKER_MINUTES = 1_440  # whole minutes in the ticker's window (24 h)
MINUTE_NS = 60_000_000_000
PRICE_MAX = (1 << 53) - 1  # zset scores are doubles: prices stay exact below this

INSTRUMENTS = "instruments"
ACCOUNTS = "accounts"
REF_ASSETS = "ref:assets"
REF_SYMBOLS = "ref:symbols"

SIDES = {"BUY": "bids", "SELL": "asks"}

MARKET_FIELDS = (
    "book_seq", "best_bid", "best_bid_qty", "best_ask", "best_ask_qty", "trade_seq",
    "last_price", "last_qty", "last_trade_id", "last_taker_side", "last_trade_time_ns",
    "event_time_ns", "halted", "price_band_bps",
)  # fmt: skip
TICKER_FIELDS = (
    "window_start_ns", "window_end_ns", "open", "high", "low", "last", "volume",
    "quote_volume", "trades", "change",
)  # fmt: skip
ENTRY = ENTRY_FIELD  # the one field of a stream entry
BOOK_UPDATE_FIELDS = ("side", "price", "qty")  # qty: the level's new total, 0: gone
TRADE_FIELDS = ("trade_id", "price", "qty", "taker_side", "time_ns")
# An account entry: [type, the type's fields below..., [[asset, available, held], ...]]
# — the balances after the event of the assets it changed for the account.
_COMMAND = ("command_id", "event_time_ns")
_WITHDRAWAL = (*_COMMAND, "withdrawal_id", "asset", "amount")
_ORDER = ("order_id", "instrument_id", "side", "kind", "price", "qty")
ACCOUNT_ENTRY_FIELDS: dict[str, tuple[str, ...]] = {
    "Deposited": (*_COMMAND, "asset", "amount"),
    "WithdrawalRequested": _WITHDRAWAL,
    "WithdrawalPaid": _WITHDRAWAL,
    "WithdrawalReleased": _WITHDRAWAL,
    "OrderAccepted": (*_COMMAND, *_ORDER, "stp_mode"),
    "OrderRejected": (*_COMMAND, *_ORDER, "reason", "detail"),
    "CancelRequested": (*_COMMAND, "order_id", "instrument_id"),
    "OrderAmended": (*_COMMAND, "order_id", "instrument_id", "new_price", "new_qty", "hold_added"),
    "AmendSettled": (*_COMMAND, "order_id", "instrument_id", "price", "qty", "hold_released"),
    "FillSettled": (
        *_COMMAND, "order_id", "trade_id", "instrument_id", "side", "liquidity", "price", "qty",
        "fee",
    ),
    "HoldReleased": (*_COMMAND, "order_id", "asset", "amount", "end_reason"),
    "CommandRejected": (*_COMMAND, "command_type", "reason", "detail"),
}  # fmt: skip
# The layout a version's keys are written in (kept per version in the versions hash): a
# writer refuses to go on with a version of another layout (rebuild it), readers take
# both. 2: an OrderAccepted entry ends with stp_mode (2026-12-05); 1: before.
LAYOUT = 2
# Fields appended to an entry after entries were first written without them, with the value
# an older entry stands for (a read model written by older code is read as it is).
ACCOUNT_ENTRY_DEFAULTS: dict[str, Any] = {"stp_mode": "NONE"}
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trades")
SEQ = "seq"


def market(instrument_id: int) -> str:
    return f"i:{instrument_id}"


def levels(instrument_id: int, side: str) -> str:
    """The zset of a side's prices (``side``: BUY / SELL)."""
    return f"i:{instrument_id}:{SIDES[side]}"


def level_qty(instrument_id: int, side: str) -> str:
    return f"i:{instrument_id}:{SIDES[side]}:qty"


def book_updates(instrument_id: int) -> str:
    return f"i:{instrument_id}:book"


def trades(instrument_id: int) -> str:
    return f"i:{instrument_id}:trades"


def candles(instrument_id: int) -> str:
    return f"i:{instrument_id}:candles"


def ticker(instrument_id: int) -> str:
    return f"i:{instrument_id}:ticker"


def account(account_id: int) -> str:
    return f"a:{account_id}"


def account_events(account_id: int) -> str:
    return f"a:{account_id}:events"


def reference_instrument_prefix() -> str:
    return "ref:i:"


def reference_instrument(instrument_id: int) -> str:
    return f"{reference_instrument_prefix()}{instrument_id}"


def available(asset: str) -> str:
    return f"available:{asset}"


def held(asset: str) -> str:
    return f"held:{asset}"


def candle_text(candle: list[int]) -> str:
    """A candle's hash value: :data:`CANDLE_FIELDS` as decimal text."""
    assert len(candle) == len(CANDLE_FIELDS), candle
    return " ".join(map(str, candle))


def parse_candle(text: bytes | str) -> list[int]:
    candle = [int(x) for x in _text(text).split()]
    assert len(candle) == len(CANDLE_FIELDS), text
    return candle


def parse_account(stored: dict[Any, Any]) -> tuple[int, dict[str, list[int]]]:
    """An account hash as (seq, {asset: [available, held]})."""
    seq = 0
    balances: dict[str, list[int]] = {}
    for key, value in stored.items():
        name, _, asset = _text(key).partition(":")
        if name == SEQ:
            seq = int(value)
            continue
        assert name in ("available", "held"), name
        balances.setdefault(asset, [0, 0])[0 if name == "available" else 1] = int(value)
    return seq, balances


def entry_id(seq: int) -> str:
    """The stream entry id of the ``seq``-th entry of a channel (1, 2, 3 …)."""
    return f"{seq}-0"


def entry_seq(entry: bytes | str) -> int:
    text = entry.decode() if isinstance(entry, bytes) else entry
    seq, _, zero = text.partition("-")
    assert zero == "0", f"not a read-model stream id: {text}"
    return int(seq)


def ticker_window(last_trade_time_ns: int) -> tuple[int, int]:
    """The ticker's window for an instrument whose last trade was at ``last_trade_time_ns``
    (engine time): the :data:`TICKER_MINUTES` whole minutes ending with the minute of that
    trade, as ``[start_ns, end_ns)``. It moves with the instrument's trades, never with the
    wall clock, so every rebuild computes the same ticker."""
    assert last_trade_time_ns >= 0, last_trade_time_ns
    minute = last_trade_time_ns // MINUTE_NS
    return (minute - TICKER_MINUTES + 1) * MINUTE_NS, (minute + 1) * MINUTE_NS


# -- the logical tables of a frozen version (verify) ------------------------------------


def _pairs(content: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(content[::2], content[1::2], strict=True))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def unpack_entry(fields: list[Any]) -> list[Any]:
    """The values of a stream entry (its fields as Redis returns them)."""
    assert len(fields) == 2, fields
    assert _text(fields[0]) == ENTRY, fields
    values: list[Any] = msgpack.unpackb(fields[1])
    return values


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _stream_rows(entity: int, content: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (entity, entry_seq(entry), _hashable(unpack_entry(fields))) for entry, fields in content
    ]


def _hash_rows(entity: int, content: list[Any]) -> list[tuple[Any, ...]]:
    return [(entity, _text(field), _text(value)) for field, value in _pairs(content)]


def table_rows(suffix: str, kind: str, content: list[Any]) -> tuple[str, list[tuple[Any, ...]]]:
    """The logical table and its rows for one key (see :meth:`RedisProjector.table_rows`)."""
    parts = suffix.split(":")
    if suffix in (INSTRUMENTS, ACCOUNTS):
        assert kind == "set", (suffix, kind)
        return "index", [(suffix, int(member)) for member in content]
    if suffix in (REF_ASSETS, REF_SYMBOLS):
        assert kind == "hash", (suffix, kind)
        return "reference", [(suffix, _text(f), _text(v)) for f, v in _pairs(content)]
    if parts[0] == "ref" and parts[1] == "i" and len(parts) == 3:
        return "reference", [(suffix, _text(f), _text(v)) for f, v in _pairs(content)]
    entity = int(parts[1])
    rest = ":".join(parts[2:])
    if parts[0] == "i":
        if rest == "" and kind == "hash":
            return "markets", _hash_rows(entity, content)
        if rest in ("bids", "asks") and kind == "zset":
            return "book_index", [
                (entity, rest, int(member), float(score)) for member, score in _pairs(content)
            ]
        if rest in ("bids:qty", "asks:qty") and kind == "hash":
            return "book", [
                (entity, rest[:4], int(price), int(qty)) for price, qty in _pairs(content)
            ]
        if rest == "book" and kind == "stream":
            return "book_updates", _stream_rows(entity, content)
        if rest == "trades" and kind == "stream":
            return "trades", _stream_rows(entity, content)
        if rest == "candles" and kind == "hash":
            return "candles", [(entity, int(m), _text(v)) for m, v in _pairs(content)]
        if rest == "ticker" and kind == "hash":
            return "tickers", _hash_rows(entity, content)
    if parts[0] == "a":
        if rest == "" and kind == "hash":
            return "balances", _hash_rows(entity, content)
        if rest == "events" and kind == "stream":
            return "account_events", _stream_rows(entity, content)
    raise AssertionError(f"a key the redis read model does not have: {suffix} ({kind})")
