"""``tradex bench ledger``: account commands through one account processor on the local
Kafka, side by side with the ``eventsourcing`` library on PostgreSQL.

    tradex bench ledger              # 200k commands, 10k accounts (a few minutes)
    tradex bench ledger --quick      # smoke run

Phases (fresh topics under a unique prefix, deleted afterwards):

1. **throughput**: N commands (20 % deposits, 80 % limit orders, seeded) preloaded into
   ``account-commands``; one processor (in this process) starts; the clock runs from its
   first batch to the commit of the last. Checked: one event per command, the hash chain
   of every partition, balances of the log's fold equal to a fresh domain decision.
   Repeated ``--repeats`` times (default 3) on fresh topics; the median is reported (one
   run is ~7 s, and this shared machine's speed drifts by ±20 % within minutes).
2. **latency**: ``tradex run accounts`` as a separate process; commands sent at a fixed
   rate, each one's send time against the moment its event is read back (read_committed)
   → p50/p99 command→event.
3. **peer**, paired with each throughput run (alternated in the same command): the same
   workload through ``eventsourcing`` 9.5.6 + PostgreSQL (fresh database per run), configured
   for a single writer (``tradex.bench.ledger_peer``). Its accounts are opened and given the
   workload's funding deposits before its clock starts; it then times the next M commands of
   the same generator (the order-heavy part: ~89 % orders, ~11 % deposits), twice: saving per
   command, and saving per batch of the size TradeX commits (``save(*aggregates)``). Its
   balances must equal the domain's. The ratio is taken pair by pair; the headline
   ``ratio_min`` is the median pair's ratio against the batched peer (the faster row).

Last line: one JSON object (``../shared/bench/README.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

from confluent_kafka import Message, Producer
from confluent_kafka.admin import AdminClient

from tradex.bench.ledger_trips import trip_messages
from tradex.commands import service
from tradex.commands.client import encode_command
from tradex.commands.processor import AccountProcessor
from tradex.commands.reference_service import build as build_reference
from tradex.commands.reference_table import ReferenceFollower
from tradex.domain import (
    AccountBook,
    CreateAsset,
    CreateInstrument,
    Deposit,
    InstrumentKind,
    Ledger,
    OpenAccount,
    OrderKind,
    PlaceOrder,
    ReferenceData,
    RegisterUser,
    Side,
)
from tradex.domain.ids import order_id
from tradex.infra import postgres
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.kafka import delete_prefixed_topics, produce_sync, producer_config
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.infra.stage import batch_records_max
from tradex.log.keys import account_key, account_partition, reference_key
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    REFERENCE_COMMANDS,
    SETTLEMENTS,
    ensure_account_topics,
)
from tradex.log.typed import read_typed
from tradex.schemas.chain import verify_chain
from tradex.schemas.codec import Codec

T0 = 1_700_000_000_000_000_000
INSTRUMENT = 1
TICK, LOT, MIN_NOTIONAL, MAKER_PPM, TAKER_PPM = 1, 1_000, 100, 1_000, 2_000
TARGET_COMMANDS_PER_S = 120_000  # issue 10 (was 30,000 before the compiled path)
TARGET_RATIO = 10.0


# -- workload -----------------------------------------------------------------------------------


def reference_commands(accounts: int) -> list[Any]:
    commands: list[Any] = [
        CreateAsset("a-btc", T0, "BTC", 8),
        CreateAsset("a-usd", T0, "USD", 2),
        CreateInstrument(
            "i-1",
            T0,
            INSTRUMENT,
            "BTC-USD",
            InstrumentKind.SPOT,
            "BTC",
            "USD",
            TICK,
            LOT,
            MIN_NOTIONAL,
            500,
            MAKER_PPM,
            TAKER_PPM,
        ),
        RegisterUser("u-1", T0, 1, "bench"),
    ]
    return commands + [OpenAccount(f"open-{a}", T0, a, 1) for a in range(1, accounts + 1)]


def funding_count(count: int, accounts: int) -> int:
    """How many of :func:`workload`'s first commands are the funding deposits."""
    return min(2 * accounts, count // 5)


def workload(count: int, accounts: int, seed: int) -> list[Any]:
    """20 % deposits, 80 % GTC limit orders over ``accounts`` accounts (seeded). The first
    deposits fund every account in both assets (as far as 20 % of ``count`` allows), so
    most orders are accepted: the full path (hold, event, order request)."""
    rng = random.Random(seed)
    deposits_total = count // 5
    funding = funding_count(count, accounts)
    later_share = (deposits_total - funding) / max(count - funding, 1)
    commands: list[Any] = []
    for i in range(count):
        t = T0 + i * 1_000
        if i < funding:
            asset = "USD" if i % 2 == 0 else "BTC"
            commands.append(Deposit(f"d{i}", i // 2 + 1, t, asset, 100_000_000))
            continue
        account = rng.randint(1, accounts)
        if rng.random() < later_share:
            asset = "USD" if rng.random() < 0.5 else "BTC"
            commands.append(Deposit(f"d{i}", account, t, asset, 100_000_000))
        else:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            price, qty = rng.randint(95, 105), rng.randint(1, 10)
            commands.append(
                PlaceOrder(f"o{i}", account, t, INSTRUMENT, side, OrderKind.GTC, price, qty)
            )
    return commands


def with_order_ids(commands: Sequence[Any], partitions: int) -> list[tuple[Any, int]]:
    """Each command with the order id it gets (its offset in its partition, fresh topic)."""
    next_offset = [0] * partitions
    out = []
    for command in commands:
        partition = account_partition(command.account_id, partitions)
        out.append((command, order_id(partition, next_offset[partition])))
        next_offset[partition] += 1
    return out


def expected_balances(
    numbered: Sequence[tuple[Any, int]], accounts: int
) -> dict[int, dict[str, tuple[int, int]]]:
    reference = ReferenceData()
    for command in reference_commands(accounts):
        reference.decide(command)
    book = AccountBook(reference)
    for command, oid in numbered:
        book.handle(command, oid)
    return {account.account_id: account.balances() for account in book}


# -- setup ---------------------------------------------------------------------------------------


def prepare(settings: Settings, codec: Codec, partitions: int, accounts: int) -> None:
    """Topics, then reference data through the reference processor."""
    ensure_account_topics(settings, partitions)
    stage, processor = build_reference(settings, "bench")
    records: list[tuple[bytes | None, bytes]] = [
        (reference_key(c), encode_command(codec, c)) for c in reference_commands(accounts)
    ]
    produce_sync(settings, settings.topic(REFERENCE_COMMANDS), records)
    stage.run(idle_s_max=1.0)
    assert processor.decided == len(records), "reference data not loaded"


def preload(settings: Settings, codec: Codec, commands: Sequence[Any]) -> None:
    records: list[tuple[bytes | None, bytes]] = [
        (account_key(c.account_id), encode_command(codec, c)) for c in commands
    ]
    produce_sync(settings, settings.topic(ACCOUNT_COMMANDS), records)


# -- phase 1: throughput -------------------------------------------------------------------------


class _Clock:
    """Wraps a processor: time of its first batch and of its last commit."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.first = 0.0
        self.last = 0.0

    def assign(self, consumer: Any, partitions: Any) -> None:
        self.processor.assign(consumer, partitions)

    def revoke(self, partitions: Any) -> None:
        self.processor.revoke(partitions)

    def process(self, messages: Any) -> Any:
        if not self.first:
            self.first = time.perf_counter()
        return self.processor.process(messages)

    def committed(self, produced: Any) -> Any:
        self.last = time.perf_counter()
        return self.processor.committed(produced)


def throughput(
    settings: Settings, partitions: int, count: int, profile: str | None, compiled: bool = True
) -> tuple[float, Any]:
    stage, processor = service.build(
        settings, instance="bench", partitions=partitions, compiled=compiled
    )
    clock = _Clock(processor)
    stage.processor = clock
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        stats = stage.run(idle_s_max=2.0)
    finally:
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        processor.follower.close()
    assert stats.records_in == count, f"{stats.records_in} records in, {count} sent"
    return count / (clock.last - clock.first), processor


def verify(
    settings: Settings, codec: Codec, partitions: int, numbered: Sequence[tuple[Any, int]],
    accounts: int,
) -> list[str]:  # fmt: skip
    """Problems found in the event log (empty: ok)."""
    problems: list[str] = []
    folded = AccountBook(ReferenceData())
    ledger = Ledger()
    events = 0
    with KafkaLog(settings) as log:
        for partition in range(partitions):
            links = []
            for record in read_typed(log, codec, ACCOUNT_EVENTS, partition):
                envelope, event = record.checked()
                links.append((envelope.prev_hash, record.value))
                folded.apply(event)
                ledger.apply(event)
                events += 1
            problems += [f"partition {partition}: {p}" for p in verify_chain(links)[:5]]
    if events != len(numbered):
        problems.append(f"{events} events for {len(numbered)} commands")
    expected = expected_balances(numbered, accounts)
    got = {account.account_id: account.balances() for account in folded}
    if got != expected:
        problems.append("balances of the log's fold differ from a fresh decision")
    problems += ledger.violations()[:5]
    return problems


# -- phase 2: latency ----------------------------------------------------------------------------


def latency(
    settings: Settings, codec: Codec, partitions: int, accounts: int, rate: int, seconds: float
) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, commands) at ``rate`` commands/s through a separate processor."""
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix)
    argv = [sys.executable, "-m", "tradex.cli", "run", "accounts", "--instance", "latency",
            "--partitions", str(partitions)]  # fmt: skip
    process = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    commands = workload(int(rate * seconds), accounts, seed=2)
    encoded = [
        (account_key(c.account_id), encode_command(codec, c), c.command_id) for c in commands
    ]
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    log = KafkaLog(settings, bulk=False)
    tail = log.follow({(ACCOUNT_EVENTS, p): 0 for p in range(partitions)})
    done = threading.Event()

    def follow() -> None:
        while not done.is_set():
            for record in tail.poll(0.05, 10_000):
                now = time.perf_counter()
                _envelope, event = codec.decode_domain(record.value or b"")
                seen.setdefault(event.command_id, now)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        warm = Deposit("warm-up", 1, T0, "USD", 1)
        producer = Producer(producer_config(settings))
        producer.produce(
            settings.topic(ACCOUNT_COMMANDS), encode_command(codec, warm), account_key(1)
        )
        producer.flush(30)
        deadline = time.monotonic() + 120
        while "warm-up" not in seen:  # the processor has joined and rebuilt
            assert process.poll() is None, process.stderr.read()[-2000:] if process.stderr else ""
            assert time.monotonic() < deadline, "latency processor did not start"
            time.sleep(0.05)
        interval = 1.0 / rate
        start = time.perf_counter()
        for index, (key, value, command_id) in enumerate(encoded):
            target = start + index * interval
            while (now := time.perf_counter()) < target:
                time.sleep(min(target - now, 0.001))
            sent[command_id] = time.perf_counter()
            producer.produce(settings.topic(ACCOUNT_COMMANDS), value, key)
            producer.poll(0)
        producer.flush(30)
        deadline = time.monotonic() + 60
        while len(seen) < len(encoded) + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        done.set()
        follower.join()
        tail.close()
        log.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    latencies = sorted((seen[c] - sent[c]) * 1000 for c in sent if c in seen)
    assert len(latencies) == len(sent), f"{len(sent) - len(latencies)} commands without events"
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99, len(latencies)


# -- micro: the processor's process() without Kafka ---------------------------------------------


class _StillReference:
    """The reference follower of a micro run: a fixed table, nothing to catch up."""

    def __init__(self, reference: ReferenceData) -> None:
        self.reference = reference

    def catch_up(self) -> int:
        return 0

    def close(self) -> None:
        pass


def micro_messages(
    settings: Settings, codec: Codec, commands: Sequence[Any], partitions: int
) -> list[Message]:
    """The commands as the records a consumer would hand out (fresh topic, offsets from 0)."""
    topic = settings.topic(ACCOUNT_COMMANDS)
    next_offset = [0] * partitions
    messages = []
    for command in commands:
        key = account_key(command.account_id)
        partition = account_partition(command.account_id, partitions)
        value = encode_command(codec, command)
        offset = next_offset[partition]
        next_offset[partition] += 1
        messages.append(
            Message(topic=topic, partition=partition, offset=offset, value=value, key=key)
        )
    return messages


def micro_processor(
    settings: Settings, reference: ReferenceData, partitions: int, compiled: bool = True
) -> Any:
    """An account processor owning every partition, empty, on a fixed reference table
    (``compiled``: the C kernel decides the hot records; False: the Python domain, its twin)."""
    processor = AccountProcessor(
        settings,
        Codec.offline(),
        cast(ReferenceFollower, _StillReference(reference)),
        partitions=partitions,
        producer="accounts/bench",
        snapshot_events=0,
        compiled=compiled,
    )
    processor.assign_empty(list(range(partitions)))
    return processor


def _micro_run(
    settings: Settings, reference: ReferenceData, partitions: int, compiled: bool,
    batches: Sequence[Sequence[Message]], profile: str | None,
) -> tuple[float, int, str]:  # fmt: skip
    """(CPU seconds, outputs, SHA-256 of every output) of one fresh processor over ``batches``."""
    processor = micro_processor(settings, reference, partitions, compiled)
    assert (processor.kernel is not None) == compiled, "the compiled path was not built"
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    gc.collect()
    started = time.process_time()
    outputs = []
    for each in batches:
        outputs += processor.process(each)
        processor.committed({})
    elapsed = time.process_time() - started
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    sha = hashlib.sha256()
    for output in outputs:
        sha.update(f"{output.topic}|{output.key!r}|{output.partition}|".encode())
        sha.update(output.value)
    return elapsed, len(outputs), sha.hexdigest()


def micro(
    count: int, accounts: int, partitions: int, batch: int, repeats: int, profile: str | None,
    paths: Sequence[bool] = (True, False), trips: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """CPU µs per command of ``AccountProcessor.process`` on pre-encoded records, batches of
    ``batch`` as the stage hands them; the best of ``repeats`` fresh runs per path. ``paths``:
    the compiled path (True) and its twin, the Python domain (False), alternated run by run on
    the same records. ``outputs_sha256`` digests every output (topic, key, partition, value):
    the two paths must write identical bytes (else ``ok`` is false). ``trips``: ``count``
    order trips instead (:mod:`tradex.bench.ledger_trips`: each order's PlaceOrder, FillLegs
    and OrderEnded), figures per order."""
    settings = dataclasses.replace(settings_module.load(), topic_prefix="bench-micro-")
    reference = ReferenceData()
    for command in reference_commands(accounts):
        reference.decide(command)
    if trips:
        messages = trip_messages(
            Codec.offline(), settings.topic(ACCOUNT_COMMANDS), settings.topic(SETTLEMENTS),
            INSTRUMENT, count, accounts, partitions, seed=1,
        )  # fmt: skip
    else:
        messages = micro_messages(settings, Codec.offline(), workload(count, accounts, seed=1),
                                  partitions)  # fmt: skip
    batches = [messages[i : i + batch] for i in range(0, len(messages), batch)]
    runs_us: dict[bool, list[float]] = {path: [] for path in paths}
    digests: dict[bool, set[str]] = {path: set() for path in paths}
    outputs_total = 0
    for repeat in range(repeats):
        for compiled in paths:
            last = repeat == repeats - 1 and compiled == paths[0]
            elapsed, outputs_total, digest = _micro_run(
                settings, reference, partitions, compiled, batches, profile if last else None
            )
            runs_us[compiled].append(elapsed / count * 1e6)
            digests[compiled].add(digest)
            name = "compiled" if compiled else "python  "
            unit = "order" if trips else "command"
            print(f"  micro run {repeat + 1} {name}: {runs_us[compiled][-1]:.2f} µs CPU per "
                  f"{unit}, {outputs_total} outputs, sha256 {digest[:16]}")  # fmt: skip
    every = set().union(*digests.values())
    first = paths[0]
    best = min(runs_us[first])
    unit = "order" if trips else "command"
    figures: dict[str, Any] = {
        f"cpu_us_per_{unit}_min": round(best, 2),
        f"cpu_us_per_{unit}_median": round(statistics.median(runs_us[first]), 2),
        f"{unit}s_per_cpu_s": round(1e6 / best),
    }
    if len(paths) == 2:
        twin = min(runs_us[paths[1]])
        figures[f"python_cpu_us_per_{unit}_min"] = round(twin, 2)
        figures[f"python_cpu_us_per_{unit}_median"] = round(statistics.median(runs_us[paths[1]]), 2)
        figures["ratio_min"] = round(twin / best, 2)
    return {
        "bench": "ledger-micro",
        "ok": outputs_total > count and len(every) == 1,
        "figures": figures,
        "outputs": outputs_total,
        "outputs_sha256": sorted(every)[0] if len(every) == 1 else sorted(every),
        "cores": os.cpu_count() or 1,
        "notes": (
            f"{count} order trips (PlaceOrder, 1-3 FillLegs, OrderEnded; {len(messages)} records)"
            if trips
            else f"{count} commands (20% deposits, 80% limit orders)"
        )
        + f" over {accounts} accounts, "
        f"{partitions} partitions, batches of {batch}, no Kafka; best of {repeats} per path"
        + (", compiled path and Python domain alternated" if len(paths) == 2 else "")
        + f"; load average {os.getloadavg()[0]:.2f}",
    }


def services_down(settings: Settings) -> str:
    """Empty when Kafka and PostgreSQL answer; else what is wrong."""
    try:
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).list_topics(timeout=10)
    except Exception as exc:
        return f"Kafka at {settings.kafka_bootstrap} does not answer: {exc}"
    try:
        asyncio.run(postgres.ping(settings))
    except Exception as exc:
        return f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port}: {exc}"
    return ""


async def create_peer_database(settings: Settings, database: str) -> None:
    """A fresh database; commits not flushed synchronously, like the single Kafka broker
    (acks=all, no fsync per write): the same durability class on both sides."""
    await postgres.create_database(settings, database)
    conn = await postgres.connect(settings)
    try:
        await conn.execute(
            f"ALTER DATABASE {postgres.check_identifier(database)} SET synchronous_commit = off"
        )
    finally:
        await conn.close()


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex bench ledger", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--commands", type=positive_int, default=None, help="throughput commands")
    parser.add_argument("--accounts", type=positive_int, default=None)
    parser.add_argument("--partitions", type=positive_int, default=2)
    parser.add_argument("--peer-commands", type=positive_int, default=None)
    parser.add_argument("--rate", type=positive_int, default=None, help="latency phase commands/s")
    parser.add_argument("--profile", default=None, help="write a cProfile of phase 1 here")
    parser.add_argument(
        "--micro", action="store_true",
        help="only AccountProcessor.process on pre-encoded records, no Kafka (CPU µs/command)",
    )  # fmt: skip
    parser.add_argument(
        "--trip", action="store_true",
        help="--micro on order trips (PlaceOrder, FillLegs, OrderEnded): CPU µs per order",
    )  # fmt: skip
    parser.add_argument(
        "--python-domain", action="store_true",
        help="decide everything with the Python domain (the compiled path's twin; as before it)",
    )  # fmt: skip
    parser.add_argument(
        "--repeats", type=positive_int, default=3,
        help="throughput phases (median reported; fresh topics each) or micro runs (best kept)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.micro:
        count = args.commands or (5_000 if args.quick else (50_000 if args.trip else 200_000))
        accounts = args.accounts or (500 if args.quick else 10_000)
        what = "order trips" if args.trip else "commands"
        print(f"ledger micro: {count} {what} over {accounts} accounts, no Kafka")
        paths = (False,) if args.python_domain else (True, False)
        result = micro(
            count, accounts, args.partitions, batch_records_max, args.repeats, args.profile, paths,
            args.trip,
        )  # fmt: skip
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    try:
        from tradex.bench import ledger_peer
    except ImportError as exc:
        print(f"tradex bench ledger: the peer needs the bench extra ({exc}): "
              "pip install -e '.[bench]'", file=sys.stderr)  # fmt: skip
        return 1
    quick = args.quick
    count = args.commands or (5_000 if quick else 200_000)
    accounts = args.accounts or (500 if quick else 10_000)
    funding = funding_count(count, accounts)
    peer_count = min(count - funding, args.peer_commands or (1_000 if quick else 10_000))
    if peer_count <= 0:
        parser.error("--commands leaves no commands after the funding deposits for the peer")
    rate = args.rate or (300 if quick else 1_000)
    seconds = 2.0 if quick else 5.0

    base = settings_module.load()
    problem = services_down(base)
    if problem:
        print(f"tradex bench ledger: {problem} (start it: tradex stack up)", file=sys.stderr)
        return 1
    token = uuid.uuid4().hex[:8]
    repeats = 1 if quick else args.repeats
    runs = [
        dataclasses.replace(base, topic_prefix=f"bench-ledger-{token}-{run}-")
        for run in range(repeats)
    ]
    latency_settings = dataclasses.replace(base, topic_prefix=f"bench-ledger-{token}-lat-")
    codec = Codec.offline()
    cores = os.cpu_count() or 1
    problems: list[str] = []
    rules = ledger_peer.Rules("BTC", "USD", TICK, LOT, MIN_NOTIONAL, MAKER_PPM, TAKER_PPM)
    peer_rows = {"per_command": None, "batched": batch_records_max}
    peer_runs: dict[str, list[float]] = {row: [] for row in peer_rows}
    ratios: dict[str, list[float]] = {row: [] for row in peer_rows}
    try:
        print(f"ledger: {count} commands over {accounts} accounts, {args.partitions} partitions")
        commands = workload(count, accounts, seed=1)
        numbered = with_order_ids(commands, args.partitions)
        peer_funding = numbered[:funding]
        peer_timed = numbered[funding : funding + peer_count]
        expected = expected_balances(numbered[: funding + peer_count], accounts)
        throughputs: list[float] = []
        for run, settings in enumerate(runs):
            prepare(settings, codec, args.partitions, accounts)
            started = time.perf_counter()
            preload(settings, codec, commands)
            print(f"  run {run + 1}/{repeats}: preloaded in {time.perf_counter() - started:.1f}s")
            profile = args.profile if run == 0 else None
            per_s, processor = throughput(
                settings, args.partitions, count, profile, not args.python_domain
            )
            throughputs.append(per_s)
            print(f"  throughput: {per_s:,.0f} commands/s through one processor "
                  f"({processor.stats})")  # fmt: skip
            problems += verify(settings, codec, args.partitions, numbered, accounts)
            print(f"  verified: {problems or 'ok'}")
            delete_prefixed_topics(settings)
            for row, batch in peer_rows.items():
                peer_per_s = peer_run(
                    ledger_peer, base, f"bench_ledger_{token}_{run}_{row}", accounts,
                    peer_funding, peer_timed, rules, batch, expected, problems,
                )  # fmt: skip
                peer_runs[row].append(peer_per_s)
                ratios[row].append(per_s / peer_per_s)
                print(f"  peer eventsourcing+PostgreSQL, {row.replace('_', ' ')}"
                      + (f" ({batch})" if batch else "")
                      + f": {peer_per_s:,.0f} commands/s ({peer_count} commands after "
                      f"{funding} funding deposits); ratio {ratios[row][-1]:.1f}x")  # fmt: skip
        commands_per_s = statistics.median(throughputs)

        prepare(latency_settings, codec, args.partitions, accounts)
        p50, p99, measured = latency(
            latency_settings, codec, args.partitions, accounts, rate, seconds
        )
        print(f"  latency at {rate}/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({measured} commands)")
    finally:
        for each in (*runs, latency_settings):
            delete_prefixed_topics(each)
    ratio = {row: statistics.median(values) for row, values in ratios.items()}
    headline = min(ratio.values())
    print(f"  ratio {ratio['batched']:.1f}x the batched peer, {ratio['per_command']:.1f}x the "
          f"per-command peer (target {TARGET_RATIO}x), target {TARGET_COMMANDS_PER_S:,} "
          "commands/s")  # fmt: skip
    result = {
        "bench": "ledger",
        "ok": not problems,
        "figures": {
            "commands_per_s": round(commands_per_s),
            "commands_per_s_runs": [round(each) for each in throughputs],
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
            "ack_p99_ms": round(p99, 2),
        },
        "peer": {
            "name": "eventsourcing 9.5.6 + PostgreSQL",
            "commands_per_s": round(statistics.median(peer_runs["batched"])),
            "commands_per_s_runs": [round(each) for each in peer_runs["batched"]],
            "batch": batch_records_max,
            "per_command_commands_per_s": round(statistics.median(peer_runs["per_command"])),
            "per_command_commands_per_s_runs": [round(each) for each in peer_runs["per_command"]],
            "settings": "AGGREGATE_CACHE_FASTFORWARD=n, DEEPCOPY_FROM_AGGREGATE_CACHE=n, "
            "POSTGRES_ENABLE_DB_FUNCTIONS=y, aggregate cache on, synchronous_commit=off",
        },
        "ratio_min": round(headline, 2),
        "ratio_batched": round(ratio["batched"], 2),
        "ratio_per_command": round(ratio["per_command"], 2),
        "cores": cores,
        "notes": (
            f"{count} commands (20% deposits, 80% limit orders) over {accounts} accounts, "
            f"{args.partitions} partitions, one processor, exactly-once transactions, median "
            f"of {repeats} throughput runs on fresh topics; latency "
            f"at {rate}/s in a separate process; each run paired with the peer on a fresh "
            f"database: accounts opened and the first {funding} (funding) commands applied "
            f"before its clock, then the next {peer_count} timed, saved per command and per "
            f"batch of {batch_records_max} (TradeX's commit batch); ratios pair by pair, "
            f"median pair; synchronous_commit=off on the peer's database (Kafka does not fsync "
            f"per write either); load average {os.getloadavg()[0]:.2f}; problems: "
            f"{problems[:3]}"
        ),
    }
    print(json.dumps(result))
    return 0 if not problems else 1


def peer_run(
    ledger_peer: Any, settings: Settings, database: str, accounts: int,
    funding: Sequence[tuple[Any, int]], timed: Sequence[tuple[Any, int]], rules: Any,
    batch: int | None, expected: dict[int, dict[str, tuple[int, int]]], problems: list[str],
) -> float:  # fmt: skip
    """One peer row on a fresh database (dropped afterwards); its balances are checked."""
    asyncio.run(create_peer_database(settings, database))
    try:
        per_s, app = ledger_peer.run_peer(
            settings, database, accounts, funding, timed, rules, batch
        )
        try:
            for account_id, balances in expected.items():
                if app.balances(account_id) != balances:
                    problems.append(f"peer balances of account {account_id} differ")
                    break
        finally:
            app.close()
    finally:
        asyncio.run(postgres.drop_database(settings, database))
    return cast(float, per_s)
