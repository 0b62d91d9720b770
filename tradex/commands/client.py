"""The reply path: submit a command, wait for its outcome on ``account-events``.

There is no reply topic: the outcome of a command *is* its events. Each event carries the
command id (field ``command_id``, and the envelope's ``causation_id``), and all events of
one command are written consecutively, in one transaction, on the account's partition. A
:class:`CommandClient` tails ``account-events`` from where the log ended when it started
and hands each waiting command its events.

A duplicate command id writes no new events. The client notices the processor has moved
past the command (the group's committed offset on ``account-commands``) with no new event,
and then returns the original outcome, read from the log (:meth:`find_outcome`). A command
that was dead-lettered (malformed) has no outcome at all: :class:`NoOutcome`.

    client = CommandClient(settings)
    outcome = client.execute(Deposit("c-1", 42, now_ns, "USD", 10_000), timeout_s=5)
    outcome.events        # (Deposited(...),)
    client.close()
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from tradex.domain.commands import AccountCommand
from tradex.domain.reference import ReferenceCommand
from tradex.infra.kafka import COMMAND_LINGER_MS, admin_timeout_s, producer_config
from tradex.infra.settings import Settings
from tradex.log.ids import command_event_id
from tradex.log.keys import account_key, account_partition
from tradex.log.source import KafkaLog, Place
from tradex.log.topics import ACCOUNT_COMMANDS, ACCOUNT_EVENTS, ACCOUNTS_GROUP
from tradex.log.typed import read_typed
from tradex.observability.tracing import Headers, client_span
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec, EnvelopeFields
from tradex.schemas.remote import codec_from_settings

log = logging.getLogger(__name__)

poll_timeout_s = 0.05
tail_records_max = 10_000  # records per poll of the reply tail
processed_check_interval_s = 0.05
# A command the processors are past with no event found is a dead letter only if it stays
# silent this long: the markers of one transaction reach its partitions one by one, so the
# group's committed offsets can be visible before the commit marker of the events they
# commit with (seen once in CI: a sim command declared NoOutcome whose events came after).
no_outcome_confirm_s = 2.0
no_outcome_recheck_s = 0.25  # how often a silent command's log is read again meanwhile
waiting_max = 100_000  # commands waiting for their outcome in one client


def encode_command(
    codec: Codec,
    command: AccountCommand | ReferenceCommand,
    producer: str = "client",
    correlation_id: str = "",
) -> bytes:
    """The wire bytes of a command (not chained: many clients write a partition)."""
    fields = EnvelopeFields(
        command_event_id(command),
        command.command_id,
        correlation_id or command.command_id,
        producer,
        0,
    )
    return codec.encode_domain(command, fields, ZERO_HASH).data


def span_attributes(command: AccountCommand | ReferenceCommand) -> dict[str, Any]:
    """What a command's client span says of it (tradex.observability.tracing)."""
    return {
        "tradex.command_id": command.command_id,
        "tradex.account_id": getattr(command, "account_id", 0),
    }


class NoOutcome(RuntimeError):
    """The command was consumed but produced no event (dead-lettered: see dead-letters)."""


@dataclass(frozen=True)
class Outcome:
    command_id: str
    events: tuple[Any, ...]  # account events, in log order
    duplicate: bool  # True: the command id was decided before; these are the original events
    latency_s: float  # submit -> events seen (0 for a duplicate found in the log)


@dataclass
class _Waiter:
    partition: int
    events: list[Any] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    seen_at: float = 0.0


class CommandClient:
    """Submits account commands and waits for their outcomes (thread-safe ``execute``)."""

    def __init__(
        self, settings: Settings, codec: Codec | None = None, name: str = "client"
    ) -> None:
        self.settings = settings
        self.codec = codec or codec_from_settings(settings)
        self.name = name
        self.commands_topic = settings.topic(ACCOUNT_COMMANDS)
        # A light source (default fetch settings): the tail polls as records arrive.
        self.log = KafkaLog(settings, bulk=False)
        self.partitions = self.log.partitions(ACCOUNT_COMMANDS)
        self.producer = Producer(producer_config(settings, linger_ms=COMMAND_LINGER_MS))
        # Explicit start offsets (OFFSET_END would resolve at the first fetch, after an
        # outcome the client is already waiting for).
        self.places: list[Place] = [(ACCOUNT_EVENTS, p) for p in range(self.partitions)]
        self.tail = self.log.follow(
            {place: self.log.watermarks(*place)[1] for place in self.places}
        )
        self.lock = threading.Lock()
        self.waiting: dict[str, _Waiter] = {}
        self.end_seen = dict.fromkeys(range(self.partitions), -1)  # tail read up to here
        self.last_command: dict[int, str] = {}  # partition -> command id of the last event
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._follow, name=f"{name}-tail", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.tail.close()
        self.log.close()
        self.producer.flush(admin_timeout_s)

    # -- submit ------------------------------------------------------------------------------

    def submit(self, command: AccountCommand, headers: Headers | None = None) -> tuple[int, int]:
        """Write the command (with record ``headers``: a trace context); return its
        (partition, offset) once acknowledged."""
        data = encode_command(self.codec, command, self.name)
        result: list[tuple[int, int] | KafkaError] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                result.append(error)
            else:
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None
                result.append((partition, offset))

        self.producer.produce(
            self.commands_topic, data, account_key(command.account_id), on_delivery=on_delivery,
            headers=headers,
        )  # fmt: skip
        self.producer.flush(admin_timeout_s)
        if not result:
            raise TimeoutError(f"command {command.command_id} not acknowledged")
        delivered = result[0]
        if isinstance(delivered, KafkaError):
            raise KafkaException(delivered)
        assert delivered[0] == account_partition(command.account_id, self.partitions)
        return delivered

    def execute(self, command: AccountCommand, timeout_s: float = 10.0) -> Outcome:
        """Submit ``command`` and wait (at most ``timeout_s``) for its outcome (in a client
        span when traced: its context travels with the command)."""
        with client_span(type(command).__name__, span_attributes(command)) as headers:
            return self._execute(command, timeout_s, headers)

    def _execute(
        self, command: AccountCommand, timeout_s: float, headers: Headers | None
    ) -> Outcome:
        started = time.monotonic()
        deadline = started + timeout_s
        partition = account_partition(command.account_id, self.partitions)
        waiter = _Waiter(partition)
        with self.lock:
            assert len(self.waiting) < waiting_max, "waiting_max commands in flight"
            assert command.command_id not in self.waiting, "this command id is already waiting"
            self.waiting[command.command_id] = waiter
        silent_since = recheck_at = 0.0
        try:
            _partition, offset = self.submit(command, headers)
            while not waiter.done.wait(processed_check_interval_s):
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError(f"no outcome for {command.command_id} in {timeout_s}s")
                if now < recheck_at:
                    continue
                if self._processed(partition, offset) and self._tail_reached_end(
                    partition, deadline
                ):
                    if waiter.done.is_set():
                        break
                    events = self.find_outcome(command.account_id, command.command_id)
                    if events:
                        return Outcome(command.command_id, events, True, 0.0)
                    silent_since = silent_since or now
                    if now - silent_since >= no_outcome_confirm_s:
                        raise NoOutcome(f"{command.command_id} produced no event")
                    recheck_at = now + no_outcome_recheck_s  # see no_outcome_confirm_s
            return Outcome(
                command.command_id, tuple(waiter.events), False, waiter.seen_at - started
            )
        finally:
            with self.lock:
                self.waiting.pop(command.command_id, None)

    # -- outcomes from the log ---------------------------------------------------------------

    def find_outcome(self, account_id: int, command_id: str) -> tuple[Any, ...]:
        """The events of ``command_id`` in the account's partition (a scan of the log; the
        read models index them by command id)."""
        partition = account_partition(account_id, self.partitions)
        found = []
        for record in read_typed(self.log, self.codec, ACCOUNT_EVENTS, partition):
            _envelope, event = record.checked()
            if event.command_id == command_id and event.account_id == account_id:
                found.append(event)
        return tuple(found)

    def _processed(self, partition: int, offset: int) -> bool:
        """Whether the processors committed past ``offset`` (its events are then committed,
        though maybe not yet visible: see ``no_outcome_confirm_s``)."""
        committed = self.log.committed(ACCOUNTS_GROUP, ACCOUNT_COMMANDS, [partition])
        return committed[partition] > offset

    def _tail_reached_end(self, partition: int, deadline: float) -> bool:
        """Wait until the tail has read the partition to its current (stable) end."""
        _low, high = self.log.watermarks(ACCOUNT_EVENTS, partition)
        while time.monotonic() < deadline:
            if self.end_seen[partition] >= high:
                return True
            time.sleep(poll_timeout_s / 5)
        return False

    # -- the tail ----------------------------------------------------------------------------

    def _follow(self) -> None:
        tail = self.tail
        while not self.stop.is_set():
            try:
                records = tail.poll(poll_timeout_s, tail_records_max)
            except KafkaException as exc:  # transient; librdkafka retries
                log.warning("reply tail: %s", exc)
                continue
            for record in records:
                self._on_event(record.partition, record.value or b"")
            # Then the partitions read to their end: their last command is complete. Only
            # after both may execute() see the end reached (it then reads the log instead).
            for place in self.places:
                partition = place[1]
                if tail.at_end(place):
                    self._finish(partition, None)
                self.end_seen[partition] = tail.reached(place)

    def _on_event(self, partition: int, data: bytes) -> None:
        _envelope, event = self.codec.decode_domain(data)
        command_id = event.command_id
        self._finish(partition, command_id)
        with self.lock:
            waiter = self.waiting.get(command_id)
        if waiter is not None and not waiter.done.is_set():
            if not waiter.events:
                waiter.seen_at = time.monotonic()
            waiter.events.append(event)
        self.last_command[partition] = command_id

    def _finish(self, partition: int, next_command_id: str | None) -> None:
        """The previous command of ``partition`` is complete when another one starts or the
        tail reaches the end (a command's events are consecutive, in one transaction)."""
        previous = self.last_command.get(partition)
        if previous is None or previous == next_command_id:
            return
        with self.lock:
            waiter = self.waiting.get(previous)
        if waiter is not None and waiter.events:
            waiter.done.set()
        if next_command_id is None:
            self.last_command.pop(partition, None)
