"""The fold of the ``redis`` read model: engine, account and reference events → market
state, balances and the channels' entries (pure, no I/O).

:class:`MarketState` is everything the read model keeps per instrument and account; its
:meth:`~MarketState.fold` applies a batch in place and returns what the batch touched
(:class:`Touched`), from which the sink writes *net* changes: the final quantity of each
touched level, the final balance of each touched (account, asset), the channels' new
entries (only the last ``*_KEPT`` of a batch: the streams keep no more).

Determinism: every value depends on one partition's records only — an instrument's book,
trades and ticker on its ``engine-events`` partition, an account's balances and stream on
its ``account-events`` partition, reference rows on theirs — never on how the partitions'
records interleave in a batch, so batch sizes and rebuilds give the same read model.

- **Book**: an ``L2Delta`` sets its level to ``qty`` (0 removes it); ``book_seq`` must be
  the instrument's previous one + 1 (records written before the field existed carry 0:
  the fold then counts itself).
- **Trades**: ``trade_seq`` counts an instrument's trades (1, 2, 3 …); the ticker's
  one-minute buckets (``candles``) keep the window of :func:`.redis_layout.ticker_window`.
- **Balances**: per event and asset, ``Δtotal = Σ own postings``, ``Δheld = hold delta``
  (``tradex.domain.events``), as in :mod:`.ledger_fold`; ``held >= 0`` always, and
  ``available >= 0`` for user accounts, checked after each batch.
- **Account channel**: one entry per account event, numbered per account (``seq``), with
  the event's fields and the account's balances after it for the assets it changed.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from functools import partial
from operator import attrgetter
from typing import Any, NamedTuple

import msgpack

from tradex import domain
from tradex.domain.engine import L2Delta, RulesApplied, Trade
from tradex.log.topics import REFERENCE_EVENTS, TOPIC_TYPES
from tradex.projections import redis_layout as layout
from tradex.projections.market_accounts import fold_accounts
from tradex.projections.projector import Event
from tradex.schemas.columns import TypeColumns

MARKETS_MAX = 100_000  # instruments in one read model
_WITH_POSTINGS = frozenset((domain.Deposited, domain.WithdrawalPaid, domain.FillSettled))
_REFERENCE_TYPES = frozenset(TOPIC_TYPES[REFERENCE_EVENTS])
_INSTRUMENT_EVENTS = (
    domain.InstrumentCreated,
    domain.InstrumentRulesUpdated,
    domain.InstrumentHalted,
    domain.InstrumentResumed,
)


class Ticker(NamedTuple):
    window_start_ns: int
    window_end_ns: int
    open: int
    high: int
    low: int
    last: int
    volume: int  # lots
    quote_volume: int  # Σ price · qty (ticks · lots; × tick_size = quote minor units)
    trades: int
    change: int  # last − open, ticks


class Market:
    """One instrument: its book, counters, last trade and the ticker's candles."""

    __slots__ = (
        "asks", "best_ask", "best_ask_qty", "best_bid", "best_bid_qty", "bids", "book_seq",
        "candles", "event_time_ns", "halted", "instrument_id", "last_price", "last_qty",
        "last_taker_side", "last_trade_id", "last_trade_time_ns", "price_band_bps",
        "ticker", "trade_seq",
    )  # fmt: skip

    def __init__(self, instrument_id: int) -> None:
        self.instrument_id = instrument_id
        self.bids: dict[int, int] = {}  # price ticks -> qty lots
        self.asks: dict[int, int] = {}
        self.book_seq = 0
        self.best_bid = self.best_bid_qty = self.best_ask = self.best_ask_qty = 0
        self.trade_seq = 0
        self.last_price = self.last_qty = self.last_trade_id = self.last_trade_time_ns = 0
        self.last_taker_side = ""
        self.event_time_ns = 0
        self.halted = 0
        self.price_band_bps = 0
        # minute -> [open, high, low, close, volume, quote_volume, trades]
        self.candles: dict[int, list[int]] = {}
        self.ticker: Ticker | None = None

    def fields(self) -> list[str]:
        """The market hash (field, value, ...) in :data:`.redis_layout.MARKET_FIELDS` order."""
        values = (
            self.book_seq, self.best_bid, self.best_bid_qty, self.best_ask, self.best_ask_qty,
            self.trade_seq, self.last_price, self.last_qty, self.last_trade_id,
            self.last_taker_side, self.last_trade_time_ns, self.event_time_ns, self.halted,
            self.price_band_bps,
        )  # fmt: skip
        flat: list[str] = []
        for name, value in zip(layout.MARKET_FIELDS, values, strict=True):
            flat += (name, str(value))
        return flat

    def set_fields(self, stored: dict[str, str]) -> None:
        """From a stored market hash (:meth:`fields`)."""
        for name in layout.MARKET_FIELDS:
            value = stored[name]
            setattr(self, name, value if name == "last_taker_side" else int(value))

    def best_prices(self) -> None:
        bids, asks = self.bids, self.asks
        self.best_bid = max(bids) if bids else 0
        self.best_bid_qty = bids[self.best_bid] if bids else 0
        self.best_ask = min(asks) if asks else 0
        self.best_ask_qty = asks[self.best_ask] if asks else 0

    def window(self) -> list[int]:
        """Drop the candles before the ticker's window, recompute the ticker; the minutes
        dropped."""
        start_ns, end_ns = layout.ticker_window(self.last_trade_time_ns)
        first = start_ns // layout.MINUTE_NS
        dropped = [minute for minute in self.candles if minute < first]
        for minute in dropped:
            del self.candles[minute]
        minutes = sorted(self.candles)
        assert minutes and minutes[-1] * layout.MINUTE_NS < end_ns, "the last trade's candle"
        assert len(minutes) <= layout.TICKER_MINUTES, len(minutes)
        candles = [self.candles[m] for m in minutes]
        opened = candles[0][0]
        self.ticker = Ticker(
            start_ns, end_ns, opened, max(c[1] for c in candles), min(c[2] for c in candles),
            self.last_price, sum(c[4] for c in candles), sum(c[5] for c in candles),
            sum(c[6] for c in candles), self.last_price - opened,
        )  # fmt: skip
        assert self.ticker.low <= self.last_price <= self.ticker.high, self.ticker
        return dropped


class Wallet:
    """One account: balances per asset and the number of its events (its channel's seq)."""

    __slots__ = ("balances", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self.balances: dict[str, list[int]] = {}  # asset -> [available, held]


class Touched:
    """What one batch changed (keys of the state: the final values are read from it)."""

    def __init__(self) -> None:
        # (instrument, side) -> {price: the level existed before the batch}
        self.levels: dict[tuple[int, str], dict[int, bool]] = defaultdict(dict)
        self.book_updates: dict[int, deque[tuple[int, str, int, int]]] = defaultdict(
            lambda: deque(maxlen=layout.BOOK_UPDATES_KEPT)
        )
        # instrument -> (trade_seq, trade_id, price, qty, taker side, time ns)
        self.trades: dict[int, deque[tuple[int, int, int, int, str, int]]] = defaultdict(
            lambda: deque(maxlen=layout.TRADES_KEPT)
        )
        self.markets: set[int] = set()
        self.candles: dict[int, set[int]] = defaultdict(set)  # instrument -> minutes
        self.dropped_candles: dict[int, list[int]] = {}
        self.new_instruments: list[int] = []
        self.new_accounts: list[int] = []
        self.balances: dict[int, set[str]] = defaultdict(set)  # account -> assets
        # account -> (seq, the packed entry: see redis_layout.ACCOUNT_ENTRY_FIELDS)
        self.account_events: dict[int, deque[tuple[int, bytes]]] = defaultdict(
            lambda: deque(maxlen=layout.ACCOUNT_EVENTS_KEPT)
        )
        # the same from the columnar fold (.market_accounts): the accounts with entries,
        # their streams' xadd ops packed (msgpack ops, how many: redis_store.Ops.packed)
        self.account_streams: list[int] = []
        self.account_ops: list[tuple[bytes, int]] = []
        self.ref_assets: dict[str, str] = {}
        self.ref_symbols: dict[str, str] = {}
        self.ref_instruments: dict[int, list[str]] = {}


def _entry_getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    names = layout.ACCOUNT_ENTRY_FIELDS[cls.__name__]
    missing = set(names) - set(cls._fields)  # type: ignore[attr-defined]
    assert not missing, f"{cls.__name__} has no {missing}"
    getter = attrgetter(*names)
    return getter if len(names) > 1 else lambda body: (getter(body),)


_ENTRY_GETTERS = {cls: _entry_getter(cls) for cls in domain.ACCOUNT_EVENT_TYPES}


class MarketState:
    """The read model's state (see the module doc)."""

    def __init__(self) -> None:
        self.markets: dict[int, Market] = {}
        self.wallets: dict[int, Wallet] = {}
        self._pack = msgpack.Packer().pack  # one per state: a Packer is not thread-safe
        # the engine records this model folds, by type (both folds dispatch through it)
        self._engine: dict[type, Callable[[Any, Touched], None]] = {
            L2Delta: self._l2, Trade: self._trade, RulesApplied: self._rules,
        }  # fmt: skip

    def _market(self, instrument_id: int, touched: Touched) -> Market:
        market = self.markets.get(instrument_id)
        if market is None:
            assert len(self.markets) < MARKETS_MAX, f"more than {MARKETS_MAX} instruments"
            market = self.markets[instrument_id] = Market(instrument_id)
            touched.new_instruments.append(instrument_id)
        touched.markets.add(instrument_id)
        return market

    def _wallet(self, account_id: int, touched: Touched) -> Wallet:
        wallet = self.wallets.get(account_id)
        if wallet is None:
            wallet = self.wallets[account_id] = Wallet()
            touched.new_accounts.append(account_id)
        return wallet

    # -- the batch ----------------------------------------------------------------------

    def fold(
        self, events: Sequence[Event], engine_topic: str, account_topic: str, reference_topic: str
    ) -> Touched:
        """Apply ``events`` (log order within each partition); what they touched."""
        touched = Touched()
        engine, account, reference = self._engine.get, self._account, self._reference
        for event in events:
            topic, body = event.topic, event.body
            if topic == engine_topic:
                fold = engine(type(body))
                if fold is not None:
                    fold(body, touched)
            elif topic == account_topic:
                account(body, touched)
            elif topic == reference_topic:
                reference(body, touched)
        self._finish(touched)
        return touched

    def fold_columns(self, bodies: Sequence[Any], types: dict[type, TypeColumns]) -> Touched:
        """:meth:`fold` of a columnar batch: ``bodies`` its engine and reference records in
        batch order (:func:`.column_events.bodies_of`), ``types`` its columns, whose account
        events are folded in columns (:func:`.market_accounts.fold_accounts`, the twin of
        :meth:`_account`)."""
        touched = Touched()
        engine, reference = self._engine.get, self._reference
        for body in bodies:
            fold = engine(type(body))
            if fold is not None:
                fold(body, touched)
            else:
                assert type(body) in _REFERENCE_TYPES, type(body)
                reference(body, touched)
        new_wallet = partial(self._wallet, touched=touched)
        fold_accounts(self.wallets, new_wallet, types, touched)
        self._finish(touched)
        return touched

    def _clock(self, market: Market, time_ns: int) -> None:
        assert time_ns >= market.event_time_ns, (
            f"instrument {market.instrument_id}: engine time {time_ns} before "
            f"{market.event_time_ns}"
        )
        market.event_time_ns = time_ns

    def _l2(self, body: L2Delta, touched: Touched) -> None:
        instrument_id = body.instrument_id
        market = self._market(instrument_id, touched)
        book_seq = market.book_seq + 1
        assert body.book_seq in (book_seq, 0), (
            f"instrument {instrument_id}: book_seq {body.book_seq} after {market.book_seq}"
        )
        side, price, qty = body.side, body.price, body.qty
        assert 0 < price <= layout.PRICE_MAX, price
        assert qty >= 0, qty
        book = market.bids if side == "BUY" else market.asks
        existed = price in book
        if qty:
            book[price] = qty
        else:
            assert existed, f"instrument {instrument_id}: {side} level {price} removed, not there"
            del book[price]
        market.book_seq = book_seq
        self._clock(market, body.event_time_ns)
        touched.levels[(instrument_id, side)].setdefault(price, existed)
        touched.book_updates[instrument_id].append((book_seq, side, price, qty))

    def _trade(self, body: Trade, touched: Touched) -> None:
        instrument_id = body.instrument_id
        market = self._market(instrument_id, touched)
        price, qty, time_ns = body.price, body.qty, body.event_time_ns
        assert price > 0, price
        assert qty > 0, qty
        self._clock(market, time_ns)
        market.trade_seq += 1
        market.last_price, market.last_qty = price, qty
        market.last_trade_id, market.last_taker_side = body.trade_id, body.taker_side
        market.last_trade_time_ns = time_ns
        minute = time_ns // layout.MINUTE_NS
        candle = market.candles.get(minute)
        if candle is None:
            market.candles[minute] = [price, price, price, price, qty, price * qty, 1]
        else:
            if price > candle[1]:
                candle[1] = price
            if price < candle[2]:
                candle[2] = price
            candle[3] = price
            candle[4] += qty
            candle[5] += price * qty
            candle[6] += 1
        touched.candles[instrument_id].add(minute)
        touched.trades[instrument_id].append(
            (market.trade_seq, body.trade_id, price, qty, body.taker_side, time_ns)
        )

    def _rules(self, body: RulesApplied, touched: Touched) -> None:
        market = self._market(body.instrument_id, touched)
        self._clock(market, body.event_time_ns)
        market.halted = int(body.halted)
        market.price_band_bps = body.price_band_bps

    def _account(self, body: Any, touched: Touched) -> None:
        account_id = body.account_id
        wallets = self.wallets
        wallet = wallets.get(account_id) or self._wallet(account_id, touched)
        wallet.seq += 1
        balances = wallet.balances
        changed = touched.balances
        own: list[str] = []
        kind = type(body)
        if kind in _WITH_POSTINGS:
            for account, asset, amount in body.postings:
                if account == account_id:
                    target = wallet
                else:
                    target = wallets.get(account) or self._wallet(account, touched)
                balance = target.balances.get(asset)
                if balance is None:
                    balance = target.balances[asset] = [0, 0]
                balance[0] += amount  # total; a hold's part is moved below
                changed[account].add(asset)
                if account == account_id and asset not in own:
                    own.append(asset)
        held = domain.hold_delta(body)
        if held is not None and held[1]:
            asset, amount = held
            balance = balances.get(asset)
            if balance is None:
                balance = balances[asset] = [0, 0]
            balance[0] -= amount
            balance[1] += amount
            changed[account_id].add(asset)
            if asset not in own:
                own.append(asset)
        after = [(asset, *balances[asset]) for asset in own]
        entry = self._pack((kind.__name__, *_ENTRY_GETTERS[kind](body), after))
        touched.account_events[account_id].append((wallet.seq, entry))

    def _reference(self, body: Any, touched: Touched) -> None:
        if isinstance(body, domain.AssetCreated):
            touched.ref_assets[body.asset.code] = str(body.asset.scale)
        elif isinstance(body, _INSTRUMENT_EVENTS):
            instrument = body.instrument
            flat: list[str] = []
            for name, value in zip(instrument._fields, instrument, strict=True):
                flat += (name, str(value))
            touched.ref_instruments[instrument.instrument_id] = flat
            touched.ref_symbols[instrument.symbol] = str(instrument.instrument_id)

    def _finish(self, touched: Touched) -> None:
        levels = touched.levels
        for instrument_id in touched.markets:
            market = self.markets[instrument_id]
            if (instrument_id, "BUY") in levels or (instrument_id, "SELL") in levels:
                market.best_prices()
            if instrument_id in touched.trades:
                touched.dropped_candles[instrument_id] = market.window()
        wallets = self.wallets
        for account_id, assets in touched.balances.items():
            balances = wallets[account_id].balances
            for asset in assets:
                available, held = balances[asset]
                assert held >= 0, f"account {account_id} holds {held} {asset}"
                assert account_id <= 0 or available >= 0, (
                    f"account {account_id} has {available} {asset} available"
                )
