"""Reading the ``redis`` read model: what the REST/WebSocket gateway calls.

    reader = MarketReader(settings)              # or AsyncMarketReader (redis.asyncio)
    book = reader.book(1, depth=20)              # Book(version, book_seq, bids, asks)
    updates = reader.read(Channel.book(1), book.book_seq)   # entries after book_seq
    if updates.gap: ...                          # trimmed past: read the book again

Every call is one read-only Lua script that resolves the live version and reads its keys,
so a call sees one version at one instant (a book and its ``book_seq`` together), however
the writer and a rebuild's switch move on. Channel entries are numbered per channel (an
instrument's ``book_seq`` and ``trade_seq``, an account's ``seq``) and keep their numbers
across rebuilds, so a follower carries on after a switch without a gap. Prices are ticks,
quantities lots, balances minor units (``instruments()`` gives the scales).

Nothing outside :mod:`.redis_layout`, this module and the writer knows a key.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import redis
import redis.asyncio

from tradex.infra import redis_client
from tradex.infra.settings import Settings
from tradex.projections import redis_layout as layout
from tradex.projections.market_fold import Ticker
from tradex.projections.projector import namespace
from tradex.projections.redis_store import version_base, versions_key

DEPTH_MAX = 1_000  # price levels per side in one book read
READ_COUNT_MAX = 1_000  # channel entries in one read
BLOCK_MS_MAX = 2_000  # below the client's socket timeout: follow in a loop
NAME = "redis"


class NotLive(LookupError):
    """The read model has no live version yet (its projector never ran)."""


class Book(NamedTuple):
    version: int
    book_seq: int  # the book reflects every update up to this one
    bids: list[tuple[int, int]]  # (price, qty), best first
    asks: list[tuple[int, int]]


class Bbo(NamedTuple):
    version: int
    book_seq: int
    bid: int  # 0: no bid
    bid_qty: int
    ask: int  # 0: no ask
    ask_qty: int


class TradeRow(NamedTuple):
    seq: int  # the instrument's trade_seq
    trade_id: int
    price: int
    qty: int
    taker_side: str
    time_ns: int


class Balances(NamedTuple):
    version: int
    seq: int  # the account channel's entries up to this one are reflected
    assets: dict[str, tuple[int, int]]  # asset -> (available, held)


class Channel(NamedTuple):
    """A stream a client follows (use the constructors)."""

    kind: str  # book | trades | account
    key: str

    @classmethod
    def book(cls, instrument_id: int) -> Channel:
        """An instrument's book updates: side, price, qty (the level's new total, 0: gone);
        numbered by ``book_seq``."""
        return cls("book", layout.book_updates(instrument_id))

    @classmethod
    def trades(cls, instrument_id: int) -> Channel:
        """An instrument's trades (:class:`TradeRow` fields); numbered by ``trade_seq``."""
        return cls("trades", layout.trades(instrument_id))

    @classmethod
    def account(cls, account_id: int) -> Channel:
        """An account's events: ``type``, the fields of
        :data:`.redis_layout.ACCOUNT_ENTRY_FIELDS`, ``balances`` after it ({asset:
        (available, held)} of the assets it changed); numbered by the account's ``seq``."""
        return cls("account", layout.account_events(account_id))


def entry_fields(kind: str, values: list[Any]) -> dict[str, Any]:
    """A channel entry's values by name."""
    if kind == "book":
        return dict(zip(layout.BOOK_UPDATE_FIELDS, values, strict=True))
    if kind == "trades":
        return dict(zip(layout.TRADE_FIELDS, values, strict=True))
    assert kind == "account", kind
    event_type, *fields, balances = values
    found: dict[str, Any] = {"type": event_type}
    names = layout.ACCOUNT_ENTRY_FIELDS[event_type]
    # an entry written before a field was appended ends without it: its default
    missing = names[len(fields) :]
    if not all(name in layout.ACCOUNT_ENTRY_DEFAULTS for name in missing):
        raise ValueError(f"{event_type} entry of {len(fields)} fields, expected {len(names)}")
    found.update(zip(names[: len(fields)], fields, strict=True))
    found.update((name, layout.ACCOUNT_ENTRY_DEFAULTS[name]) for name in missing)
    found["balances"] = {asset: (available, held) for asset, available, held in balances}
    return found


class StreamRead(NamedTuple):
    version: int
    entries: list[tuple[int, dict[str, Any]]]  # (seq, fields), seq increasing by 1
    gap: bool  # entries after ``after`` were trimmed: read the snapshot again


# Every read script starts by resolving the live version: KEYS[1] the versions hash,
# ARGV[1] the version base; ``p`` is then the live version's key prefix.
_HEAD = r"""#!lua flags=no-writes
local live = redis.call('HGET', KEYS[1], 'live')
if not live then return false end
local p = ARGV[1] .. live .. ':'
"""
_BODIES = {
    # ARGV[2..6]: the market hash, bids zset, bids qty hash, asks zset, asks qty hash;
    # ARGV[7]: depth
    "book": r"""
local depth = tonumber(ARGV[7])
local seq = redis.call('HGET', p .. ARGV[2], 'book_seq') or '0'
local function side(levels, quantities, best_first)
  local prices
  if best_first then prices = redis.call('ZREVRANGE', p .. levels, 0, depth - 1)
  else prices = redis.call('ZRANGE', p .. levels, 0, depth - 1) end
  if #prices == 0 then return {} end
  local qty = redis.call('HMGET', p .. quantities, unpack(prices))
  local flat = {}
  for k = 1, #prices do flat[2 * k - 1] = prices[k]; flat[2 * k] = qty[k] end
  return flat
end
return {live, seq, side(ARGV[3], ARGV[4], true), side(ARGV[5], ARGV[6], false)}
""",
    "hash": r"""
return {live, redis.call('HGETALL', p .. ARGV[2])}
""",
    "trades": r"""
return {live, redis.call('XREVRANGE', p .. ARGV[2], '+', '-', 'COUNT', ARGV[3])}
""",
    "read": r"""
return {live, redis.call('XRANGE', p .. ARGV[2], '(' .. ARGV[3] .. '-0', '+', 'COUNT', ARGV[4])}
""",
    # ARGV[2]: the symbols hash, ARGV[3]: the prefix of an instrument's row, ARGV[4]: assets
    "instruments": r"""
local out = {}
for _, id in ipairs(redis.call('HVALS', p .. ARGV[2])) do
  out[#out + 1] = {id, redis.call('HGETALL', p .. ARGV[3] .. id)}
end
return {live, out, redis.call('HGETALL', p .. ARGV[4])}
""",
}
_SCRIPTS = {name: _HEAD + body for name, body in _BODIES.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _hash(flat: Sequence[Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


def _live(reply: Any, what: str) -> tuple[int, Any]:
    if reply is None:
        raise NotLive(f"the {NAME} read model has no live version ({what})")
    return int(reply[0]), reply


def _pairs(flat: Sequence[Any]) -> list[tuple[int, int]]:
    return [(int(p), int(q)) for p, q in zip(flat[::2], flat[1::2], strict=True)]


def _book(reply: Any) -> Book:
    version, reply = _live(reply, "book")
    book = Book(version, int(reply[1]), _pairs(reply[2]), _pairs(reply[3]))
    assert all(q > 0 for _, q in book.bids + book.asks), "a level without quantity"
    return book


def _bbo(reply: Any) -> Bbo:
    version, reply = _live(reply, "bbo")
    fields = _hash(reply[1])
    if not fields:
        return Bbo(version, 0, 0, 0, 0, 0)
    return Bbo(
        version, int(fields["book_seq"]), int(fields["best_bid"]), int(fields["best_bid_qty"]),
        int(fields["best_ask"]), int(fields["best_ask_qty"]),
    )  # fmt: skip


def _ticker(reply: Any) -> Ticker | None:
    fields = _hash(_live(reply, "ticker")[1][1])
    if not fields:
        return None
    return Ticker(*(int(fields[name]) for name in layout.TICKER_FIELDS))


def _trades(reply: Any) -> list[TradeRow]:
    return [
        TradeRow(layout.entry_seq(entry), *layout.unpack_entry(fields))
        for entry, fields in _live(reply, "trades")[1][1]
    ]


def _candles(reply: Any) -> dict[int, list[int]]:
    fields = _hash(_live(reply, "candles")[1][1])
    return {int(minute): layout.parse_candle(text) for minute, text in sorted(fields.items())}


def _balances(reply: Any) -> Balances:
    version, reply = _live(reply, "balances")
    seq, balances = layout.parse_account(_hash(reply[1]))
    return Balances(version, seq, {a: (v[0], v[1]) for a, v in sorted(balances.items())})


def _stream(reply: Any, channel: Channel, after: int) -> StreamRead:
    version, reply = _live(reply, "read")
    return _entries(version, reply[1], channel, after)


def _entries(version: int, raw: Any, channel: Channel, after: int) -> StreamRead:
    """Stream entries as XRANGE (flat fields) or XREAD (a field dict) gives them."""
    entries = [
        (layout.entry_seq(entry),
         entry_fields(channel.kind, layout.unpack_entry(
             [*next(iter(fields.items()))] if isinstance(fields, dict) else fields)))
        for entry, fields in raw
    ]  # fmt: skip
    for (seq, _), (next_seq, _) in itertools.pairwise(entries):
        assert next_seq == seq + 1, f"channel entries {seq} then {next_seq}"
    return StreamRead(version, entries, bool(entries) and entries[0][0] != after + 1)


def _instruments(reply: Any) -> dict[int, dict[str, Any]]:
    _version, reply = _live(reply, "instruments")
    scales = {asset: int(scale) for asset, scale in _hash(reply[2]).items()}
    found: dict[int, dict[str, Any]] = {}
    for instrument_id, flat in reply[1]:
        row: dict[str, Any] = {
            name: int(value) if value.lstrip("-").isdigit() else value
            for name, value in _hash(flat).items()
        }  # the Instrument row: ids, sizes and fees are integers, the rest text
        if row:
            row["base_scale"] = scales.get(row["base"])
            row["quote_scale"] = scales.get(row["quote"])
        found[int(instrument_id)] = row
    return dict(sorted(found.items()))


def _assets(reply: Any) -> dict[str, int]:
    return {
        asset: int(scale) for asset, scale in sorted(_hash(_live(reply, "assets")[1][1]).items())
    }


def _market(reply: Any) -> dict[str, Any]:
    fields = _hash(_live(reply, "market")[1][1])
    return {
        name: int(fields[name]) if fields[name].lstrip("-").isdigit() else fields[name]
        for name in layout.MARKET_FIELDS
        if name in fields
    }


def _book_keys(instrument_id: int) -> tuple[str, ...]:
    return (
        layout.market(instrument_id),
        layout.levels(instrument_id, "BUY"), layout.level_qty(instrument_id, "BUY"),
        layout.levels(instrument_id, "SELL"), layout.level_qty(instrument_id, "SELL"),
    )  # fmt: skip


_INSTRUMENT_KEYS = (layout.REF_SYMBOLS, layout.reference_instrument_prefix(), layout.REF_ASSETS)


def _check(depth: int, count: int) -> None:
    assert 0 < depth <= DEPTH_MAX, f"depth must be in 1..{DEPTH_MAX}"
    assert 0 < count <= READ_COUNT_MAX, f"count must be in 1..{READ_COUNT_MAX}"


class _Base:
    def __init__(self, settings: Settings) -> None:
        ns = namespace(settings, NAME)
        self.versions_key = versions_key(ns)
        self.base = version_base(ns)


class MarketReader(_Base):
    """Synchronous reads (redis-py)."""

    def __init__(self, settings: Settings, conn: redis.Redis | None = None) -> None:
        super().__init__(settings)
        self.conn = conn if conn is not None else redis_client.client(settings)
        self._scripts = {name: self.conn.register_script(s) for name, s in _SCRIPTS.items()}

    def _call(self, script: str, *args: Any) -> Any:
        return self._scripts[script](keys=[self.versions_key], args=[self.base, *args])

    def book(self, instrument_id: int, depth: int = 20) -> Book:
        _check(depth, 1)
        return _book(self._call("book", *_book_keys(instrument_id), depth))

    def bbo(self, instrument_id: int) -> Bbo:
        return _bbo(self._call("hash", layout.market(instrument_id)))

    def ticker(self, instrument_id: int) -> Ticker | None:
        return _ticker(self._call("hash", layout.ticker(instrument_id)))

    def candles(self, instrument_id: int) -> dict[int, list[int]]:
        """The one-minute candles of the ticker's window: minute (since the epoch) →
        :data:`.redis_layout.CANDLE_FIELDS`."""
        return _candles(self._call("hash", layout.candles(instrument_id)))

    def trades(self, instrument_id: int, limit: int = 100) -> list[TradeRow]:
        """The last ``limit`` trades (at most :data:`.redis_layout.TRADES_KEPT`), newest first."""
        _check(1, limit)
        return _trades(self._call("trades", layout.trades(instrument_id), limit))

    def balances(self, account_id: int) -> Balances:
        return _balances(self._call("hash", layout.account(account_id)))

    def instruments(self) -> dict[int, dict[str, Any]]:
        """Reference rows of every instrument, by id (with base/quote scales)."""
        return _instruments(self._call("instruments", *_INSTRUMENT_KEYS))

    def assets(self) -> dict[str, int]:
        """Every asset's scale (decimal places of a minor unit)."""
        return _assets(self._call("hash", layout.REF_ASSETS))

    def market(self, instrument_id: int) -> dict[str, Any]:
        """The instrument's market row (:data:`.redis_layout.MARKET_FIELDS`)."""
        return _market(self._call("hash", layout.market(instrument_id)))

    def read(self, channel: Channel, after: int, count: int = 100, block_ms: int = 0) -> StreamRead:
        """Entries of ``channel`` after number ``after``; with ``block_ms``, wait that long
        for one when there is none yet."""
        _check(1, count)
        assert 0 <= block_ms <= BLOCK_MS_MAX, block_ms
        found = _stream(self._call("read", channel.key, after, count), channel, after)
        if found.entries or not block_ms:
            return found
        key = f"{self.base}{found.version}:{channel.key}"
        self.conn.xread({key: layout.entry_id(after)}, count=1, block=block_ms)
        return _stream(self._call("read", channel.key, after, count), channel, after)

    def close(self) -> None:
        self.conn.close()


class AsyncMarketReader(_Base):
    """The same reads for asyncio (redis.asyncio), for the Starlette gateway."""

    def __init__(self, settings: Settings, conn: redis.asyncio.Redis | None = None) -> None:
        super().__init__(settings)
        self.conn = conn if conn is not None else redis_client.async_client(settings)
        self._scripts = {name: self.conn.register_script(s) for name, s in _SCRIPTS.items()}

    async def _call(self, script: str, *args: Any) -> Any:
        return await self._scripts[script](keys=[self.versions_key], args=[self.base, *args])

    async def book(self, instrument_id: int, depth: int = 20) -> Book:
        _check(depth, 1)
        return _book(await self._call("book", *_book_keys(instrument_id), depth))

    async def bbo(self, instrument_id: int) -> Bbo:
        return _bbo(await self._call("hash", layout.market(instrument_id)))

    async def ticker(self, instrument_id: int) -> Ticker | None:
        return _ticker(await self._call("hash", layout.ticker(instrument_id)))

    async def candles(self, instrument_id: int) -> dict[int, list[int]]:
        return _candles(await self._call("hash", layout.candles(instrument_id)))

    async def trades(self, instrument_id: int, limit: int = 100) -> list[TradeRow]:
        _check(1, limit)
        return _trades(await self._call("trades", layout.trades(instrument_id), limit))

    async def balances(self, account_id: int) -> Balances:
        return _balances(await self._call("hash", layout.account(account_id)))

    async def instruments(self) -> dict[int, dict[str, Any]]:
        return _instruments(await self._call("instruments", *_INSTRUMENT_KEYS))

    async def assets(self) -> dict[str, int]:
        """Every asset's scale (decimal places of a minor unit)."""
        return _assets(await self._call("hash", layout.REF_ASSETS))

    async def market(self, instrument_id: int) -> dict[str, Any]:
        """The instrument's market row (:data:`.redis_layout.MARKET_FIELDS`; {} before its
        first event): book_seq, best bid/ask, trade_seq, last trade, halted, band."""
        return _market(await self._call("hash", layout.market(instrument_id)))

    async def read(
        self, channel: Channel, after: int, count: int = 100, block_ms: int = 0
    ) -> StreamRead:
        _check(1, count)
        assert 0 <= block_ms <= BLOCK_MS_MAX, block_ms
        found = _stream(await self._call("read", channel.key, after, count), channel, after)
        if found.entries or not block_ms:
            return found
        key = f"{self.base}{found.version}:{channel.key}"
        await self.conn.xread({key: layout.entry_id(after)}, count=1, block=block_ms)
        return _stream(await self._call("read", channel.key, after, count), channel, after)

    async def follow(
        self, channel: Channel, after: int, version: int, count: int = 100, block_ms: int = 0
    ) -> StreamRead:
        """:meth:`read` for a follower that knows the live version from a recent read: one
        blocking XREAD on that version's stream brings the entries themselves (one round
        trip per wake instead of three). When nothing comes within ``block_ms`` the live
        version is looked up again (a rebuild may have switched it); a follower must also
        :meth:`read` now and then, as a switched-from stream could still grow."""
        _check(1, count)
        assert 0 < block_ms <= BLOCK_MS_MAX, block_ms
        key = f"{self.base}{version}:{channel.key}"
        reply: Any = await self.conn.xread(
            {key: layout.entry_id(after)}, count=count, block=block_ms
        )  # [[key, [(id, {field: value})]]], or [] (the stubs say a dict: RESP3's shape)
        if not reply:
            return await self.read(channel, after, count)
        return _entries(version, reply[0][1], channel, after)

    async def aclose(self) -> None:
        await self.conn.aclose()
