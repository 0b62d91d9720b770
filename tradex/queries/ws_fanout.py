"""Fan-out of the Redis read model's channels to WebSocket clients.

One :class:`Feed` per Redis stream that somebody follows (an instrument's book updates,
its trades, an account's events): one reader task reads the stream from its position
(``AsyncMarketReader.read``, blocking in Redis while there is nothing new), renders each
batch once per output format and offers the text to every subscriber's :class:`Client`.
A client has a bounded queue and its own sender task: ``offer`` never waits, so a client
that does not read fills its queue and is dropped (with the reason) while every other
client keeps receiving.

Sequences: every entry carries its channel's dense number (``book_seq``, ``trade_seq``,
the account's ``seq``). A subscriber joins in three steps without a gap or a duplicate:
:meth:`Fanout.attach` (entries arriving from then on are kept aside), the caller reads its
snapshot and its sequence ``S``, :meth:`Sub.activate` (the kept entries after ``S`` are
sent, and from then on every entry after ``S``). The feed's position was read from Redis
before the snapshot (:meth:`Feed.ready`), so everything after ``S`` reaches the subscriber.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from tradex.projections.redis_read import READ_COUNT_MAX, AsyncMarketReader, Channel, NotLive

log = logging.getLogger("tradex.ws")

CLIENT_QUEUE_MAX = 1_000  # messages waiting for one client before it is dropped as slow
PENDING_MAX = 20_000  # entries kept aside for a subscriber reading its snapshot
READ_BLOCK_MS = 1_000  # one blocking read of a feed (below the Redis socket timeout)
VERSION_CHECK_S = 1.0  # a feed looks the live version up again at least this often
LINGER_S = 5.0  # a feed nobody follows keeps reading this long (a quick resubscribe reuses it)
FEEDS_MAX = 4_096  # streams followed at once by one worker (one Redis connection each)
FEED_CONNECTIONS_MAX = FEEDS_MAX + 64
RETRY_S = 0.5  # after a failed read (read model not live, Redis hiccup)

Entry = tuple[int, dict[str, Any]]  # (seq, fields) of a channel entry
RenderFn = Callable[[list[Entry]], Awaitable[list[str]]]
TickFn = Callable[[], Awaitable[list[str]]]  # what a render has to send by the clock now
FrameWriter = Callable[[bytes], bool]  # writes a whole frame now; False: not now (see Client)


def text_frame(text: str) -> bytes:
    """``text`` as one WebSocket text frame from a server (RFC 6455 5.2: final, unmasked, not
    compressed — permessage-deflate leaves a frame without RSV1 as it is, RFC 7692 6)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


@dataclass(frozen=True, eq=False)
class Render:
    """An output format: subscribers with equal ``key`` share each batch's texts — and,
    with a ``tick``, what it sends by the clock (a kline's closing candle): the feed calls
    it once per key after each read (at least every :data:`READ_BLOCK_MS`), not per
    subscriber."""

    key: Hashable
    fn: RenderFn
    tick: TickFn | None = None


class Client:
    """One connection's outgoing side: a bounded queue and the task that drains it.

    The queue is a deque and one future the sender sleeps on when it is empty (not an
    ``asyncio.Queue``, whose every wait asks for the running loop: on Python 3.11 a
    ``getpid`` system call, ~11 % of a 500-client fan-out's time).

    With a ``write`` (the connection's transport, :func:`.ws_gateway.frame_writer`), a
    message offered while nothing is queued and the sender sleeps is written at once as a
    prepared frame — the same bytes for every client of a batch (:meth:`Feed.deliver`),
    no task switch and no per-client framing or compression. ``write`` declines (returns
    False) when the connection cannot take it now (its write buffer is full, it is
    closing); the message is queued then, and the sender sends it when it can, in order."""

    def __init__(
        self, send: Callable[[str], Awaitable[None]], queue_max: int = CLIENT_QUEUE_MAX,
        write: FrameWriter | None = None,
    ) -> None:  # fmt: skip
        assert queue_max > 0, queue_max
        self.pending: collections.deque[str] = collections.deque()
        self.queue_max = queue_max
        self._wake: asyncio.Future[None] | None = None
        self._send = send
        self._write = write
        self.dropped: str | None = None  # the reason, once dropped
        self.gone = asyncio.Event()  # set when dropped
        self.subs: set[Sub] = set()
        self.offered = 0
        self.sent = 0

    @property
    def queued(self) -> int:
        return len(self.pending)

    def offer(self, text: str, frame: bytes | None = None) -> bool:
        """Write ``text`` now (``frame``: its :func:`text_frame`, when the caller has it) or
        queue it; a full queue drops the client (never waits)."""
        if self.dropped is not None:
            return False
        self.offered += 1
        wake = self._wake
        if (
            self._write is not None and not self.pending and wake is not None and not wake.done()
            and self._write(text_frame(text) if frame is None else frame)
        ):  # fmt: skip
            self.sent += 1
            return True
        if len(self.pending) >= self.queue_max:
            self.drop(f"slow consumer: {len(self.pending)} messages not read")
            return False
        self.pending.append(text)
        if wake is not None and not wake.done():
            wake.set_result(None)
        return True

    def offer_all(self, texts: list[str], frames: list[bytes], joined: bytes) -> None:
        """Offer a batch's ``texts`` in order (``frames``: their :func:`text_frame`,
        ``joined``: those frames end to end): when the client can take them now, one write
        of ``joined`` — one system call for the batch instead of one per message."""
        wake = self._wake
        if (
            self.dropped is None and self._write is not None and not self.pending
            and wake is not None and not wake.done() and self._write(joined)
        ):  # fmt: skip
            self.offered += len(texts)
            self.sent += len(texts)
            return
        for text, frame in zip(texts, frames, strict=True):
            if not self.offer(text, frame):
                return

    def drop(self, reason: str) -> None:
        if self.dropped is None:
            self.dropped = reason
            self.gone.set()
            for sub in list(self.subs):
                sub.detach()

    async def run(self) -> None:
        """Send queued messages until dropped (or the connection fails)."""
        loop = asyncio.get_running_loop()
        pending = self.pending
        while self.dropped is None:
            if not pending:
                self._wake = loop.create_future()
                try:
                    await self._wake
                finally:
                    self._wake = None
                continue
            await self._send(pending.popleft())
            self.sent += 1


@dataclass(eq=False)
class Sub:
    """One subscription of a client to a feed, in one output format."""

    client: Client
    render: Render
    after: int | None = None  # None: joining (entries are kept in ``pending``)
    pending: list[Entry] = field(default_factory=list)
    feed: Feed | None = None
    name: str = ""  # what the client called it (unsubscribe, listings)

    async def activate(self, seq: int) -> None:
        """The client has been sent the state up to ``seq``: send the kept entries after
        it, then follow live."""
        assert self.after is None, "activated twice"
        while self.pending:
            batch = [e for e in self.pending if e[0] > seq]
            self.pending = []
            if batch:
                for text in await self.render.fn(batch):
                    self.client.offer(text)
                seq = batch[-1][0]
        self.after = seq  # no await since the last check: no entry can slip in between

    def keep(self, entries: list[Entry]) -> None:
        self.pending.extend(entries)
        if len(self.pending) > PENDING_MAX:
            self.client.drop(f"slow snapshot: more than {PENDING_MAX} updates while joining")

    def detach(self) -> None:
        self.client.subs.discard(self)
        if self.feed is not None:
            self.feed.remove(self)
            self.feed = None


class Feed:
    """One Redis stream followed for any number of subscribers by one reader task."""

    def __init__(
        self, reader: AsyncMarketReader, channel: Channel, head: Callable[[], Awaitable[int]],
        on_empty: Callable[[Feed], None],
    ) -> None:  # fmt: skip
        self.reader = reader
        self.channel = channel
        self._head = head
        self._on_empty = on_empty
        self.pos = -1  # entries up to this one were delivered
        self.version: int | None = None  # the live version as the last read found it
        self.read_at = 0.0  # when the live version was last looked up (monotonic)
        self.groups: dict[Hashable, set[Sub]] = {}
        self.renders: dict[Hashable, Render] = {}
        self._ready: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.batches = 0
        self.idle_since: float | None = None
        self.watched = False  # followed by the worker itself (never lingers out)

    async def ready(self) -> None:
        """The position is read (once, by the first caller) and the reader runs."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            try:
                self.pos = await self._head()
            except BaseException as exc:
                self._ready.set_exception(exc)
                self._ready = None
                raise
            self._ready.set_result(None)
            self.task = asyncio.create_task(self._run(), name=f"ws-feed {self.channel.key}")
        await asyncio.shield(self._ready)

    def add(self, sub: Sub) -> None:
        sub.feed = self
        self.idle_since = None
        self.groups.setdefault(sub.render.key, set()).add(sub)
        self.renders.setdefault(sub.render.key, sub.render)

    def remove(self, sub: Sub) -> None:
        group = self.groups.get(sub.render.key)
        if group is not None:
            group.discard(sub)
            if not group:
                del self.groups[sub.render.key]
                del self.renders[sub.render.key]
        if not self.groups:
            self.idle_since = time.monotonic()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        # Never cancelled while followed: a cancelled Redis command can lose its
        # connection; the feed ends itself LINGER_S after its last subscriber left.
        while True:
            if self.groups:
                self.idle_since = None
            elif self.idle_since is None:
                self.idle_since = time.monotonic()
            elif time.monotonic() - self.idle_since > LINGER_S:
                self._on_empty(self)
                return
            try:
                if self.version is not None and time.monotonic() - self.read_at < VERSION_CHECK_S:
                    found = await self.reader.follow(
                        self.channel, self.pos, self.version, READ_COUNT_MAX, READ_BLOCK_MS
                    )
                else:
                    found = await self.reader.read(
                        self.channel, self.pos, READ_COUNT_MAX, block_ms=READ_BLOCK_MS
                    )
                    self.read_at = time.monotonic()
                self.version = found.version
            except asyncio.CancelledError:
                raise
            except NotLive:
                await asyncio.sleep(RETRY_S)
                continue
            except Exception:
                log.exception("reading %s", self.channel.key)
                await asyncio.sleep(RETRY_S)
                continue
            if found.entries:
                await self.deliver(found.entries)
                self.pos = found.entries[-1][0]
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ticking %s", self.channel.key)

    async def tick(self) -> None:
        """Offer what each render with a clock has to send now to its followers
        (one call per key, however many subscribers)."""
        for key, render in list(self.renders.items()):
            if render.tick is None:
                continue
            texts = await render.tick()
            if not texts:
                continue
            for sub in list(self.groups.get(key, ())):
                if sub.feed is not self or sub.after is None:
                    continue
                for text in texts:
                    if not sub.client.offer(text):
                        break

    async def deliver(self, entries: list[Entry]) -> None:
        """Offer one batch (consecutive entries) to every subscriber, rendered once per
        format; subscribers that joined mid-batch get their part."""
        first, last = entries[0][0], entries[-1][0]
        self.batches += 1
        for key, group in list(self.groups.items()):
            render = self.renders.get(key)
            if render is None:
                continue
            shared: list[str] | None = None
            frames: list[bytes] = []
            joined = b""
            for sub in list(group):
                if sub.feed is not self:
                    continue
                if sub.after is None:
                    sub.keep(entries)
                    continue
                if sub.after >= last:
                    continue
                if sub.after < first:
                    if shared is None:
                        shared = await render.fn(entries)
                        frames = [text_frame(text) for text in shared]
                        joined = b"".join(frames)
                    sub.after = last
                    sub.client.offer_all(shared, frames, joined)
                    continue
                texts = await render.fn([e for e in entries if e[0] > sub.after])
                sub.after = last
                for text in texts:
                    if not sub.client.offer(text):
                        break


async def _discard(_text: str) -> None:
    return None


async def _no_texts(_entries: list[Entry]) -> list[str]:
    return []


class FeedsFull(RuntimeError):
    """No more streams can be followed by this worker."""


class Fanout:
    """Every feed of one API worker."""

    def __init__(self, reader: AsyncMarketReader) -> None:
        self.reader = reader
        self.feeds: dict[Channel, Feed] = {}
        self._watcher = Client(_discard, 1)
        self.clients = 0  # connections open now
        self.open: set[Client] = set()
        self.dropped = 0  # clients dropped as slow since start
        self.sent_closed = 0  # messages sent to clients no longer open (metrics)

    def stats(self) -> dict[str, int]:
        """For /health: connections, followed streams, slow clients dropped."""
        return {
            "clients": self.clients,
            "feeds": len(self.feeds),
            "dropped": self.dropped,
            "queued_max": max((c.queued for c in self.open), default=0),
        }

    async def attach(
        self, channel: Channel, head: Callable[[], Awaitable[int]], sub: Sub, live: bool = False
    ) -> Feed:
        """Join ``sub`` to the feed of ``channel`` (started if new, its position from
        ``head``). ``live``: follow from the feed's position now, without a snapshot;
        otherwise the caller reads its snapshot and calls :meth:`Sub.activate`."""
        while True:
            feed = self.feeds.get(channel)
            if feed is None:
                if len(self.feeds) >= FEEDS_MAX:
                    raise FeedsFull(f"this worker follows {FEEDS_MAX} streams already")
                feed = self.feeds[channel] = Feed(self.reader, channel, head, self._empty)
            await feed.ready()
            if self.feeds.get(channel) is feed:  # not emptied and stopped meanwhile
                break
        if sub.client.dropped is not None:
            return feed
        feed.add(sub)
        sub.client.subs.add(sub)
        if live:
            sub.after = feed.pos
        return feed

    async def watch(self, channel: Channel, head: Callable[[], Awaitable[int]]) -> Feed:
        """Keep following ``channel`` for the worker itself (cache validation): its
        ``pos`` is then the newest entry the reader has seen, at most one blocking read
        behind Redis."""
        feed = self.feeds.get(channel)
        if feed is not None and feed.watched:
            return feed
        sub = Sub(self._watcher, Render(("watch",), _no_texts), name="watch")
        feed = await self.attach(channel, head, sub, live=True)
        feed.watched = True
        return feed

    def _empty(self, feed: Feed) -> None:
        if self.feeds.get(feed.channel) is feed:
            del self.feeds[feed.channel]

    async def close(self) -> None:
        feeds = list(self.feeds.values())
        self.feeds.clear()
        for feed in feeds:
            feed.stop()
        for feed in feeds:
            if feed.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task
