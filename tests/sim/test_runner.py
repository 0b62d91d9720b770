"""The runner's order ids: predicted from the log positions, checked at delivery."""

from __future__ import annotations

import asyncio
from typing import Any

from tradex.commands.client import Outcome
from tradex.domain import CancelOrder, OrderKind, PlaceOrder, Side
from tradex.domain.ids import order_id
from tradex.log.keys import account_partition
from tradex.sim.agents import Emit
from tradex.sim.config import SimConfig
from tradex.sim.market import layout
from tradex.sim.runner import Run, _placement_check

CONFIG = SimConfig(instruments=2, accounts=20)
START = {0: 10, 1: 20, 2: 30, 3: 40}


class Recorder:
    """Stands in for the command client (no Kafka here): records what it is asked, in
    order, and reports each command delivered where ``offsets`` say."""

    def __init__(self, offsets: dict[int, int]) -> None:
        self.offsets = dict(offsets)
        self.sent: list[Any] = []

    async def execute(self, command: Any, timeout_s: float, on_delivered: Any) -> Outcome:
        partition = account_partition(command.account_id, 4)
        self.sent.append(command)
        on_delivered(partition, self.offsets[partition])
        self.offsets[partition] += 1
        return Outcome(command.command_id, (), False, 0.001)


def place(command_id: str, account: int) -> Emit:
    return Emit(PlaceOrder(command_id, account, 1, 9, Side.BUY, OrderKind.GTC, 100, 1))


async def submit_all(run: Run, client: Recorder, emits: list[Emit]) -> None:
    slots, tasks = asyncio.Semaphore(100), set[asyncio.Task[None]]()
    for emit in emits:
        await run.submit(client, slots, tasks, emit)  # type: ignore[arg-type]
    await asyncio.gather(*tasks)
    await asyncio.sleep(0)  # the delivery checks, called soon


def test_cancels_name_their_orders_by_predicted_position() -> None:
    market = layout(CONFIG, 4, 4)
    a, b = market.instruments[0].accounts[:2]
    p = market.instruments[0].account_partition
    emits = [place("x", a), place("y", b), Emit(CancelOrder("c", a, 2, 0), "x"),
             Emit(CancelOrder("d", b, 2, 0), "gone")]  # fmt: skip
    run, client = Run(CONFIG, market, 0, dict(START)), Recorder(START)
    asyncio.run(submit_all(run, client, emits))
    assert [c.command_id for c in client.sent] == ["x", "y", "c"]
    assert client.sent[2].order_id == order_id(p, START[p])
    assert run.order_ids == {"x": order_id(p, START[p]), "y": order_id(p, START[p] + 1)}
    assert (run.skipped, run.misplaced, run.orders, run.sent) == (1, 0, 2, 3)


def test_another_writer_is_counted_and_later_ids_follow_it() -> None:
    market = layout(CONFIG, 4, 4)
    a = market.instruments[0].accounts[0]
    p = market.instruments[0].account_partition
    shifted = {**START, p: START[p] + 5}  # someone wrote 5 records first
    run, client = Run(CONFIG, market, 0, dict(START)), Recorder(shifted)
    asyncio.run(submit_all(run, client, [place("x", a)]))
    assert run.misplaced == 1
    assert run.shifts[p] == 5
    assert run.order_ids["x"] == order_id(p, START[p] + 5)
    asyncio.run(submit_all(run, client, [place("y", a)]))
    assert run.misplaced == 1 and run.order_ids["y"] == order_id(p, START[p] + 6)


def test_placement_check_is_silent_when_right() -> None:
    async def go() -> Run:
        run = Run(CONFIG, layout(CONFIG, 4, 4), 0, dict(START))
        _placement_check(run, asyncio.get_running_loop(), (0, 10, 10), "")(0, 10)
        await asyncio.sleep(0)
        return run

    assert asyncio.run(go()).misplaced == 0
