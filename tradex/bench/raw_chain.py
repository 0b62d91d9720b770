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

    python -m tradex.bench.raw_chain accounts|matcher SPEC_JSON
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, Message, TopicPartition

from tradex.infra import settings as settings_module
from tradex.infra.kafka import TopicSpec, ensure_topics
from tradex.infra.settings import Settings
from tradex.infra.stage import Output, TransactionalStage, run_until_signalled

RAW_COMMANDS = "raw-commands"
RAW_SETTLEMENTS = "raw-settlements"
RAW_EVENTS = "raw-events"
RAW_REQUESTS = "raw-requests"
RAW_ENGINE = "raw-engine"
POOL_RECORDS = 4_096  # distinct random values per record size (lz4's window is 64 KiB)
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
            append(Output(events, self.event_pool.take(), message.key(), message.partition()))  # type: ignore[arg-type]
            if message.topic() == commands:
                instrument = (message.value() or b"\0")[:1]
                append(Output(requests, self.request_pool.take(), instrument))
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
            engine = math.floor((k + 1) * spec.engine_per_order) - math.floor(
                k * spec.engine_per_order
            )
            for _ in range(engine):
                append(Output(self.engine, self.engine_pool.take(), message.key(), partition))  # type: ignore[arg-type]
            legs = math.floor((k + 1) * spec.settlements_per_order) - math.floor(
                k * spec.settlements_per_order
            )
            for leg in range(legs):
                key = keys[(k * 7 + leg) % ACCOUNTS_KEYS]
                append(Output(self.settlements, self.settlement_pool.take(), key))
            k += 1
        self.requests = k
        return outputs


def build(settings: Settings, role: str, spec: ChainSpec) -> TransactionalStage:
    if role == "accounts":
        return TransactionalStage(
            settings,
            group_id=settings.topic("raw-accounts"),
            input_topics=[settings.topic(RAW_COMMANDS), settings.topic(RAW_SETTLEMENTS)],
            processor=RawAccounts(settings, spec),
            transactional_id=settings.topic("raw-accounts-0"),
        )
    assert role == "matcher", role
    return TransactionalStage(
        settings,
        group_id=settings.topic("raw-matcher"),
        input_topics=[settings.topic(RAW_REQUESTS)],
        processor=RawMatcher(settings, spec),
        transactional_id=settings.topic("raw-matcher-0"),
    )


def spec_json(spec: ChainSpec) -> str:
    return json.dumps(asdict(spec))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    role, spec = argv[0], ChainSpec(**json.loads(argv[1]))
    if role not in ("accounts", "matcher"):
        print(f"unknown role {role!r}", file=sys.stderr)
        return 2
    settings = settings_module.load()
    stats = run_until_signalled(build(settings, role, spec), None)
    print(
        f"raw-{role}: batches={stats.batches} in={stats.records_in} out={stats.records_out} "
        f"{stats.summary()}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
