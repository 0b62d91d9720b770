"""The fan-out's delivery rules without Redis: a batch is rendered once per format, a
joining subscriber gets exactly the entries after its snapshot, a full queue drops only
its own client."""

from __future__ import annotations

import asyncio

from tradex.projections.redis_read import Channel
from tradex.queries.ws_fanout import Client, Feed, Render, Sub


async def _nothing(_text: str) -> None:
    await asyncio.sleep(3600)  # a client that never takes a message


def _feed() -> Feed:
    async def head() -> int:
        return 0

    return Feed(None, Channel.book(1), head, lambda feed: None)  # type: ignore[arg-type]


def _render(calls: list[list[int]], key: str = "k") -> Render:
    async def fn(entries):
        calls.append([seq for seq, _ in entries])
        return [f"{key}:{seq}" for seq, _ in entries]

    return Render(key, fn)


def _entries(first: int, last: int):
    return [(seq, {"n": seq}) for seq in range(first, last + 1)]


def test_a_batch_is_rendered_once_for_all_subscribers_of_a_format() -> None:
    async def run() -> None:
        feed, calls = _feed(), []
        render = _render(calls)
        clients = [Client(_nothing, 10) for _ in range(5)]
        for client in clients:
            feed.add(Sub(client, render, after=0))
        await feed.deliver(_entries(1, 3))
        assert calls == [[1, 2, 3]]
        assert all(c.queued == 3 for c in clients)

    asyncio.run(run())


def test_a_joining_subscriber_gets_exactly_the_entries_after_its_snapshot() -> None:
    async def run() -> None:
        feed, calls = _feed(), []
        client = Client(_nothing, 100)
        sub = Sub(client, _render(calls))
        feed.add(sub)
        await feed.deliver(_entries(1, 4))  # while it reads its snapshot (seq 2)
        await feed.deliver(_entries(5, 6))
        assert client.queued == 0
        await sub.activate(2)
        await feed.deliver(_entries(7, 7))
        await feed.deliver(_entries(6, 8))  # overlapping: only 8 is new
        got = [client.pending.popleft() for _ in range(client.queued)]
        assert got == [f"k:{n}" for n in range(3, 9)]

    asyncio.run(run())


def test_a_full_queue_drops_its_client_and_no_other() -> None:
    async def run() -> None:
        feed, calls = _feed(), []
        render = _render(calls)
        slow, fast = Client(_nothing, 3), Client(_nothing, 1_000)
        for client in (slow, fast):
            sub = Sub(client, render, after=0)
            feed.add(sub)
            client.subs.add(sub)
        await feed.deliver(_entries(1, 5))
        assert slow.dropped is not None and slow.dropped.startswith("slow consumer")
        assert slow.gone.is_set() and not slow.subs
        await feed.deliver(_entries(6, 9))
        assert fast.dropped is None and fast.queued == 9
        assert sum(len(g) for g in feed.groups.values()) == 1

    asyncio.run(run())
