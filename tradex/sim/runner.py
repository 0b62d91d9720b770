"""Runs a simulation against a live exchange: paced open loop, bounded in flight.

    result = run(settings, config, market, on_tick=print)

Commands are submitted in the flow's order through one
:class:`tradex.commands.async_client.AsyncCommandClient` (one producer: each partition
gets them in that order), at ``config.rate`` per second on a fixed schedule (open loop: a
slow answer does not slow the schedule) while fewer than ``config.in_flight_max`` are
unanswered (then it waits: the bound). A cancel or amend names its order by the order id of
the PlaceOrder it targets, which is that command's log position (``tradex.domain.ids``):
the run predicts it — the partition's end when the run began plus the commands it sent
there since — so nothing waits for an answer; each delivery report checks the prediction
(``misplaced`` counts the misses: another writer on the partitions). At the end the run
waits until the matcher and the account processors have consumed everything it caused
(every fill settled), then hashes the trades.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from tradex.commands.async_client import ACCOUNTS, AsyncCommandClient, CommandTimeout
from tradex.domain import PlaceOrder
from tradex.domain.ids import order_id
from tradex.infra.partitioner import partition_for
from tradex.infra.settings import Settings
from tradex.log.keys import Routes, instrument_key
from tradex.log.source import KafkaLog, Place
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
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
from tradex.sim.watch import EngineWatcher

COMMAND_TIMEOUT_S = 300.0
DRAIN_S_MAX = 600.0
DRAIN_POLL_S = 0.2
TICK_S = 1.0
ORDERS_REMEMBERED_MAX = 500_000  # PlaceOrders whose id a later cancel/amend may ask for
PACE_SLEEP_MIN_S = 0.001
YIELD_EVERY = 64  # commands submitted between two turns of the loop when behind schedule

Tick = Callable[[SimStats], None]


class Run:
    """The state of one run (its counters are read by the ticker)."""

    def __init__(
        self, config: SimConfig, market: Market, start_ns: int, next_offsets: dict[int, int]
    ) -> None:
        self.config = config
        self.market = market
        self.start_ns = start_ns
        self.sent = self.answered = self.orders = self.skipped = self.timeouts = 0
        self.misplaced = 0  # commands delivered elsewhere than predicted (another writer)
        self.rejects: Counter[str] = Counter()
        self.latencies = LatencyHistogram()
        self.window_ms: list[float] = []
        self.routes = Routes(market.account_partitions)
        self.next_offsets = next_offsets  # account-commands partition -> ours sent + start
        self.shifts = dict.fromkeys(next_offsets, 0)  # others' records seen there (deliveries)
        self.order_ids: OrderedDict[str, int] = OrderedDict()  # PlaceOrder command id -> id
        self.phase = "sending"
        self.started = time.perf_counter()

    async def submit(self, client: AsyncCommandClient, slots: asyncio.Semaphore,
                     tasks: set[asyncio.Task[None]], emit: Emit) -> None:  # fmt: skip
        """Send ``emit``'s command (after every earlier one: see the module doc)."""
        command = emit.command
        if emit.target:
            target_id = self.order_ids.get(emit.target)
            if target_id is None:  # remembered no longer (the same in every run)
                self.skipped += 1
                return
            command = command._replace(order_id=target_id)
        await slots.acquire()
        partition = self.routes.route(command.account_id)[0]
        raw = self.next_offsets[partition]
        self.next_offsets[partition] = raw + 1
        placed = ""
        if isinstance(command, PlaceOrder):
            placed = command.command_id
            self.order_ids[placed] = order_id(partition, raw + self.shifts[partition])
            while len(self.order_ids) > ORDERS_REMEMBERED_MAX:
                self.order_ids.popitem(last=False)
            self.orders += 1
        # created in flow order, started in that order (the loop runs callbacks FIFO), and
        # execute() produces before its first await: each partition gets the flow's order.
        predicted = raw + self.shifts[partition]
        check = _placement_check(self, asyncio.get_running_loop(), (partition, raw, predicted),
                                 placed)  # fmt: skip
        task = asyncio.create_task(self._one(client, slots, command, check))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        self.sent += 1

    async def _one(self, client: AsyncCommandClient, slots: asyncio.Semaphore, command: Any,
                   on_delivered: Callable[[int, int], None]) -> None:  # fmt: skip
        try:
            try:
                outcome = await client.execute(command, COMMAND_TIMEOUT_S, on_delivered)
            except CommandTimeout:
                self.timeouts += 1
                return
        finally:
            slots.release()
        self.answered += 1
        latency_ms = outcome.latency_s * 1000
        self.latencies.add(latency_ms)
        self.window_ms.append(latency_ms)
        for event in outcome.events:
            reason = getattr(event, "reason", None)
            if reason is not None:
                self.rejects[str(reason)] += 1

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


def _placement_check(
    run: Run, loop: asyncio.AbstractEventLoop, where: tuple[int, int, int], placed: str
) -> Callable[[int, int], None]:
    """At delivery (I/O thread): was the command where the run predicted it? A PlaceOrder's
    order id is its log position (``tradex.domain.ids``), so the run names orders in
    cancels and amends without waiting. Another writer on the partition breaks that: the
    miss is counted, later predictions shift by what it wrote, and a PlaceOrder's
    remembered id becomes the real one (for the cancels and amends not sent yet)."""
    partition, raw, predicted = where

    def correct(offset: int) -> None:
        run.misplaced += 1
        run.shifts[partition] = offset - raw
        if placed in run.order_ids:
            run.order_ids[placed] = order_id(partition, offset)

    def on_delivered(delivered_partition: int, delivered_offset: int) -> None:
        # (a partition other than the key's cannot happen: the client keys by account)
        if (delivered_partition, delivered_offset) != (partition, predicted):
            loop.call_soon_threadsafe(correct, delivered_offset)

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
    log = KafkaLog(settings, bulk=False)
    next_offsets = {
        p: log.watermarks(ACCOUNT_COMMANDS, p)[1] for p in range(market.account_partitions)
    }
    state = Run(config, market, start_ns, next_offsets)
    watcher = EngineWatcher(settings, codec, _engine_starts(log, market), start_ns)
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
            elif n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # behind schedule: let the sends and the ticker run
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
        skipped=state.skipped, timeouts=state.timeouts, misplaced=state.misplaced,
        trades=trades,
        volume_lots=watcher.volume_lots,
        rejects=dict(state.rejects + Counter(engine_rejects)),
        send_s=round(send_s, 3), elapsed_s=round(elapsed_s, 3),
        commands_per_s=round(state.sent / max(send_s, 1e-9), 1),
        ack_p50_ms=state.latencies.percentile_ms(0.5),
        ack_p99_ms=state.latencies.percentile_ms(0.99),
        trades_hash=watcher.trades_hash(),
    )  # fmt: skip


def run(settings: Settings, config: SimConfig, market: Market,
        on_tick: Tick | None = None) -> SimResult:  # fmt: skip
    """Run ``config``'s flow on ``market`` (blocking); ``on_tick`` gets a snapshot each second."""
    return asyncio.run(run_async(settings, config, market, on_tick))
