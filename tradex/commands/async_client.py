"""The reply path for asyncio: submit commands, await their outcomes (the API's client).

The same protocol as :class:`tradex.commands.client.CommandClient` — the outcome of a
command *is* its events, found on the events topic by command id — for an asyncio server:
``execute`` is a coroutine and every blocking Kafka call (delivery reports, the events
tail, the group's committed offsets, watermarks) runs on **one** I/O thread per client,
never one per request. Two routes: account commands (``account-commands`` →
``account-events``, waiters keyed by (account, command id): the account processor dedupes
per account) and reference commands (``reference-commands`` → ``reference-events``, one
partition, keyed by command id alone).

    client = await AsyncCommandClient.open(settings, ACCOUNTS)
    outcome = await client.execute(PlaceOrder(...), timeout_s=5)
    outcome.events          # (OrderAccepted(...),) or (OrderRejected(...),)
    await client.aclose()

A duplicate command id writes no new events. The I/O thread notices the processors have
committed past the command's offset while the tail, read to the end that followed, brought
nothing for it: the outcome is then the original one — from the client's cache of recent
outcomes (every command decided since it started), else read from the log (a scan of the
partition on a second thread, rare). Two requests with the same id in flight share one
waiter. A command that the processor dead-lettered has no outcome (:class:`NoOutcome`),
known once it has stayed silent ``no_outcome_confirm_s`` (the group's committed offsets
can be seen before the events committed with them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from tradex.commands.client import (
    NoOutcome,
    Outcome,
    encode_command,
    no_outcome_confirm_s,
    no_outcome_recheck_s,
    span_attributes,
)
from tradex.domain.account import ONE_EVENT_INPUTS
from tradex.domain.commands import AccountCommand
from tradex.domain.reference import ReferenceCommand
from tradex.infra.kafka import (
    COMMAND_LINGER_MS,
    FETCH_WAIT_MS,
    PARKED_FETCH_WAIT_MS,
    admin_timeout_s,
    producer_config,
)
from tradex.infra.reachable import ServiceUnavailable, require_group_member
from tradex.infra.settings import Settings
from tradex.log.keys import account_key, reference_key
from tradex.log.source import KafkaLog, Place
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    ACCOUNTS_GROUP,
    REFERENCE_COMMANDS,
    REFERENCE_EVENTS,
    REFERENCE_GROUP,
)
from tradex.log.typed import read_typed
from tradex.observability.tracing import client_span
from tradex.observability.tracing import enabled as tracing_enabled
from tradex.schemas.codec import Codec
from tradex.schemas.remote import codec_from_settings

log = logging.getLogger(__name__)

poll_timeout_s = 0.01  # the I/O thread's tail poll (also how often it checks the rest)
idle_poll_timeout_s = 0.1  # ... while no command waits (an event ends the wait at once)
tail_records_max = 10_000  # records per poll of the events tail
processed_check_interval_s = 0.05  # how often committed offsets are asked for
silent_grace_s = 0.05  # a command is checked for being a duplicate once silent this long
waiting_max = 100_000  # commands waiting for their outcome in one client
recent_outcomes_max = 100_000  # outcomes of recent commands kept for duplicates and reads
SETTLEMENT_PREFIXES = ("fill/", "end/")  # command ids of settlement inputs (matcher-chosen)
# the events of the command that placed an order: recent_order answers those (a cancel's
# or an amend's events name the order too, but describe another command)
PLACING_EVENTS = frozenset(("OrderAccepted", "OrderRejected"))

Key = tuple[int, str]  # (scope: the account id, 0 for reference commands; command id)


class CommandTimeout(TimeoutError):
    """No outcome in time: the command may still be decided (retry with the same id)."""


class ProcessorDown(CommandTimeout, ServiceUnavailable):
    """No outcome in time, and the processor that decides the command is not running: a
    timeout to the API, one line to a CLI (tradex/cli.py prints ServiceUnavailable)."""

    def __init__(self, down: ServiceUnavailable) -> None:
        TimeoutError.__init__(self, str(down))
        self.service, self.where, self.start = down.service, down.where, down.start


# Who decides each route's commands, and how to start it (the message of ProcessorDown).
PROCESSORS = {
    ACCOUNTS_GROUP: ("the account processor", "tradex run accounts"),
    REFERENCE_GROUP: ("the reference processor", "tradex run reference"),
}


@dataclass(frozen=True)
class Route:
    """How one family of commands travels and where its outcome is found."""

    commands_topic: str
    events_topic: str
    group: str  # the consumer group of the processors that decide them
    key: Callable[[Any], bytes]  # record key of a command
    scope: Callable[[Any], int]  # the dedupe scope of a command or event
    # Whether a command's decision is one event (its outcome complete at that event);
    # the others end where the next command's events begin or at the log's end.
    one_event: Callable[[Any], bool]
    # How long the events tail's fetch waits at the broker on an idle log: the end of the
    # log is only seen that long after the last record (see tradex.infra.kafka), which
    # matters only for commands of more than one event; each idle wait is a broker request.
    fetch_wait_ms: int = FETCH_WAIT_MS


ACCOUNTS = Route(
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    ACCOUNTS_GROUP,
    lambda command: account_key(command.account_id),
    lambda record: int(record.account_id),
    lambda command: type(command) in ONE_EVENT_INPUTS,
)
REFERENCE = Route(  # every reference decision is one event (ReferenceData.decide)
    REFERENCE_COMMANDS, REFERENCE_EVENTS, REFERENCE_GROUP, reference_key, lambda _record: 0,
    lambda _command: True, PARKED_FETCH_WAIT_MS,
)  # fmt: skip


@dataclass
class _Waiter:
    key: Key
    future: asyncio.Future[Outcome]
    started: float
    send: bool  # False: only waits for events with this id (nobody submits it here)
    partition: int = -1  # of the commands topic, once delivered
    offset: int = -1
    drain_to: int = -1  # processed with no event seen: read the events tail up to here
    events: list[Any] = field(default_factory=list)
    seen_at: float = 0.0
    one_event: bool = False  # its decision is one event: complete at the first
    silent_since: float = 0.0  # when a scan of the log first found none of its events
    recheck_at: float = 0.0  # not asked about again before
    on_delivered: Callable[[int, int], None] | None = None  # (partition, offset), I/O thread


def _retrieve(future: asyncio.Future[Outcome]) -> None:
    if not future.cancelled():
        future.exception()


class AsyncCommandClient:
    """Submits commands of one :class:`Route` and awaits their outcomes."""

    def __init__(
        self,
        settings: Settings,
        route: Route,
        loop: asyncio.AbstractEventLoop,
        codec: Codec | None = None,
        name: str = "api",
    ) -> None:
        """Blocking (Kafka metadata): use :meth:`open` from the loop that will await."""
        self.settings = settings
        self.route = route
        self.codec = codec or codec_from_settings(settings)
        self.name = name
        self.loop = loop
        self.log = KafkaLog(settings, bulk=False, fetch_wait_ms=route.fetch_wait_ms)
        self.partitions = self.log.partitions(route.events_topic)
        self.producer = Producer(producer_config(settings, linger_ms=COMMAND_LINGER_MS))
        self.places: list[Place] = [(route.events_topic, p) for p in range(self.partitions)]
        self.tail = self.log.follow({p: self.log.watermarks(*p)[1] for p in self.places})
        self.lock = threading.Lock()
        self._completing_lock = threading.Lock()
        self._completing: list[tuple[_Waiter, Outcome | None, Exception | None]] = []
        self._complete_scheduled = False
        self.waiting: dict[Key, _Waiter] = {}
        self.recent: OrderedDict[Key, tuple[Any, ...]] = OrderedDict()
        self.orders: dict[int, Key] = {}  # order id -> the command that placed it (recent)
        self.end_seen = dict.fromkeys(range(self.partitions), -1)
        self.last_key: dict[int, Key] = {}  # partition -> key of the last event read
        self.scans = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"{name}-scan")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"{name}-io", daemon=True)
        self.thread.start()
        self.checker = threading.Thread(target=self._check, name=f"{name}-check", daemon=True)
        self.checker.start()

    @classmethod
    async def open(
        cls, settings: Settings, route: Route, codec: Codec | None = None, name: str = "api"
    ) -> AsyncCommandClient:
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(cls, settings, route, loop, codec, name)

    async def aclose(self) -> None:
        self.stop.set()
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        self.thread.join()
        self.checker.join()
        self.scans.shutdown(wait=True)
        self.tail.close()
        self.log.close()
        self.producer.flush(admin_timeout_s)

    # -- the asyncio side --------------------------------------------------------------------

    async def execute(
        self,
        command: AccountCommand | ReferenceCommand,
        timeout_s: float = 10.0,
        on_delivered: Callable[[int, int], None] | None = None,
    ) -> Outcome:
        """Submit ``command`` and await its outcome (at most ``timeout_s``). The command is
        produced before the first ``await`` (calls made in order reach each partition in
        that order). ``on_delivered(partition, offset)``, called on the I/O thread once the
        log has the command, gives its position (a PlaceOrder's order id: ``tradex.domain.ids.
        order_id``) before its outcome; not called for a command already in flight."""
        key = (self.route.scope(command), command.command_id)
        data = encode_command(self.codec, command, self.name)
        if not tracing_enabled():  # no span: not even its context manager (per order)
            return await self._submit(command, key, data, None, timeout_s, on_delivered)
        with client_span(type(command).__name__, span_attributes(command)) as headers:
            return await self._submit(command, key, data, headers, timeout_s, on_delivered)

    async def _submit(
        self, command: AccountCommand | ReferenceCommand, key: Key, data: bytes,
        headers: Any, timeout_s: float, on_delivered: Callable[[int, int], None] | None,
    ) -> Outcome:  # fmt: skip
        waiter, joined = self._register(key, send=True)
        if not joined:
            waiter.on_delivered = on_delivered
            waiter.one_event = self.route.one_event(command)
            try:
                self.producer.produce(
                    self.commands_topic, data, self.route.key(command),
                    on_delivery=lambda error, message: self._delivered(waiter, error, message),
                    headers=headers,
                )  # fmt: skip
            except BufferError as exc:
                self._drop(waiter)
                raise CommandTimeout(f"the producer queue is full: {exc}") from exc
        return await self._await(waiter, timeout_s)

    def expect(self, scope: int, command_id: str, one_event: bool = False) -> _Waiter:
        """Register interest in the events of ``command_id`` (e.g. ``end/<order id>``: the
        order left the book) from now on; then :meth:`outcome_of`. Register before causing
        them. ``one_event``: the command is one of ``ONE_EVENT_INPUTS`` (its outcome is
        complete at its first event)."""
        waiter = self._register((scope, command_id), send=False)[0]
        waiter.one_event = waiter.one_event or one_event
        return waiter

    async def outcome_of(self, waiter: _Waiter, timeout_s: float) -> Outcome | None:
        """The expected events, or None after ``timeout_s``."""
        try:
            return await self._await(waiter, timeout_s)
        except CommandTimeout:
            return None

    async def wait_for(self, scope: int, command_id: str, timeout_s: float) -> Outcome | None:
        return await self.outcome_of(self.expect(scope, command_id), timeout_s)

    def recent_outcome(self, scope: int, command_id: str) -> tuple[Any, ...] | None:
        """The events of a command decided since this client started (or None)."""
        with self.lock:
            return self.recent.get((scope, command_id))

    def recent_order(self, order_id: int) -> tuple[Key, tuple[Any, ...]] | None:
        """The command that placed ``order_id`` and its events, if decided recently."""
        with self.lock:
            key = self.orders.get(order_id)
            found = None if key is None else self.recent.get(key)
        return None if key is None or found is None else (key, found)

    @property
    def commands_topic(self) -> str:
        return self.settings.topic(self.route.commands_topic)

    def _register(self, key: Key, send: bool) -> tuple[_Waiter, bool]:
        with self.lock:
            found = self.waiting.get(key)
            if found is not None:
                return found, True
            assert len(self.waiting) < waiting_max, "waiting_max commands in flight"
            future: asyncio.Future[Outcome] = self.loop.create_future()
            future.add_done_callback(_retrieve)  # an error nobody awaits any more is no warning
            waiter = _Waiter(key, future, time.monotonic(), send)
            self.waiting[key] = waiter
            return waiter, False

    def _drop(self, waiter: _Waiter) -> None:
        with self.lock:
            if self.waiting.get(waiter.key) is waiter:
                del self.waiting[waiter.key]

    async def _await(self, waiter: _Waiter, timeout_s: float) -> Outcome:
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout_s)
        except TimeoutError as exc:
            service, start = PROCESSORS[self.route.group]
            try:
                await asyncio.to_thread(require_group_member, self.settings, self.route.group,
                                        service, start)  # fmt: skip
            except ServiceUnavailable as down:
                raise ProcessorDown(down) from exc
            raise CommandTimeout(f"no outcome for {waiter.key[1]!r} in {timeout_s} s") from exc
        finally:
            self._drop(waiter)  # a late outcome goes to the recent outcomes

    def _resolve(self, waiter: _Waiter, outcome: Outcome | None, error: Exception | None) -> None:
        """From any thread: complete the waiter's future on the loop. Completions made
        before the loop gets to them go in one callback (one wake-up of the loop for all
        the outcomes of a poll, not one each)."""
        with self._completing_lock:
            self._completing.append((waiter, outcome, error))
            if self._complete_scheduled:
                return
            self._complete_scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._complete)
        except RuntimeError:  # the loop is closed: nobody waits
            with self._completing_lock:
                self._completing.clear()
                self._complete_scheduled = False

    def _complete(self) -> None:
        """On the loop: the completions waiting."""
        with self._completing_lock:
            completing, self._completing = self._completing, []
            self._complete_scheduled = False
        for waiter, outcome, error in completing:
            if not waiter.future.done():
                if error is not None:
                    waiter.future.set_exception(error)
                else:
                    assert outcome is not None
                    waiter.future.set_result(outcome)

    # -- the I/O thread ----------------------------------------------------------------------

    def _delivered(self, waiter: _Waiter, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._resolve(waiter, None, KafkaException(error))
            return
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        waiter.partition, waiter.offset = partition, offset
        if waiter.on_delivered is not None:
            waiter.on_delivered(partition, offset)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.producer.poll(0)
                # idle, a longer wait: each wake takes the GIL from the event loop's thread
                timeout_s = poll_timeout_s if self.waiting else idle_poll_timeout_s
                for record in self.tail.poll(timeout_s, tail_records_max):
                    self._on_event(record.partition, record.value or b"")
                for place in self.places:
                    partition = place[1]
                    if self.tail.at_end(place):
                        self._finish(partition, None)
                    self.end_seen[partition] = self.tail.reached(place)
                self._check_processed()
            except KafkaException as exc:  # transient; librdkafka retries
                log.warning("command client %s: %s", self.name, exc)
            except Exception:  # a bug here must not leave every request hanging silently
                log.exception("command client %s: I/O thread failed", self.name)
                raise

    def _on_event(self, partition: int, data: bytes) -> None:
        _envelope, event = self.codec.decode_domain(data)
        key = (self.route.scope(event), event.command_id)
        self._finish(partition, key)
        with self.lock:
            waiter = self.waiting.get(key)
        if waiter is not None:
            if not waiter.events:
                waiter.seen_at = time.monotonic()
            waiter.events.append(event)
        elif key[1].startswith(SETTLEMENT_PREFIXES):
            self.last_key[partition] = key
            return
        self._remember(key, event)
        self.last_key[partition] = key
        # all of it: no need to wait for the next command or the end (remembered first:
        # whoever gets the outcome may read the order back through recent_order at once)
        if waiter is not None and waiter.one_event:
            outcome = Outcome(key[1], (event,), False, waiter.seen_at - waiter.started)
            self._resolve(waiter, outcome, None)

    def _remember(self, key: Key, event: Any) -> None:
        with self.lock:
            found = self.recent.get(key)
            self.recent[key] = (event,) if found is None else (*found, event)
            if type(event).__name__ in PLACING_EVENTS and event.order_id:
                self.orders[event.order_id] = key  # not a cancel's or an amend's key
            while len(self.recent) > recent_outcomes_max:
                old_key, old = self.recent.popitem(last=False)
                for old_event in old:
                    order_id = getattr(old_event, "order_id", 0)
                    if self.orders.get(order_id) == old_key:
                        del self.orders[order_id]

    def _finish(self, partition: int, next_key: Key | None) -> None:
        """The previous command of ``partition`` is complete when another one starts or the
        tail reaches the end (a command's events are consecutive, in one transaction)."""
        previous = self.last_key.get(partition)
        if previous is None or previous == next_key:
            return
        with self.lock:
            waiter = self.waiting.get(previous)
        if waiter is not None and waiter.events and not waiter.future.done():
            outcome = Outcome(
                previous[1], tuple(waiter.events), False, waiter.seen_at - waiter.started
            )
            self._resolve(waiter, outcome, None)
        if next_key is None:
            self.last_key.pop(partition, None)

    def _check_processed(self) -> None:
        """I/O thread: silent commands whose drain bound the tail has read (the checker
        thread set it) are duplicates (or dead letters)."""
        with self.lock:
            ready = [w for w in self.waiting.values() if w.drain_to >= 0 and not w.events]
        for waiter in ready:  # the tail has read as far as the log stood after the commit
            if waiter.drain_to <= self.end_seen[self._events_partition(waiter)]:
                waiter.drain_to = -2  # handled
                self._duplicate(waiter)

    def _check(self) -> None:
        """The checker thread: asks which silent commands the processors are past. Its
        Kafka calls block (the committed offsets of a group that commits in transactions
        are often "unstable": librdkafka asks again, ~100 ms), so they never run on the
        I/O thread, which would stop reading outcomes meanwhile."""
        while not self.stop.wait(processed_check_interval_s):
            try:
                self._find_processed(time.monotonic())
            except KafkaException as exc:  # transient; asked again next time
                log.warning("command client %s: %s", self.name, exc)
            except Exception:
                log.exception("command client %s: checker thread failed", self.name)
                raise

    def _find_processed(self, now: float) -> None:
        with self.lock:
            pending = [w for w in self.waiting.values()
                       if w.send and w.offset >= 0 and not w.events and w.drain_to == -1
                       and now - w.started >= silent_grace_s
                       and now >= w.recheck_at]  # fmt: skip
        if not pending:
            return
        committed = self.log.committed(
            self.route.group, self.route.commands_topic, sorted({w.partition for w in pending})
        )
        # one watermark query per partition, asked after the committed offsets were read,
        # is a valid drain bound for every command of it they cover
        highs: dict[int, int] = {}
        for waiter in pending:
            if committed[waiter.partition] > waiter.offset and not waiter.events:
                partition = self._events_partition(waiter)
                if partition not in highs:
                    highs[partition] = self.log.watermarks(self.route.events_topic, partition)[1]
                waiter.drain_to = highs[partition]

    def _events_partition(self, waiter: _Waiter) -> int:
        """Commands and their events are co-partitioned (same key, same partition count)."""
        assert 0 <= waiter.partition < self.partitions, (waiter.partition, self.partitions)
        return waiter.partition

    def _duplicate(self, waiter: _Waiter) -> None:
        with self.lock:
            cached = self.recent.get(waiter.key)
        if cached is not None:
            self._resolve(waiter, Outcome(waiter.key[1], cached, True, 0.0), None)
            return
        self.scans.submit(self._scan, waiter)

    def _scan(self, waiter: _Waiter) -> None:
        """The original events of a duplicate, read from its partition (second thread)."""
        scope, command_id = waiter.key
        found = []
        try:
            partition = self._events_partition(waiter)
            with KafkaLog(self.settings) as source:
                for record in read_typed(source, self.codec, self.route.events_topic, partition):
                    _envelope, event = record.checked()
                    if event.command_id == command_id and self.route.scope(event) == scope:
                        found.append(event)
        except Exception as exc:
            self._resolve(waiter, None, exc)
            return
        if not found:
            now = time.monotonic()
            waiter.silent_since = waiter.silent_since or now
            if now - waiter.silent_since < no_outcome_confirm_s:  # (see there) ask again
                waiter.recheck_at = now + no_outcome_recheck_s
                waiter.drain_to = -1
                return
            self._resolve(waiter, None, NoOutcome(f"{command_id} produced no event"))
        else:
            self._resolve(waiter, Outcome(command_id, tuple(found), True, 0.0), None)
