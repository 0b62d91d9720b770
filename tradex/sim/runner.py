"""Runs a simulation against a live exchange: paced open loop, bounded in flight.

    result = run(settings, config, market, on_tick=print)

Commands are submitted in the flow's order through one
:class:`tradex.commands.async_client.AsyncCommandClient` (one producer: each partition
gets them in that order), at ``config.rate`` per second on a fixed schedule (open loop: a
slow answer does not slow the schedule) while fewer than ``config.in_flight_max`` are
unanswered (then it waits: the bound). A cancel or amend waits for the ``OrderAccepted`` of
its order (to put in the order id); it is skipped if that order was refused. At the end the
run waits until the matcher and the account processors have consumed everything it caused
(every fill settled), then hashes the trades.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from tradex.commands.async_client import ACCOUNTS, AsyncCommandClient, CommandTimeout
from tradex.domain import OrderAccepted, PlaceOrder
from tradex.domain.ids import order_id
from tradex.infra.partitioner import partition_for
from tradex.infra.settings import Settings
from tradex.log.keys import instrument_key
from tradex.log.source import KafkaLog, Place
from tradex.log.topics import (
    ACCOUNTS_GROUP,
    ENGINE_EVENTS,
    MATCHER_GROUP,
    ORDER_REQUESTS,
    SETTLEMENTS,
)
from tradex.schemas.remote import codec_from_settings
from tradex.sim.agents import Emit
from tradex.sim.config import SimConfig
from tradex.sim.flow import order_flow
from tradex.sim.market import Market
from tradex.sim.stats import LatencyHistogram, SimResult, SimStats, percentile_ms
from tradex.sim.watch import EngineWatcher, trades_hash

COMMAND_TIMEOUT_S = 300.0
DRAIN_S_MAX = 600.0
DRAIN_POLL_S = 0.2
TICK_S = 1.0
ORDERS_REMEMBERED_MAX = 500_000  # PlaceOrders whose id a later cancel/amend may ask for
PACE_SLEEP_MIN_S = 0.001

Tick = Callable[[SimStats], None]


class Run:
    """The state of one run (its counters are read by the ticker)."""

    def __init__(self, config: SimConfig, market: Market, start_ns: int) -> None:
        self.config = config
        self.market = market
        self.start_ns = start_ns
        self.sent = self.answered = self.orders = self.skipped = self.timeouts = 0
        self.rejects: Counter[str] = Counter()
        self.latencies = LatencyHistogram()
        self.window_ms: list[float] = []
        self.order_ids: OrderedDict[str, asyncio.Future[int | None]] = OrderedDict()
        self.phase = "sending"
        self.started = time.perf_counter()

    async def submit(self, client: AsyncCommandClient, slots: asyncio.Semaphore,
                     tasks: set[asyncio.Task[None]], emit: Emit) -> None:  # fmt: skip
        command = emit.command
        if emit.target:
            future = self.order_ids.get(emit.target)
            target_id = None if future is None else await future
            if target_id is None:
                self.skipped += 1
                return
            command = command._replace(order_id=target_id)
        placed: asyncio.Future[int | None] | None = None
        on_delivered = None
        if isinstance(command, PlaceOrder):
            loop = asyncio.get_running_loop()
            placed = loop.create_future()
            on_delivered = _order_id_setter(loop, placed)
            self.order_ids[command.command_id] = placed
            while len(self.order_ids) > ORDERS_REMEMBERED_MAX:
                self.order_ids.popitem(last=False)
            self.orders += 1
        await slots.acquire()
        # created in flow order, started in that order (the loop runs callbacks FIFO), and
        # execute() produces before its first await: the log gets the flow's order.
        task = asyncio.create_task(self._one(client, slots, command, placed, on_delivered))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        self.sent += 1

    async def _one(self, client: AsyncCommandClient, slots: asyncio.Semaphore, command: Any,
                   placed: asyncio.Future[int | None] | None,
                   on_delivered: Callable[[int, int], None] | None) -> None:  # fmt: skip
        accepted_id = None
        try:
            try:
                outcome = await client.execute(command, COMMAND_TIMEOUT_S, on_delivered)
            except CommandTimeout:
                self.timeouts += 1
                return
            self.answered += 1
            latency_ms = outcome.latency_s * 1000
            self.latencies.add(latency_ms)
            self.window_ms.append(latency_ms)
            for event in outcome.events:
                if isinstance(event, OrderAccepted):
                    accepted_id = event.order_id
                reason = getattr(event, "reason", None)
                if reason is not None:
                    self.rejects[str(reason)] += 1
        finally:
            slots.release()
            if placed is not None and not placed.done():
                placed.set_result(accepted_id)  # never delivered: None

    def stats(self, previous: tuple[float, int, int, int], watcher: EngineWatcher) -> SimStats:
        at, sent, orders, trades_before = previous
        now = time.perf_counter()
        span = max(1e-9, now - at)
        trades, engine_rejects = watcher.snapshot()
        window, self.window_ms = self.window_ms, []
        return SimStats(
            elapsed_s=round(now - self.started, 1),
            commands_planned=self.config.commands,
            sent=self.sent,
            answered=self.answered,
            in_flight=self.sent - self.answered - self.timeouts,
            commands_per_s=round((self.sent - sent) / span, 1),
            orders_per_s=round((self.orders - orders) / span, 1),
            trades_per_s=round((trades - trades_before) / span, 1),
            ack_p50_ms=percentile_ms(window, 0.5),
            ack_p99_ms=percentile_ms(window, 0.99),
            trades=trades,
            rejects=dict(self.rejects + Counter(engine_rejects)),
            phase=self.phase,
        )


def _order_id_setter(
    loop: asyncio.AbstractEventLoop, placed: asyncio.Future[int | None]
) -> Callable[[int, int], None]:
    """The PlaceOrder's order id is its position on the log (``tradex.domain.ids``): known at
    delivery, well before the account processor's answer."""

    def resolve(value: int) -> None:
        if not placed.done():
            placed.set_result(value)

    def on_delivered(partition: int, offset: int) -> None:
        loop.call_soon_threadsafe(resolve, order_id(partition, offset))

    return on_delivered


async def _ticker(run: Run, watcher: EngineWatcher, on_tick: Tick | None) -> None:
    previous = (time.perf_counter(), 0, 0, 0)
    while True:
        await asyncio.sleep(TICK_S)
        stats = run.stats(previous, watcher)
        previous = (time.perf_counter(), run.sent, run.orders, stats.trades)
        if on_tick is not None:
            on_tick(stats)


def _engine_starts(log: KafkaLog, market: Market) -> dict[Place, int]:
    """The end of each simulated instrument's engine-events partition, now."""
    partitions = log.partitions(ENGINE_EVENTS)
    starts = {}
    for item in market.instruments:
        place = (ENGINE_EVENTS, partition_for(instrument_key(item.instrument_id), partitions))
        starts[place] = log.watermarks(*place)[1]
    return starts


def _drained(log: KafkaLog, watcher: EngineWatcher) -> bool:
    """Every order request matched, every settlement settled, every engine event read."""
    for group, topic in ((MATCHER_GROUP, ORDER_REQUESTS), (ACCOUNTS_GROUP, SETTLEMENTS)):
        committed = log.committed(group, topic)
        for partition, position in committed.items():
            if max(position, 0) < log.watermarks(topic, partition)[1]:
                return False
    ends = {place: log.watermarks(*place)[1] for place in watcher.places}
    return watcher.reached(ends)


async def run_async(settings: Settings, config: SimConfig, market: Market,
                    on_tick: Tick | None = None) -> SimResult:  # fmt: skip
    config.check()
    start_ns = config.start_ns or time.time_ns()
    codec = codec_from_settings(settings)
    state = Run(config, market, start_ns)
    log = KafkaLog(settings, bulk=False)
    watcher = EngineWatcher(settings, codec, _engine_starts(log, market))
    client = await AsyncCommandClient.open(settings, ACCOUNTS, codec, name=f"{config.tag}-sim")
    ticker = asyncio.create_task(_ticker(state, watcher, on_tick))
    tasks: set[asyncio.Task[None]] = set()
    try:
        slots = asyncio.Semaphore(config.in_flight_max)
        interval_s = 1.0 / config.rate
        begun = time.perf_counter()
        for n, emit in enumerate(order_flow(config, market, start_ns)):
            delay = begun + n * interval_s - time.perf_counter()
            if delay >= PACE_SLEEP_MIN_S:
                await asyncio.sleep(delay)
            await state.submit(client, slots, tasks, emit)
        send_s = time.perf_counter() - begun
        if tasks:
            await asyncio.gather(*list(tasks))
        state.phase = "draining"
        deadline = time.monotonic() + DRAIN_S_MAX
        while not await asyncio.to_thread(_drained, log, watcher):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pipeline did not drain in {DRAIN_S_MAX} s")
            await asyncio.sleep(DRAIN_POLL_S)
        elapsed_s = time.perf_counter() - begun
    finally:
        ticker.cancel()
        for task in tasks:
            task.cancel()
        await client.aclose()
        watcher.close()
        log.close()
    trades, engine_rejects = watcher.snapshot()
    return SimResult(
        seed=config.seed, instruments=config.instruments, accounts=config.accounts,
        rate=config.rate, start_ns=start_ns, commands=state.sent, orders=state.orders,
        skipped=state.skipped, timeouts=state.timeouts, trades=trades,
        volume_lots=watcher.volume_lots,
        rejects=dict(state.rejects + Counter(engine_rejects)),
        send_s=round(send_s, 3), elapsed_s=round(elapsed_s, 3),
        commands_per_s=round(state.sent / max(send_s, 1e-9), 1),
        ack_p50_ms=state.latencies.percentile_ms(0.5),
        ack_p99_ms=state.latencies.percentile_ms(0.99),
        trades_hash=trades_hash(watcher.trades, start_ns),
    )  # fmt: skip


def run(settings: Settings, config: SimConfig, market: Market,
        on_tick: Tick | None = None) -> SimResult:  # fmt: skip
    """Run ``config``'s flow on ``market`` (blocking); ``on_tick`` gets a snapshot each second."""
    return asyncio.run(run_async(settings, config, market, on_tick))
