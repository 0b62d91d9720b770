"""Helpers of the command-side tests: reference data on the log, running stages, reading logs."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from confluent_kafka import Consumer, TopicPartition

from tests.market import BTC_USD, T0, reference_commands
from tradex.commands import service
from tradex.commands.client import encode_command
from tradex.commands.processor import AccountProcessor
from tradex.commands.reference_service import build as build_reference
from tradex.commands.snapshots import account_state
from tradex.domain import (
    AccountBook,
    AmendOrder,
    ApproveWithdrawal,
    CancelAllOrders,
    CancelOrder,
    CancelOrderRequest,
    CancelRequested,
    Deposit,
    Ledger,
    ModifyOrder,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderKind,
    PlaceOrder,
    ReferenceData,
    RejectWithdrawal,
    RequestWithdrawal,
    Side,
)
from tradex.domain.ids import order_id
from tradex.infra.kafka import consumer_config, partition_count, produce_sync
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.infra.stage import StageStats
from tradex.log.keys import account_key, account_partition, reference_key
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    ACCOUNTS_GROUP,
    ORDER_REQUESTS,
    REFERENCE_COMMANDS,
    SETTLEMENTS,
    ensure_account_topics,
)
from tradex.log.typed import read_typed
from tradex.schemas.chain import verify_chain
from tradex.schemas.codec import Codec, Envelope, EnvelopeFields

IDLE_S = 2.0

CODEC = Codec.offline()


def reference_table(accounts: Sequence[int]) -> ReferenceData:
    table = ReferenceData()
    for command in reference_commands(accounts):
        table.decide(command)
    return table


def load_reference(
    settings: Settings, accounts: Sequence[int], partitions: int, extra: Sequence[Any] = ()
) -> None:
    """Account topics created; reference data on the log through the reference processor
    (``extra``: more reference commands after the market's, e.g. users with roles)."""
    ensure_account_topics(settings, partitions)
    stage, processor = build_reference(settings, "t")
    commands = [*reference_commands(accounts), *extra]
    produce_sync(
        settings,
        settings.topic(REFERENCE_COMMANDS),
        [(reference_key(c), encode_command(CODEC, c)) for c in commands],
    )
    stage.run(idle_s_max=IDLE_S)
    assert processor.decided == len(commands), processor.decided


def send(settings: Settings, commands: Sequence[Any], topic: str = ACCOUNT_COMMANDS) -> None:
    produce_sync(
        settings,
        settings.topic(topic),
        [(account_key(c.account_id), encode_command(CODEC, c)) for c in commands],
    )


def decide_late(
    settings: Settings, account_id: int, partitions: int, event: Any | None, delay_s: float,
    before: int = 0,
) -> threading.Thread:  # fmt: skip
    """A processor whose transaction's markers reach the group's offsets first: once a
    command of ``account_id`` is on the log (after ``before`` others on its partition),
    commit the account processors' group past it, then, ``delay_s`` later, write ``event``
    (None: nothing, a dead letter's silence)."""
    partition = account_partition(account_id, partitions)
    place = TopicPartition(settings.topic(ACCOUNT_COMMANDS), partition)

    def run() -> None:
        with KafkaLog(settings) as log:
            while (end := log.watermarks(ACCOUNT_COMMANDS, partition)[1]) <= before:
                time.sleep(0.01)
        group = Consumer(consumer_config(settings, settings.topic(ACCOUNTS_GROUP)))
        try:
            group.commit(offsets=[TopicPartition(place.topic, partition, end)], asynchronous=False)
        finally:
            group.close()
        time.sleep(delay_s)
        if event is not None:
            fields = EnvelopeFields("late-1", event.command_id, event.command_id, "t", 0)
            data = CODEC.encode_domain(event, fields).data
            produce_sync(
                settings, settings.topic(ACCOUNT_EVENTS), [(account_key(account_id), data)]
            )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def send_settlements(settings: Settings, records: Sequence[Any]) -> None:
    send(settings, records, SETTLEMENTS)


def run_accounts(
    settings: Settings, partitions: int, instance: str = "t", **options: Any
) -> tuple[StageStats, AccountProcessor]:
    """One account processor in this process until its input is idle."""
    idle_s = options.pop("idle_s", IDLE_S)
    stage, processor = service.build(settings, instance=instance, partitions=partitions, **options)
    try:
        stats = stage.run(idle_s_max=idle_s)
    finally:
        processor.follower.close()
    return stats, processor


def run_accounts_process(
    settings: Settings, partitions: int, instance: str, fault: str = "", idle_s: float = 3.0,
    extra: Sequence[str] = (), timeout_s: float = 120.0,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``tradex run accounts`` as a subprocess (exit 137: the injected fault fired)."""
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT=fault)
    argv = [
        sys.executable, "-m", "tradex.cli", "run", "accounts", "--instance", instance,
        "--partitions", str(partitions), "--exit-when-idle", str(idle_s), *extra,
    ]  # fmt: skip
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )


class Logged(NamedTuple):
    offset: int
    envelope: Envelope
    event: Any
    data: bytes
    key: bytes


def read_log(settings: Settings, topic: str, partition: int) -> list[Logged]:
    out = []
    with KafkaLog(settings) as log:
        for record in read_typed(log, CODEC, topic, partition):
            envelope, event = record.checked()
            out.append(Logged(record.offset, envelope, event, record.value, record.key or b""))
    return out


def read_events(settings: Settings, partition: int) -> list[Logged]:
    return read_log(settings, ACCOUNT_EVENTS, partition)


def replay_commands(
    settings: Settings, partitions: int, accounts: Sequence[int]
) -> dict[int, tuple[list[Any], AccountBook]]:
    """A fresh decision of every command on ``account-commands`` with the domain alone:
    per partition, the events it should hold and the accounts they leave (no settlements)."""
    expected = {}
    for partition in range(partitions):
        book = AccountBook(reference_table(accounts))
        events: list[Any] = []
        for record in read_log(settings, ACCOUNT_COMMANDS, partition):
            decision = book.handle(record.event, order_id(partition, record.offset))
            if not decision.duplicate:
                events += decision.events
        expected[partition] = (events, book)
    return expected


def check_exactly_once(
    settings: Settings, partitions: int, accounts: Sequence[int], commands: Sequence[Any]
) -> None:
    """The logs hold each command's effects exactly once, chained, and equal to a replay."""
    expected = replay_commands(settings, partitions, accounts)
    ledger = Ledger()
    command_ids: list[str] = []
    accepted: list[int] = []
    cancels: list[int] = []
    amends: list[int] = []
    for partition in range(partitions):
        logged = read_events(settings, partition)
        assert verify_chain((x.envelope.prev_hash, x.data) for x in logged) == [], partition
        seqs: dict[int, int] = {}
        folded = AccountBook(ReferenceData())
        for x in logged:
            event = x.event
            if event.account_id > 0:
                seqs[event.account_id] = seqs.get(event.account_id, 0) + 1
                assert x.envelope.seq == seqs[event.account_id], "seq gap or repeat"
            ledger.apply(event)
            folded.apply(event)
            command_ids.append(event.command_id)
            if isinstance(event, OrderAccepted):
                accepted.append(event.order_id)
            elif isinstance(event, CancelRequested):
                cancels.append(event.order_id)
            elif isinstance(event, OrderAmended):
                amends.append(event.order_id)
        events, fresh = expected[partition]
        assert [x.event for x in logged] == events, f"partition {partition} differs from a replay"
        assert {a.account_id: account_state(a) for a in folded} == {
            a.account_id: account_state(a) for a in fresh
        }
    assert ledger.violations() == []
    # (a cancel-all's events share its id; the replay above holds each event exactly once)
    assert set(command_ids) == {c.command_id for c in commands}, "lost or duplicated"
    new_orders, cancel_requests, amend_requests = [], [], []
    for partition in range(partition_count(settings, settings.topic(ORDER_REQUESTS))):
        for x in read_log(settings, ORDER_REQUESTS, partition):
            if isinstance(x.event, NewOrder):
                new_orders.append(x.event.order_id)
            elif isinstance(x.event, CancelOrderRequest):
                cancel_requests.append(x.event.order_id)
            elif isinstance(x.event, AmendOrder):
                amend_requests.append(x.event.order_id)
    assert sorted(new_orders) == sorted(accepted), "order requests lost or duplicated"
    assert sorted(cancel_requests) == sorted(cancels)
    assert sorted(amend_requests) == sorted(amends)


def workload(accounts: Sequence[int], partitions: int, count: int, seed: int) -> list[Any]:
    """A seeded mix of account commands: deposits, orders (some unaffordable), cancels and
    amends of earlier orders, cancel-alls (chunked, with continuations the processor writes
    back to account-commands after every command sent here), withdrawals approved or
    rejected, and re-sent (duplicate) commands.

    Order ids are known in advance: the commands go to fresh topics in this order, so a
    command's offset is its index among the commands of its partition."""
    rng = random.Random(seed)
    next_offset = [0] * partitions
    placed: list[tuple[int, int]] = []  # (account, order id)
    pending: list[tuple[int, str]] = []  # (account, withdrawal id)
    commands: list[Any] = []
    for i in range(count):
        t = T0 + i * 1_000
        roll = rng.random()
        account = rng.choice(accounts)
        command: Any
        if i < 2 * len(accounts) or roll < 0.25:
            asset, amount = rng.choice((("USD", 10**7), ("BTC", 10**8)))
            command = Deposit(f"c{i}", account, t, asset, rng.randint(1, amount))
        elif roll < 0.7:
            if rng.random() < 0.4:  # the first account gathers orders: its cancel-alls chunk
                account = accounts[0]
            side = rng.choice((Side.BUY, Side.SELL))
            price, qty = rng.randint(90, 110), rng.randint(1, 300)
            command = PlaceOrder(f"c{i}", account, t, BTC_USD, side, OrderKind.GTC, price, qty)
            partition = account_partition(account, partitions)
            placed.append((account, order_id(partition, next_offset[partition])))
        elif roll < 0.76 and placed:
            account, order = placed[rng.randrange(len(placed))]
            command = CancelOrder(f"c{i}", account, t, order)
        elif roll < 0.79 and placed:
            account, order = placed[rng.randrange(len(placed))]
            price, qty = rng.choice(((rng.randint(90, 115), 0), (0, rng.randint(1, 400))))
            command = ModifyOrder(f"c{i}", account, t, order, price, qty)
        elif roll < 0.8:
            if account == accounts[0] and i < count // 2:  # let its orders gather first
                account = accounts[1]
            command = CancelAllOrders(f"c{i}", account, t, rng.choice((0, BTC_USD)))
        elif roll < 0.88:
            command = RequestWithdrawal(f"c{i}", account, t, "USD", rng.randint(1, 10**6))
            pending.append((account, command.command_id))
        elif roll < 0.95 and pending:
            account, withdrawal = pending.pop(rng.randrange(len(pending)))
            decide = rng.choice((ApproveWithdrawal, RejectWithdrawal))
            command = decide(f"c{i}", account, t, withdrawal)
        else:
            command = commands[rng.randrange(len(commands))]  # a re-sent command
            account = command.account_id
        commands.append(command)
        next_offset[account_partition(account, partitions)] += 1
    return commands
