"""The account processor: ``account-commands`` + ``settlements`` → events, order requests.

One instance owns some partitions (a consumer group member, see
:class:`tradex.infra.stage.TransactionalStage`). For each input record, in order:

1. decode (Avro, Confluent wire format); an undecodable, invalid, unexpected or misrouted
   record becomes a ``DeadLetter`` and processing goes on;
2. decide with the domain (:class:`tradex.domain.AccountBook`), against the reference
   table caught up to the end of ``reference-events`` before the batch;
3. write the events to ``account-events`` on the *input's* partition (explicitly: the same
   partition holds the account's commands, settlements, events and snapshots), chained by
   hash, with the account's ``seq``; write accepted orders, cancels and amends to
   ``order-requests`` (key: instrument), and a cancel-all's continuation (the rest of its
   orders, see :class:`tradex.domain.CancelAllOrders`) back to ``account-commands``, on
   the input's partition, in the same transaction.

The hot records (an accepted deposit or order, a fill settled, an order's hold released)
are decided by the compiled path (:mod:`tradex.commands.compiled`), the rest by the Python
domain, on the same state; ``compiled=False`` decides everything in Python (the twin).

The stage puts all of a batch's outputs and its input offsets in one Kafka transaction.
Ids derive from the input position: ``order_id = partition << 40 | offset`` and event ids
from (time, source topic, partition, offset, output index), so a re-run after a crash
writes the same bytes. A duplicate command id writes nothing (its outcome is in the log).
"""

from __future__ import annotations

import gc
import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, Message, TopicPartition

from tradex.commands import snapshots
from tradex.commands.compiled import build_kernel
from tradex.commands.rebuild import rebuild_partition
from tradex.commands.reference_table import ReferenceFollower
from tradex.commands.snapshots import Capture, PartitionState
from tradex.domain.book import AccountBook
from tradex.domain.commands import SETTLEMENT_TYPES as SETTLEMENT_RECORDS
from tradex.domain.commands import (
    ApproveWithdrawal,
    CancelAllOrders,
    CancelOrder,
    Deposit,
    ModifyOrder,
    PlaceOrder,
    RejectWithdrawal,
    RequestWithdrawal,
)
from tradex.domain.events import CommandRejected, OrderRejected
from tradex.domain.ids import ORDER_OFFSET_BITS, order_id
from tradex.domain.orders import AmendOrder
from tradex.domain.types import REASONS, Reason
from tradex.infra.settings import Settings
from tradex.infra.stage import Output
from tradex.log.dead_letters import dead_letter_of_message
from tradex.log.ids import OUTPUT_INDEX_TEXT, EventIds, EventSource
from tradex.log.keys import Routes, instrument_key
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    ACCOUNT_SNAPSHOTS,
    DEAD_LETTERS,
    ORDER_REQUESTS,
    SETTLEMENTS,
)
from tradex.observability import logs
from tradex.observability.metrics import AccountMetrics
from tradex.observability.tracing import trace_id_of
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec, CodecError

log = logging.getLogger(__name__)

COMMAND_TYPES = frozenset(
    (
        Deposit, RequestWithdrawal, ApproveWithdrawal, RejectWithdrawal, PlaceOrder, CancelOrder,
        ModifyOrder, CancelAllOrders,
    )
)  # fmt: skip
SETTLEMENT_TYPES = frozenset(SETTLEMENT_RECORDS)
SNAPSHOT_EVENTS_DEFAULT = 200_000  # events of a partition between two snapshots
INSTRUMENT_KEYS_MAX = 100_000  # cached instrument id -> key entries
ORDER_OFFSET_MAX = (1 << ORDER_OFFSET_BITS) - 1
REJECTIONS = frozenset((OrderRejected, CommandRejected))


class _Live:
    """A partition being processed: its accounts and the tail of its event chain."""

    __slots__ = ("book", "event_ids", "events_next", "last_hash", "order_id_base", "since_snapshot")

    def __init__(self, state: PartitionState) -> None:
        self.event_ids = tuple(
            EventIds(source, state.partition)
            for source in (EventSource.ACCOUNT_COMMANDS, EventSource.SETTLEMENTS)
        )
        self.order_id_base = order_id(state.partition, 0)  # | offset: the PlaceOrder's order id
        self.book: AccountBook = state.book
        self.events_next = state.events_next
        self.last_hash = state.last_hash
        self.since_snapshot = 0


@dataclass
class ProcessorStats:
    decided: int = 0
    duplicates: int = 0
    rejected: int = 0  # of ``decided``: a rejection event written
    dead_letters: int = 0
    events: int = 0
    order_requests: int = 0
    snapshots: int = 0
    rebuilt_events: int = 0
    compiled: int = 0  # of ``decided``: by the compiled path


class AccountProcessor:
    """The :class:`tradex.infra.stage.Processor` of the account stage."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        follower: ReferenceFollower,
        *,
        partitions: int,
        producer: str,
        snapshot_events: int = SNAPSHOT_EVENTS_DEFAULT,
        use_snapshots: bool = True,
        freeze_gc: bool = True,
        compiled: bool = True,
    ) -> None:
        """``compiled``: hot records through the C kernel (:mod:`tradex.commands.compiled`);
        False: every record through the Python domain (the twin; same bytes, same state)."""
        assert partitions > 0, partitions
        assert snapshot_events >= 0, snapshot_events
        self.settings = settings
        self.codec = codec
        self.follower = follower
        self.partitions = partitions
        self.producer = producer
        self.snapshot_events = snapshot_events
        self.use_snapshots = use_snapshots
        self.freeze_gc = freeze_gc
        self.commands_topic = settings.topic(ACCOUNT_COMMANDS)
        self.settlements_topic = settings.topic(SETTLEMENTS)
        self.events_topic = settings.topic(ACCOUNT_EVENTS)
        self.orders_topic = settings.topic(ORDER_REQUESTS)
        self.snapshots_topic = settings.topic(ACCOUNT_SNAPSHOTS)
        self.dead_letters_topic = settings.topic(DEAD_LETTERS)
        self.sources = {
            self.commands_topic: EventSource.ACCOUNT_COMMANDS,
            self.settlements_topic: EventSource.SETTLEMENTS,
        }
        self.accepted = {
            EventSource.ACCOUNT_COMMANDS: COMMAND_TYPES,
            EventSource.SETTLEMENTS: SETTLEMENT_TYPES,
        }
        self.live: dict[int, _Live] = {}
        self.routes = Routes(partitions)  # account id -> (partition, key)
        self.instrument_keys: dict[int, bytes] = {}
        self.appenders: dict[type, Callable[..., bytes]] = {}  # at most one per domain type
        self.partitions_seen: set[int] = set()  # every partition ever assigned here
        # Per decided batch, oldest first: the snapshots due at its end, until its commit.
        self.captures: deque[list[Capture]] = deque()
        self.stats = ProcessorStats()
        # The Python path's decisions of the batch: (command type, outcome, reason) -> count
        self.decisions: Counter[tuple[type, str, str]] = Counter()
        self.metrics = AccountMetrics(
            frozenset(map(str, REASONS)), Reason.BELOW_MIN_NOTIONAL, Reason.INSUFFICIENT_FUNDS
        )
        # Built last: it holds this processor's tables (live, routes, instrument keys).
        self.kernel = build_kernel(self) if compiled else None

    # -- assignment ------------------------------------------------------------------------

    def assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The reference table is read up to its end with the state, not by the first batch
        # (a start-up cost: every asset, instrument, user and account opened so far).
        self.follower.catch_up()
        assigned = sorted({tp.partition for tp in partitions})
        assert all(0 <= p < self.partitions for p in assigned), "more partitions than configured"
        wanted = [partition for partition in assigned if partition not in self.live]
        with KafkaLog(self.settings) as source:
            for partition in wanted:
                state, folded = rebuild_partition(
                    source,
                    self.codec,
                    self.follower.reference,
                    partition,
                    use_snapshot=self.use_snapshots,
                )
                self.live[partition] = _Live(state)
                self.partitions_seen.add(partition)
                self.stats.rebuilt_events += folded
                log.info(
                    "partition %d rebuilt: %d accounts, %d events after the snapshot, next %d",
                    partition, len(state.book.accounts), folded, state.events_next,
                )  # fmt: skip
        if self.freeze_gc:
            gc.freeze()

    def assign_empty(self, partitions: list[int]) -> None:
        """Start these partitions from nothing, without reading the logs (benchmarks of
        ``process`` on fresh topics)."""
        for partition in partitions:
            assert 0 <= partition < self.partitions, "more partitions than configured"
            assert partition not in self.live, f"partition {partition} is already live"
            book = AccountBook(self.follower.reference)
            self.live[partition] = _Live(PartitionState(partition, 0, ZERO_HASH, book))
            self.partitions_seen.add(partition)

    def revoke(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.live.pop(tp.partition, None)
        self.captures.clear()  # decided batches that will not commit (a snapshot is optional)

    def assigned(self) -> list[int]:
        return sorted(self.live)

    def book(self, partition: int) -> AccountBook:
        return self.live[partition].book

    # -- one batch -------------------------------------------------------------------------

    def process(self, messages: Sequence[Message]) -> list[Output]:
        return self.process_segments([messages])[0]

    def process_segments(self, segments: list[Sequence[Message]]) -> list[list[Output]]:
        """The outputs of each consecutive piece of one batch, as one ``process`` of the
        whole decides them (a traced batch is cut around its sampled records: each one's
        outputs are then known; tradex.observability.tracing)."""
        self.follower.catch_up()
        decided: list[list[Output]] = []
        # The cyclic collector pauses for the batch (at most batch_records_max records, so
        # at most that many records' garbage waits): a command allocates a dozen containers,
        # which triggered a young collection every ~60 commands (~5 % of the instructions).
        # Nothing here makes cycles; any that appear are collected after the batch.
        paused = self.freeze_gc and gc.isenabled()
        if paused:
            gc.disable()
        before = (self.stats.events, self.stats.order_requests)
        try:
            for messages in segments:
                outputs: list[Output] = []
                self._decide_all(messages, outputs)
                decided.append(outputs)
        finally:
            if paused:
                # The batch's survivors (accounts' new state, the outputs until produced)
                # join the frozen generation at once (O(1)); enabled with them young, the
                # collector's next pass scanned them all: 0.53-0.76 s of collections per
                # 200k commands in the ledger bench, 0.13-0.15 s with the freeze.
                gc.freeze()
                gc.enable()
        self.captures.append(self._snapshots_due())  # one per transaction: after every piece
        # The batch's metrics, once (decided: counted again if its transaction aborts).
        self.metrics.decisions(self.decisions)
        self.decisions.clear()
        self.metrics.produced(self.stats.events - before[0], self.stats.order_requests - before[1])
        return decided

    def _snapshots_due(self) -> list[Capture]:
        """The partitions due a snapshot, captured as they are after this batch (the stage
        may decide the next batch before this one's commit says where its events end)."""
        due: list[Capture] = []
        if self.snapshot_events == 0:
            return due
        for partition, live in self.live.items():
            if live.since_snapshot >= self.snapshot_events:
                due.append(snapshots.capture(partition, live.last_hash, live.book))
                live.since_snapshot = 0
        return due

    def _decide_all(self, messages: Sequence[Message], outputs: list[Output]) -> None:
        """Every record of the batch in order: runs of hot records by the kernel, each record
        it hands back by the Python domain (:meth:`_decide_python`), on the same state."""
        kernel = self.kernel
        if kernel is None:
            self._decide_python(messages, outputs)
            return
        batch = messages if type(messages) is list else list(messages)
        total = len(batch)
        index = kernel.decide(batch, 0, outputs)
        while index < total:  # bounded: each pass moves on by at least one record
            assert index >= 0, index
            self._decide_python(batch[index : index + 1], outputs)
            index = kernel.decide(batch, index + 1, outputs)
        assert index == total, "the kernel went past the batch"
        decided, events, requests = kernel.take_counts()
        below_min_notional, insufficient_funds = kernel.take_rejections()
        self.metrics.compiled(decided, requests, below_min_notional, insufficient_funds)
        stats = self.stats
        stats.rejected += below_min_notional + insufficient_funds
        stats.decided += decided
        stats.compiled += decided
        stats.events += events
        stats.order_requests += requests

    def _decide_python(self, messages: Sequence[Message], outputs: list[Output]) -> None:
        """Records in order through the Python domain (the hot loop of the twin: per-batch
        lookups hoisted into locals, counts kept in locals and added to ``stats`` once;
        rejected records leave through :meth:`_reject`)."""
        append = outputs.append
        sources, lives, accepted = self.sources, self.live, self.accepted
        routes, route_of = self.routes.cache, self.routes.route
        instrument_keys, from_commands = self.instrument_keys, EventSource.ACCOUNT_COMMANDS
        decode, appenders = self.codec.decode_domain, self.appenders
        events_topic, orders_topic, producer = self.events_topic, self.orders_topic, self.producer
        decided = duplicates = rejected = events_count = requests_count = 0
        decisions = self.decisions
        for message in messages:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            source = sources[topic]
            live = lives.get(partition)
            assert live is not None, f"a record of partition {partition}, which is not assigned"
            value = message.value()
            if not value:
                append(self._reject(message, source, "empty", "record without a value"))
                continue
            try:
                envelope, command = decode(value)  # validates the command
            except CodecError as exc:
                append(self._reject(message, source, "undecodable", str(exc)))
                continue
            if type(command) not in accepted[source]:
                error = f"{type(command).__name__} does not belong on {topic}"
                append(self._reject(message, source, "unexpected type", error))
                continue
            account_id = command.account_id
            route = routes.get(account_id)
            home, key = route if route is not None else route_of(account_id)
            if account_id > 0 and home != partition:
                error = f"account {account_id} lives on partition {home}"
                append(self._reject(message, source, "misrouted", error))
                continue
            assert 0 <= offset <= ORDER_OFFSET_MAX, "offset out of the order id range"
            book = live.book
            account = book.accounts.get(account_id)
            if account is not None:  # AccountBook.handle's common case, one call less
                events, requests, duplicate = account.handle(
                    command, book.reference, live.order_id_base | offset, True
                )  # validated: the codec did
            else:  # a new account, or none (account id <= 0: a rejection)
                events, requests, duplicate = book.handle(
                    command, live.order_id_base | offset, validated=True
                )
                account = book.accounts.get(account_id)
            decided += 1
            if duplicate:
                duplicates += 1
                decisions[(type(command), "duplicate", "")] += 1
                continue
            command_id = command.command_id
            causation = command_id if source == from_commands else envelope.event_id
            correlation = envelope.correlation_id or command_id
            time_ns = command.event_time_ns
            ids_head = live.event_ids[source].head(time_ns, offset)  # + output index: event id
            index = 0
            reason = ""
            if events:
                count = len(events)
                if account is not None:
                    seq, step = account.version - count, 1
                else:  # no account: not chained by seq
                    seq, step = 0, 0
                last_hash = live.last_hash
                for event in events:
                    if type(event) in REJECTIONS:
                        reason = event.reason  # type: ignore[union-attr]
                        rejected += 1
                    # at its input's time (an amended order's settlements: not before the amend)
                    assert event.event_time_ns >= time_ns, "an event before its input's time"
                    seq += step
                    try:
                        encode_into = appenders[type(event)]
                    except KeyError:
                        encode_into = self._appender(type(event))
                    last_hash = encode_into(
                        outputs, Output, events_topic, key, partition, event, last_hash,
                        ids_head + OUTPUT_INDEX_TEXT[index], causation, correlation, producer,
                        seq, "",
                    )  # fmt: skip
                    index += 1
                live.last_hash = last_hash
                live.since_snapshot += count
                events_count += count
            decisions[(type(command), "rejected" if reason else "accepted", reason)] += 1
            if requests:
                for request in requests:
                    # (an amend may be later: strictly after the order's previous amend)
                    assert request.event_time_ns == time_ns or (
                        type(request) is AmendOrder and request.event_time_ns > time_ns
                    ), "a request not at its command's time"
                    try:
                        encode_into = appenders[type(request)]
                    except KeyError:
                        encode_into = self._appender(type(request))
                    if type(request) is CancelAllOrders:  # a continuation: back to its input
                        encode_into(
                            outputs, Output, topic, key, partition, request, ZERO_HASH,
                            ids_head + OUTPUT_INDEX_TEXT[index], causation, correlation,
                            producer, 0, "",
                        )  # fmt: skip
                        index += 1
                        continue
                    instrument = instrument_keys.get(request.instrument_id)
                    if instrument is None:
                        instrument = self._instrument_key(request.instrument_id)
                    encode_into(
                        outputs, Output, orders_topic, instrument, -1, request, ZERO_HASH,
                        ids_head + OUTPUT_INDEX_TEXT[index], causation, correlation, producer,
                        0, "",
                    )  # fmt: skip
                    index += 1
                requests_count += len(requests)
        stats = self.stats
        stats.decided += decided
        stats.duplicates += duplicates
        stats.rejected += rejected
        stats.events += events_count
        stats.order_requests += requests_count

    def _appender(self, cls: type) -> Callable[..., bytes]:
        """The codec's encode-and-append function for records of ``cls`` (cached)."""
        appender = self.appenders[cls] = self.codec.appender(cls)
        return appender

    def _instrument_key(self, instrument_id: int) -> bytes:
        key = self.instrument_keys.get(instrument_id)
        if key is None:
            if len(self.instrument_keys) >= INSTRUMENT_KEYS_MAX:
                self.instrument_keys.clear()
            key = self.instrument_keys[instrument_id] = instrument_key(instrument_id)
        return key

    def _reject(self, message: Message, source: EventSource, reason: str, error: str) -> Output:
        self.stats.dead_letters += 1
        logs.event(
            log, "dead letter", logging.WARNING, stage=self.producer, topic=message.topic(),
            partition=message.partition(), offset=message.offset(), reason=reason, error=error,
            trace_id=trace_id_of(message),
        )  # fmt: skip
        self.metrics.dead_letter(reason)
        return dead_letter_of_message(
            self.codec, self.dead_letters_topic, self.producer, source, message, reason, error
        )

    # -- after each commit -----------------------------------------------------------------

    def committed(self, produced: dict[tuple[str, int], int]) -> list[Output]:
        """Track where each partition's events end; encode the snapshots captured at the
        end of the batch just committed (they hold exactly the events below that end)."""
        if self.freeze_gc:
            # The accounts are long-lived and acyclic: keep the cyclic collector from
            # rescanning them after every few thousand allocations (~30 % of the time).
            gc.freeze()
        for (topic, partition), next_offset in produced.items():
            live = self.live.get(partition)
            if topic == self.events_topic and live is not None:
                assert next_offset > live.events_next, "account-events went backwards"
                live.events_next = next_offset
        outputs: list[Output] = []
        assert self.captures, "a commit without a decided batch"
        for captured in self.captures.popleft():
            live = self.live[captured.partition]
            outputs += snapshots.encode_capture(captured, live.events_next, self.snapshots_topic)
            self.stats.snapshots += 1
        return outputs
