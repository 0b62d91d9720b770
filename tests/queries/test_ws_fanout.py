"""The fan-out's delivery rules without Redis: a batch is rendered once per format, a
joining subscriber gets exactly the entries after its snapshot, a full queue drops only
its own client; prepared frames are what a WebSocket client parses, and a client writing
them straight to its transport keeps its messages in order."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from tradex.projections.redis_read import Channel
from tradex.queries.ws_fanout import Client, Feed, Render, Sub, text_frame


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


def _parse(data: bytes) -> tuple[Frame, bytes]:
    """One frame as websockets' client parses it (unmasked: from a server), and the rest."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as done:
        next(parser)
    rest = reader.read_to_eof(len(data))
    with pytest.raises(StopIteration) as tail:
        next(rest)
    return done.value.value, tail.value.value


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_a_prepared_frame_is_one_final_text_frame_of_the_text(size: int) -> None:
    text = ("é" * size)[: max(size - size // 3, 0)] + "x" * (size // 3)
    frame, rest = _parse(text_frame(text) + b"next")
    assert (frame.opcode, frame.fin, frame.rsv1) == (Opcode.TEXT, True, False)
    assert frame.data.decode() == text and rest == b"next"


class _Transport:
    """A connection's write side: takes frames while ``open``."""

    def __init__(self) -> None:
        self.open = True
        self.frames: list[bytes] = []

    def write(self, frame: bytes) -> bool:
        if self.open:
            self.frames.append(frame)
        return self.open


def test_a_client_writes_frames_at_once_while_idle_and_queues_in_order_when_it_cannot() -> None:
    async def run() -> None:
        transport, sent = _Transport(), []

        async def send(text: str) -> None:  # the server's own send (the queued path)
            sent.append(text)
            transport.frames.append(text_frame(text))

        client = Client(send, 100, transport.write)
        assert client.offer("a")  # the sender has not started: queued
        task = asyncio.create_task(client.run())
        await asyncio.sleep(0)
        assert sent == ["a"]
        assert client.offer("b", text_frame("b")) and client.offer("c")  # idle: written now
        assert sent == ["a"] and client.queued == 0
        transport.open = False  # e.g. its write buffer is full
        assert client.offer("d") and client.offer("e")
        assert client.queued == 2
        transport.open = True
        assert client.offer("f")  # still behind d and e: queued, not written ahead of them
        await asyncio.sleep(0)
        assert sent == ["a", "d", "e", "f"] and client.queued == 0
        assert [_parse(f)[0].data.decode() for f in transport.frames] == list("abcdef")
        assert (client.offered, client.sent) == (6, 6)
        client.drop("closed")
        assert not client.offer("g")
        task.cancel()

    asyncio.run(run())


def test_a_batch_is_framed_once_for_every_subscriber() -> None:
    async def run() -> None:
        feed, calls = _feed(), []
        render = _render(calls)
        transports = [_Transport() for _ in range(3)]
        clients = [Client(_nothing, 10, t.write) for t in transports]
        tasks = [asyncio.create_task(c.run()) for c in clients]
        await asyncio.sleep(0)
        for client in clients:
            feed.add(Sub(client, render, after=0))
        await feed.deliver(_entries(1, 2))
        assert calls == [[1, 2]]
        # one write per client for the whole batch: its frames end to end, the same bytes
        assert all(t.frames == [text_frame("k:1") + text_frame("k:2")] for t in transports)
        assert transports[0].frames[0] is transports[2].frames[0]
        first, rest = _parse(transports[0].frames[0])
        assert first.data == b"k:1" and _parse(rest)[0].data == b"k:2"
        assert all((c.offered, c.sent) == (2, 2) for c in clients)
        for task in tasks:
            task.cancel()

    asyncio.run(run())


def test_a_batch_a_client_cannot_take_at_once_is_queued_in_order() -> None:
    async def run() -> None:
        feed, calls = _feed(), []
        transport, sent = _Transport(), []

        async def send(text: str) -> None:
            sent.append(text)

        client = Client(send, 100, transport.write)
        task = asyncio.create_task(client.run())
        await asyncio.sleep(0)
        feed.add(Sub(client, _render(calls), after=0))
        transport.open = False  # its write buffer is full: the batch waits in the queue
        await feed.deliver(_entries(1, 2))
        assert client.queued == 2 and not transport.frames
        transport.open = True
        await feed.deliver(_entries(3, 4))  # behind 1 and 2: queued, not written ahead
        assert not transport.frames
        await asyncio.sleep(0)
        assert sent == ["k:1", "k:2", "k:3", "k:4"] and (client.offered, client.sent) == (4, 4)
        client.drop("closed")
        await feed.deliver(_entries(5, 6))  # a dropped client is offered nothing
        assert client.offered == 4 and not transport.frames
        task.cancel()

    asyncio.run(run())


def test_a_tick_is_called_once_per_format_and_reaches_its_live_subscribers() -> None:
    async def run() -> None:
        feed = _feed()
        calls: list[list[int]] = []
        ticks: list[int] = []

        async def tick() -> list[str]:
            ticks.append(1)
            return ["closed"]

        render = Render("kline", _render(calls).fn, tick)
        live = [Client(_nothing, 10) for _ in range(3)]
        for client in live:
            feed.add(Sub(client, render, after=0))
        joining = Client(_nothing, 10)
        feed.add(Sub(joining, render))  # still reading its snapshot: not yet
        other = Client(_nothing, 10)
        feed.add(Sub(other, _render(calls, "other"), after=0))  # no clock: nothing
        await feed.tick()
        assert ticks == [1]
        assert [list(c.pending) for c in live] == [["closed"]] * 3
        assert joining.queued == 0
        assert other.queued == 0

    asyncio.run(run())
