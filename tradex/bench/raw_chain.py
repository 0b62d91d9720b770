"""The raw Kafka chain of ``tradex bench e2e``: the order trip's shape with no deciding.

Two pass-through stages on the same :class:`~tradex.infra.stage.TransactionalStage` as the
real ones (same consumer settings, same adaptive batches, same transactions), run as
processes like the real stages:

- ``accounts``: reads ``raw-commands`` and ``raw-settlements``; per command one
  ``raw-events`` record and one ``raw-requests`` record (key: the instrument, taken from
  the command's first byte); per settlement one ``raw-events`` record.
- ``matcher``: reads ``raw-requests``; per request ``engine_per_order`` ``raw-engine``
  records on the same partition and ``settlements_per_order`` ``raw-settlements`` records
  keyed by an account (fractions are spread exactly: request k of the process's life
  writes floor((k+1)·f) - floor(k·f), so K requests write floor(K·f)).

Record sizes are the real pipeline's averages, measured on its log in the same run. The
values cycle through a pool of random bytes (``POOL_RECORDS`` per size) so that lz4 finds
no more repetition than in real records. Nothing is decoded, nothing is decided.

A command's value is its instrument byte, then ``STAMP_BYTES`` the sender chose (its send
time in the latency phase, random bytes otherwise), then filler. The stages copy those
bytes, untouched, to the front of what each command makes — its ``raw-events`` record,
its ``raw-requests`` record and every ``raw-engine`` record of that request — as the real
stages carry a command's id to its events: so the bench can time each order's
acknowledgement (``raw-events``) and its "trade" (``raw-engine``) through the same two
transactions as the real pipeline's.

The same two roles also run as the plain loop of confluent-kafka's exactly-once example
(:func:`run_plain_loop`), the latency peer of ``tradex bench e2e``: what a reader would
write from the client's docs, to show that the chain's latency here is Kafka's
transactions on this machine, not :class:`TransactionalStage`.

    python -m tradex.bench.raw_chain accounts|matcher SPEC_JSON [stage|plain]
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from tradex.infra import settings as settings_module
from tradex.infra.kafka import TopicSpec, consumer_config, ensure_topics, producer_config
from tradex.infra.settings import Settings
from tradex.infra.stage import Output, TransactionalStage, run_until_signalled

RAW_COMMANDS = "raw-commands"
RAW_SETTLEMENTS = "raw-settlements"
RAW_EVENTS = "raw-events"
RAW_REQUESTS = "raw-requests"
RAW_ENGINE = "raw-engine"
STAMP_BYTES = 8  # after the instrument byte of a command; first in what it makes
POOL_RECORDS = 4_096  # distinct random values per record size (lz4's window is 64 KiB)
LOOPS = ("stage", "plain")  # TransactionalStage, or confluent-kafka's example loop
PLAIN_POLL_S = 0.1
PLAIN_BATCH_MAX = 10_000
PLAIN_CALL_TIMEOUT_S = 30.0
ACCOUNTS_KEYS = 1_000


@dataclass(frozen=True)
class ChainSpec:
    """The shape of the chain: partitions, fan-out per order, record sizes (bytes)."""

    partitions: int
    engine_per_order: float
    settlements_per_order: float
    command_bytes: int
    event_bytes: int
    request_bytes: int
    engine_bytes: int
    settlement_bytes: int

    def __post_init__(self) -> None:
        assert self.partitions > 0, self.partitions
        assert self.command_bytes > STAMP_BYTES, self.command_bytes
        for size in (self.event_bytes, self.request_bytes, self.engine_bytes):
            assert size >= STAMP_BYTES, size
        assert self.engine_per_order >= 0, self.engine_per_order
        assert self.settlements_per_order >= 0, self.settlements_per_order

    def events_for(self, orders: int) -> int:
        """``raw-events`` records that ``orders`` orders (the matcher's whole life) make."""
        return orders + math.floor(orders * self.settlements_per_order)


def ensure_raw_topics(settings: Settings, partitions: int) -> None:
    spec = TopicSpec(partitions)
    names = (RAW_COMMANDS, RAW_SETTLEMENTS, RAW_EVENTS, RAW_REQUESTS, RAW_ENGINE)
    ensure_topics(settings, dict.fromkeys(names, spec))


class _Pool:
    """Random values of one size, cycled."""

    def __init__(self, size: int, seed: int) -> None:
        assert size > 0, size
        rng = random.Random(seed)
        self.values = [rng.randbytes(size) for _ in range(POOL_RECORDS)]
        self.next = 0

    def take(self) -> bytes:
        value = self.values[self.next]
        self.next = (self.next + 1) % POOL_RECORDS
        return value


class _PassThrough:
    """A stateless :class:`~tradex.infra.stage.Processor` (the outputs of each role)."""

    def assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        pass

    def revoke(self, partitions: list[TopicPartition]) -> None:
        pass

    def committed(self, produced: dict[tuple[str, int], int]) -> list[Output]:
        return []


class RawAccounts(_PassThrough):
    def __init__(self, settings: Settings, spec: ChainSpec) -> None:
        self.commands = settings.topic(RAW_COMMANDS)
        self.events = settings.topic(RAW_EVENTS)
        self.requests = settings.topic(RAW_REQUESTS)
        self.event_pool = _Pool(spec.event_bytes, 1)
        self.request_pool = _Pool(spec.request_bytes, 2)

    def process(self, messages: Sequence[Message]) -> list[Output]:
        outputs: list[Output] = []
        append = outputs.append
        commands, events, requests = self.commands, self.events, self.requests
        for message in messages:
            if message.topic() == commands:
                value = message.value() or bytes(1 + STAMP_BYTES)
                stamp = value[1 : 1 + STAMP_BYTES]
                event = stamp + self.event_pool.take()[STAMP_BYTES:]
                append(Output(events, event, message.key(), message.partition()))  # type: ignore[arg-type]
                request = stamp + self.request_pool.take()[STAMP_BYTES:]
                append(Output(requests, request, value[:1]))
            else:
                append(Output(events, self.event_pool.take(), message.key(), message.partition()))  # type: ignore[arg-type]
        return outputs


class RawMatcher(_PassThrough):
    def __init__(self, settings: Settings, spec: ChainSpec) -> None:
        self.engine = settings.topic(RAW_ENGINE)
        self.settlements = settings.topic(RAW_SETTLEMENTS)
        self.spec = spec
        self.engine_pool = _Pool(spec.engine_bytes, 3)
        self.settlement_pool = _Pool(spec.settlement_bytes, 4)
        self.keys = [f"account-{i}".encode() for i in range(ACCOUNTS_KEYS)]
        self.requests = 0  # requests of this process's life (the fractions' counter)

    def process(self, messages: Sequence[Message]) -> list[Output]:
        outputs: list[Output] = []
        append = outputs.append
        spec, keys = self.spec, self.keys
        k = self.requests
        for message in messages:
            partition = message.partition()
            stamp = (message.value() or b"")[:STAMP_BYTES]
            engine = math.floor((k + 1) * spec.engine_per_order) - math.floor(
                k * spec.engine_per_order
            )
            for _ in range(engine):
                value = stamp + self.engine_pool.take()[STAMP_BYTES:]
                append(Output(self.engine, value, message.key(), partition))  # type: ignore[arg-type]
            legs = math.floor((k + 1) * spec.settlements_per_order) - math.floor(
                k * spec.settlements_per_order
            )
            for leg in range(legs):
                key = keys[(k * 7 + leg) % ACCOUNTS_KEYS]
                append(Output(self.settlements, self.settlement_pool.take(), key))
            k += 1
        self.requests = k
        return outputs


@dataclass(frozen=True)
class _Role:
    group_id: str
    input_topics: list[str]
    processor: RawAccounts | RawMatcher
    transactional_id: str


def _role(settings: Settings, role: str, spec: ChainSpec) -> _Role:
    if role == "accounts":
        return _Role(
            settings.topic("raw-accounts"),
            [settings.topic(RAW_COMMANDS), settings.topic(RAW_SETTLEMENTS)],
            RawAccounts(settings, spec),
            settings.topic("raw-accounts-0"),
        )
    assert role == "matcher", role
    return _Role(
        settings.topic("raw-matcher"),
        [settings.topic(RAW_REQUESTS)],
        RawMatcher(settings, spec),
        settings.topic("raw-matcher-0"),
    )


def build(settings: Settings, role: str, spec: ChainSpec) -> TransactionalStage:
    r = _role(settings, role, spec)
    return TransactionalStage(
        settings,
        group_id=r.group_id,
        input_topics=r.input_topics,
        processor=r.processor,
        transactional_id=r.transactional_id,
    )


def run_plain_loop(settings: Settings, role: str, spec: ChainSpec, stop: threading.Event) -> int:
    """The role as the consume → transform → produce loop of confluent-kafka's
    exactly-once example (``examples/eos-transactions.py``) — consume, produce the outputs,
    send the consumer's positions to the transaction, commit, begin again — with one
    transaction per poll's worth of records (the example commits every 100 records: at a
    thousand orders/s over four partitions that is a wait for the 100th, not a latency
    loop) and the stages' consumer settings (``consumer_config``: fetch wait 10 ms, fetch
    queue backoff 10 ms). Nothing of :class:`TransactionalStage` — no adaptive batches, no
    commit overlapped with the next batch. Returns the transactions committed."""
    r = _role(settings, role, spec)
    consumer = Consumer(consumer_config(settings, r.group_id))
    consumer.subscribe(r.input_topics)
    producer = Producer(producer_config(settings, r.transactional_id))
    producer.init_transactions(PLAIN_CALL_TIMEOUT_S)
    transactions = 0
    try:
        while not stop.is_set():
            first = consumer.poll(PLAIN_POLL_S)
            if first is None:
                continue
            messages = [m for m in [first, *consumer.consume(PLAIN_BATCH_MAX, 0)] if not m.error()]
            if not messages:
                continue
            producer.begin_transaction()
            for output in r.processor.process(messages):
                producer.produce(output.topic, output.value, output.key, output.partition)
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()),
                consumer.consumer_group_metadata(),
                PLAIN_CALL_TIMEOUT_S,
            )
            producer.commit_transaction(PLAIN_CALL_TIMEOUT_S)
            transactions += 1
    finally:
        consumer.close()
    return transactions


def spec_json(spec: ChainSpec) -> str:
    return json.dumps(asdict(spec))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    role, spec = argv[0], ChainSpec(**json.loads(argv[1]))
    loop = argv[2] if len(argv) > 2 else "stage"
    if role not in ("accounts", "matcher") or loop not in LOOPS:
        print(f"unknown role {role!r} or loop {loop!r}", file=sys.stderr)
        return 2
    settings = settings_module.load()
    if loop == "plain":
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda _signum, _frame: stop.set())
        print(f"raw-{role} (plain loop): {run_plain_loop(settings, role, spec, stop)} transactions")
        return 0
    stats = run_until_signalled(build(settings, role, spec), None)
    print(
        f"raw-{role}: batches={stats.batches} in={stats.records_in} out={stats.records_out} "
        f"{stats.summary()}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
