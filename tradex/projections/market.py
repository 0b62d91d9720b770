"""The ``redis`` read model: L2 books, best bid/ask, last trades, 24 h tickers, balances and
the channels a WebSocket gateway follows (book updates, trades, an account's events).

The fold is :mod:`.market_fold`, the keys :mod:`.redis_layout`, the store
:mod:`.redis_store` (one Lua script per batch); readers use :mod:`.redis_read`.

On open the writer loads the version's state (books, counters, candles, balances) into
memory, so each batch writes only net changes computed in Python: the final quantity of
each level it touched, the final balances, the channels' new entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import msgpack
import redis

from tradex import domain
from tradex.domain import engine
from tradex.infra.settings import Settings
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS, TOPIC_TYPES
from tradex.projections import redis_layout as layout
from tradex.projections.column_events import bodies_of
from tradex.projections.market_accounts import ACCOUNT_TYPES
from tradex.projections.market_fold import Market, MarketState, Touched, Wallet
from tradex.projections.projector import ColumnarBatch, Event
from tradex.projections.redis_store import Ops, RedisProjector
from tradex.schemas.columns import ColumnSpec

LOAD_PIPELINE_KEYS_MAX = 1_000  # keys read per round trip when loading a version


def _text(value: bytes) -> str:
    return value.decode()


class RedisReadModel(RedisProjector):
    name: ClassVar[str] = "redis"
    layout_version: ClassVar[int] = layout.LAYOUT
    topics: ClassVar[tuple[str, ...]] = (ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS)
    # the fold reads L2Delta, Trade and RulesApplied of the engine's records, instruments
    # and assets of the reference records (market_fold.MarketState.fold)
    ignores: ClassVar[frozenset[type]] = frozenset(
        (
            engine.Accepted, engine.Rested, engine.Filled, engine.Cancelled, engine.Expired,
            engine.Rejected, engine.AmendApplied, domain.UserRegistered, domain.UserRolesChanged,
            domain.AccountOpened,
            domain.ReferenceCommandRejected,
        )
    )  # fmt: skip

    # Columnar read (the runner reads and decodes in C); the fold stays per record, on the
    # records rebuilt from the columns (column_events). RedisRowReadModel: the row path.
    columnar: ClassVar[bool] = True
    batch_records: ClassVar[int] = 50_000

    def __init__(self, settings: Settings, version: int) -> None:
        super().__init__(settings, version)
        self.state = MarketState()
        self._pack = msgpack.Packer().pack

    # -- open ---------------------------------------------------------------------------

    def load(self, conn: redis.Redis) -> None:
        state = self.state = MarketState()
        p = self.prefix
        instruments = sorted(int(i) for i in conn.smembers(p + layout.INSTRUMENTS))
        accounts = sorted(int(a) for a in conn.smembers(p + layout.ACCOUNTS))
        for start in range(0, len(instruments), LOAD_PIPELINE_KEYS_MAX):
            chunk = instruments[start : start + LOAD_PIPELINE_KEYS_MAX]
            pipe = conn.pipeline(transaction=False)
            for instrument_id in chunk:
                pipe.hgetall(p + layout.market(instrument_id))
                pipe.hgetall(p + layout.level_qty(instrument_id, "BUY"))
                pipe.hgetall(p + layout.level_qty(instrument_id, "SELL"))
                pipe.hgetall(p + layout.candles(instrument_id))
            replies = pipe.execute()
            for index, instrument_id in enumerate(chunk):
                fields, bids, asks, candles = replies[4 * index : 4 * index + 4]
                market = state.markets[instrument_id] = Market(instrument_id)
                market.set_fields({_text(k): _text(v) for k, v in fields.items()})
                market.bids = {int(k): int(v) for k, v in bids.items()}
                market.asks = {int(k): int(v) for k, v in asks.items()}
                market.candles = {int(k): layout.parse_candle(v) for k, v in candles.items()}
                assert all(q > 0 for q in market.bids.values()), instrument_id
                assert all(q > 0 for q in market.asks.values()), instrument_id
                if market.candles:
                    market.window()
        for start in range(0, len(accounts), LOAD_PIPELINE_KEYS_MAX):
            chunk = accounts[start : start + LOAD_PIPELINE_KEYS_MAX]
            pipe = conn.pipeline(transaction=False)
            for account_id in chunk:
                pipe.hgetall(p + layout.account(account_id))
            for account_id, stored in zip(chunk, pipe.execute(), strict=True):
                wallet = state.wallets[account_id] = Wallet()
                wallet.seq, wallet.balances = layout.parse_account(stored)

    # -- a batch ------------------------------------------------------------------------

    def write(self, events: Sequence[Event], ops: Ops) -> None:
        touched = self.state.fold(events, ENGINE_EVENTS, ACCOUNT_EVENTS, REFERENCE_EVENTS)
        self._write_markets(touched, ops)
        self._write_accounts(touched, ops)
        self._write_reference(touched, ops)

    def write_columns(self, batch: ColumnarBatch, ops: Ops) -> None:
        """:meth:`write` of a columnar batch: the account events folded in columns
        (:mod:`.market_accounts`), the engine and reference records per record."""
        per_record = {cls: c for cls, c in batch.types.items() if cls not in ACCOUNT_TYPES}
        bodies = bodies_of(ColumnarBatch(batch.records, per_record))
        touched = self.state.fold_columns(bodies, batch.types)
        self._write_markets(touched, ops)
        self._write_accounts(touched, ops)
        self._write_reference(touched, ops)

    def _write_markets(self, touched: Touched, ops: Ops) -> None:
        markets = self.state.markets
        if touched.new_instruments:
            ops.bulk("sadd", layout.INSTRUMENTS, [str(i) for i in touched.new_instruments])
        for (instrument_id, side), prices in touched.levels.items():
            market = markets[instrument_id]
            book = market.bids if side == "BUY" else market.asks
            added: list[str] = []  # zadd: score, member
            quantities: list[str] = []
            removed: list[str] = []
            for price, existed in prices.items():
                text = str(price)
                qty = book.get(price)
                if qty:
                    quantities += (text, str(qty))
                    if not existed:
                        added += (text, text)
                elif existed:
                    removed.append(text)
            if added:
                ops.bulk("zadd", layout.levels(instrument_id, side), added)
            if quantities:
                ops.bulk("hset", layout.level_qty(instrument_id, side), quantities)
            if removed:
                ops.bulk("zrem", layout.levels(instrument_id, side), removed)
                ops.bulk("hdel", layout.level_qty(instrument_id, side), removed)
        pack, entry_id = self._pack, layout.entry_id
        for instrument_id, updates in touched.book_updates.items():
            ops.xadd(
                layout.book_updates(instrument_id), layout.BOOK_UPDATES_KEPT,
                [(entry_id(u[0]), pack(u[1:])) for u in updates], markets[instrument_id].book_seq,
            )  # fmt: skip
        for instrument_id, trades in touched.trades.items():
            market = markets[instrument_id]
            ops.xadd(
                layout.trades(instrument_id), layout.TRADES_KEPT,
                [(entry_id(t[0]), pack(t[1:])) for t in trades], market.trade_seq,
            )  # fmt: skip
            candles = market.candles
            changed: list[str] = []
            for minute in touched.candles[instrument_id]:
                candle = candles.get(minute)
                if candle is not None:
                    changed += (str(minute), layout.candle_text(candle))
            if changed:
                ops.bulk("hset", layout.candles(instrument_id), changed)
            dropped = touched.dropped_candles.get(instrument_id)
            if dropped:
                ops.bulk("hdel", layout.candles(instrument_id), [str(m) for m in dropped])
            ticker = market.ticker
            assert ticker is not None, instrument_id
            flat: list[str] = []
            for name, value in zip(layout.TICKER_FIELDS, ticker, strict=True):
                flat += (name, str(value))
            ops.bulk("hset", layout.ticker(instrument_id), flat)
        for instrument_id in touched.markets:
            ops.bulk("hset", layout.market(instrument_id), markets[instrument_id].fields())

    def _write_accounts(self, touched: Touched, ops: Ops) -> None:
        wallets = self.state.wallets
        if touched.new_accounts:
            ops.bulk("sadd", layout.ACCOUNTS, [str(a) for a in touched.new_accounts])
        accounts = touched.balances.keys() | touched.account_events.keys()
        for account_id in accounts.union(touched.account_streams):
            wallet = wallets[account_id]
            flat = [layout.SEQ, str(wallet.seq)]
            for asset in touched.balances.get(account_id, ()):
                available, held = wallet.balances[asset]
                flat += (layout.available(asset), str(available), layout.held(asset), str(held))
            ops.bulk("hset", layout.account(account_id), flat)
        entry_id = layout.entry_id
        for account_id, entries in touched.account_events.items():
            ops.xadd(
                layout.account_events(account_id), layout.ACCOUNT_EVENTS_KEPT,
                [(entry_id(seq), entry) for seq, entry in entries], wallets[account_id].seq,
            )  # fmt: skip
        for packed, count in touched.account_ops:
            ops.packed(packed, count)

    def _write_reference(self, touched: Touched, ops: Ops) -> None:
        if touched.ref_assets:
            flat: list[str] = []
            for code, scale in touched.ref_assets.items():
                flat += (code, scale)
            ops.bulk("hset", layout.REF_ASSETS, flat)
        if touched.ref_symbols:
            flat = []
            for symbol, instrument_text in touched.ref_symbols.items():
                flat += (symbol, instrument_text)
            ops.bulk("hset", layout.REF_SYMBOLS, flat)
        for instrument_id, fields in touched.ref_instruments.items():
            ops.bulk("hset", layout.reference_instrument(instrument_id), fields)

    # -- verification -------------------------------------------------------------------

    def table_rows(self, suffix: str, kind: str, content: Any) -> tuple[str, list[tuple[Any, ...]]]:
        return layout.table_rows(suffix, kind, content)


_EVERY_VALUE = ColumnSpec(None, frozenset())  # every payload value, no envelope
RedisReadModel.column_specs = {
    kind: _EVERY_VALUE
    for topic in RedisReadModel.topics
    for kind in TOPIC_TYPES[topic]
    if kind not in RedisReadModel.ignores
}


class RedisRowReadModel(RedisReadModel):
    """The same read model on the row path (a Python object per record from
    ``decode_domain``): the columnar read's twin."""

    columnar: ClassVar[bool] = False
    batch_records: ClassVar[int] = 20_000
