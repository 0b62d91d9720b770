"""One backtest run of an ``order-requests`` partition through the matcher's own fold.

The partition is read from its start: inputs before the window go through the engine as
they are (the book at the window's start is history's), inputs in the window are rewritten
(:mod:`.rewrite`) and, in the strategy's partition, followed by the strategy's orders
(:mod:`.strategy`). The engine is :class:`~tradex.matching.partition.PartitionEngine` — the
code of the matcher service, its recovery and ``tradex matching verify`` — so an unchanged
window gives the bytes the matcher wrote.

Positions: an input of the window keeps its offset as its position (what the report's
charts and the Parquet rows carry); inside the engine, inputs added by the backtest take
the next offsets and shift the later ones (offsets must increase; they name event ids, so
after the first added input the ids differ from history's, as they should).

History for the same window is read from ``engine-events``: the records caused by the
window's inputs (their envelope's ``causation_id`` is the input's event id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradex.audit.rerun import LOGICAL_TOPICS
from tradex.audit.timetravel import AsOf
from tradex.domain.engine import L2Delta, Trade
from tradex.domain.orders import InstrumentRules, NewOrder
from tradex.log.records import LogRecord
from tradex.log.source import LogSource
from tradex.log.topics import ENGINE_EVENTS, ORDER_REQUESTS
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, InputRecord, PartitionEngine
from tradex.matching.recovery import REPLAY_BATCH_MAX, input_records
from tradex.schemas.codec import Codec, CodecError
from tradex.schemas.envelope import Envelope

from .market import Market
from .rewrite import Changes, Rewriter, reached
from .strategy import Trader


@dataclass(frozen=True)
class Window:
    start: AsOf | None = None  # None: the partition's first input
    end: AsOf | None = None  # exclusive; None: the partition's end (the matcher's position)


@dataclass
class Catalog:
    """What fees and PnL need from the inputs: each order's account and rates, each
    instrument's last rules (tick and lot sizes, rates)."""

    orders: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    rules: dict[int, InstrumentRules] = field(default_factory=dict)

    def note(self, obj: Any) -> None:
        if isinstance(obj, NewOrder):
            self.orders[obj.order_id] = (obj.account_id, obj.instrument_id, obj.maker_fee_ppm,
                                         obj.taker_fee_ppm)  # fmt: skip
        elif isinstance(obj, InstrumentRules):
            self.rules[obj.instrument_id] = obj


@dataclass
class Stream:
    """The engine events of one side (history or backtest) of a window, with the position
    of the input that caused each."""

    values: list[bytes] = field(default_factory=list)  # engine-events records, in order
    events: list[tuple[int, Any]] = field(default_factory=list)  # (position, engine event)

    def add(self, position: int, value: bytes, obj: Any) -> None:
        self.values.append(value)
        self.events.append((position, obj))


@dataclass
class PartitionRun:
    partition: int
    warmup_inputs: int = 0  # inputs before the window, run unchanged
    inputs: int = 0  # inputs of the window
    added: int = 0  # inputs the backtest added (rules copies, strategy orders)
    rewritten: int = 0  # inputs of the window re-encoded with changes
    first_position: int = -1
    last_position: int = -1
    history: Stream = field(default_factory=Stream)
    backtest: Stream = field(default_factory=Stream)
    books_at_start: dict[int, np.ndarray] = field(default_factory=dict)  # live orders

    @property
    def identical(self) -> bool:
        """The backtest wrote exactly the records history holds for the window."""
        return self.history.values == self.backtest.values


def decode(codec: Codec, value: bytes | None) -> tuple[Envelope, Any] | None:
    if not value:
        return None
    try:
        return codec.decode_domain(value)
    except CodecError:
        return None


def run_partition(
    source: LogSource,
    codec: Codec,
    partition: int,
    end: int,
    window: Window,
    changes: Changes,
    config: BookConfig,
    settlement_partitions: int,
    catalog: Catalog,
    trader: Trader | None = None,
    progress: Callable[[int], None] | None = None,
) -> PartitionRun:
    """Run ``order-requests[partition]`` below offset ``end`` (module doc)."""
    assert end >= 0, end
    engine = PartitionEngine(
        partition, codec, LOGICAL_TOPICS, max(settlement_partitions, 1),
        OutputBuffers(config.orders_max), config,
    )  # fmt: skip
    run = PartitionRun(partition)
    rewriter = Rewriter(codec, changes)
    market = Market()
    position_of: dict[str, int] = {}  # event id of each input fed in the window -> position
    warm: list[InputRecord] = []
    pending: list[InputRecord] = []  # window inputs not yet run
    started = False
    shift = 0  # inputs added so far: the engine offset of an input is its own + shift

    def flush() -> bool:
        """Run the pending inputs; their engine events go to the backtest stream at the
        position of their input. True if one traded the trader's instrument."""
        traded = False
        if not pending:
            return traded
        outputs = engine.apply(pending)
        pending.clear()
        for out in outputs:
            if out.topic != ENGINE_EVENTS:
                continue
            envelope, obj = codec.decode_domain(out.value)
            run.backtest.add(position_of[envelope.causation_id], out.value, obj)
            if trader is not None:
                market.apply((obj,))
                trader.observe(obj)
                traded |= isinstance(obj, Trade) and (
                    obj.instrument_id == trader.schedule.instrument_id
                )
        return traded

    def push(offset: int, key: bytes | None, value: bytes | None, ts_ms: int, at: int) -> None:
        """An input for the engine at ``offset``, caused by the window's input ``at``."""
        decoded = decode(codec, value)
        if decoded is not None:
            position_of[decoded[0].event_id] = at
        pending.append(InputRecord(partition, offset, key, value, ts_ms))

    for rec in _records(source, partition, end):
        decoded = decode(codec, rec.value)
        time_ns = decoded[1].event_time_ns if decoded is not None else -1
        if decoded is not None:
            catalog.note(decoded[1])
        if not started and (window.start is None or _at(window.start, rec.offset, decoded)):
            started = True
            if warm:
                engine.apply(warm)
            run.books_at_start = {i: b.live_orders() for i, b in sorted(engine.books.items())}
            for instrument_id, rows in run.books_at_start.items():
                market.seed(instrument_id, rows)
        if not started:
            warm.append(InputRecord(partition, rec.offset, rec.key, rec.value, rec.timestamp_ms))
            run.warmup_inputs += 1
            if len(warm) >= REPLAY_BATCH_MAX:
                engine.apply(warm)
                warm = []
            continue
        if window.end is not None and _at(window.end, rec.offset, decoded):
            break
        run.inputs += 1
        if run.first_position < 0:
            run.first_position = rec.offset
        run.last_position = rec.offset
        feeds = rewriter.records(rec.offset, time_ns, decoded, rec.key, rec.value)
        for i, (key, value) in enumerate(feeds):
            if i < len(feeds) - 1:  # inserted before the input
                added = decode(codec, value)
                if added is not None:
                    catalog.note(added[1])
            push(rec.offset + shift, key, value, rec.timestamp_ms, rec.offset)
            shift += i < len(feeds) - 1
        if trader is None:
            if len(pending) >= REPLAY_BATCH_MAX:
                flush()
            continue
        every, on_trade = trader.schedule.every, trader.schedule.on_trade
        if not on_trade and run.inputs % every != 0:
            continue  # not due: the pending inputs wait for the next call
        traded = flush()
        if (every > 0 and run.inputs % every == 0) or (on_trade and traded):
            instrument = trader.schedule.instrument_id
            rules = catalog.rules.get(instrument)
            if rules is not None:  # its orders as the instrument's would be: sizes, rates
                trader.tick_size = rules.tick_size
                trader.maker_fee_ppm, trader.taker_fee_ppm = (
                    rules.maker_fee_ppm,
                    rules.taker_fee_ppm,
                )
            book = market.book(instrument)
            time_now = engine.engine_times.get(instrument, max(time_ns, 0))
            view = trader.view(rec.offset, time_now, book.bids.top(trader.depth),
                               book.asks.top(trader.depth), book.last_price)  # fmt: skip
            for key, value in trader.act(view, partition):
                shift += 1
                added = decode(codec, value)
                if added is not None:
                    catalog.note(added[1])
                push(rec.offset + shift, key, value, rec.timestamp_ms, rec.offset)
            flush()
        if progress is not None:
            progress(1)
    flush()
    if not started:  # the window starts past the end: the book at the end
        if warm:
            engine.apply(warm)
        run.books_at_start = {i: b.live_orders() for i, b in sorted(engine.books.items())}
    run.added = shift
    run.rewritten = rewriter.rewritten
    if position_of:
        _history(source, codec, partition, position_of, run.history)
    return run


def _at(point: AsOf, offset: int, decoded: tuple[Envelope, Any] | None) -> bool:
    """Has the stream reached ``point`` at this input? (An undecodable input has no time:
    it never starts or ends a time window.)"""
    if point.offset is None and decoded is None:
        return False
    return reached(point, offset, decoded[1].event_time_ns if decoded is not None else -1)


def _records(source: LogSource, partition: int, end: int) -> Iterator[InputRecord]:
    if end <= 0:
        return
    place = (ORDER_REQUESTS, partition)
    for batch in source.read_batches({place: 0}, {place: end}, REPLAY_BATCH_MAX):
        yield from input_records(batch)


def _history(
    source: LogSource, codec: Codec, partition: int, position_of: dict[str, int], out: Stream
) -> None:
    """The records of ``engine-events[partition]`` caused by the window's inputs (none if
    the log has no such partition: an archive of order requests alone)."""
    try:
        if source.partitions(ENGINE_EVENTS) <= partition:
            return
    except Exception:  # no engine-events topic at all (Kafka: RuntimeError/KafkaException)
        return
    high = source.watermarks(ENGINE_EVENTS, partition)[1]
    record: LogRecord
    for record in source.read(ENGINE_EVENTS, partition, 0, high):
        value = record.value or b""
        decoded = decode(codec, value)
        if decoded is None:
            continue
        position = position_of.get(decoded[0].causation_id)
        if position is not None:
            out.add(position, value, decoded[1])


def spreads(
    seed: dict[int, np.ndarray], events: list[tuple[int, Any]]
) -> list[tuple[int, int, int]]:
    """(position, instrument, spread ticks) after each input that changed a book whose two
    sides exist, replaying ``events`` over the books ``seed`` holds."""
    market = Market()
    for instrument_id, rows in seed.items():
        market.seed(instrument_id, rows)
    out: list[tuple[int, int, int]] = []
    touched: set[int] = set()
    for i, (position, obj) in enumerate(events):
        market.apply((obj,))
        if isinstance(obj, L2Delta):
            touched.add(obj.instrument_id)
        last = i + 1 == len(events) or events[i + 1][0] != position
        if last and touched:
            for instrument_id in sorted(touched):
                spread = market.book(instrument_id).spread()
                if spread is not None:
                    out.append((position, instrument_id, spread))
            touched = set()
    return out
