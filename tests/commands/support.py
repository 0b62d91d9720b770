"""Helpers of the command-side tests: reference data on the log, running stages, reading logs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

from tradex.commands import service
from tradex.commands.client import encode_command
from tradex.commands.processor import AccountProcessor
from tradex.commands.reference_processor import entity_key
from tradex.commands.reference_service import build as build_reference
from tradex.commands.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    REFERENCE_COMMANDS,
    SETTLEMENTS,
    account_key,
    ensure_account_topics,
)
from tradex.domain import (
    AccountBook,
    CreateAsset,
    CreateInstrument,
    InstrumentKind,
    OpenAccount,
    ReferenceData,
    RegisterUser,
)
from tradex.domain.ids import order_id
from tradex.infra.kafka import produce_sync, read_partition
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.infra.stage import StageStats
from tradex.schemas.codec import Codec, Envelope

T0 = 1_700_000_000_000_000_000
BTC_USD = 1
TICK = 1  # 1 cent per lot per tick
LOT = 1_000  # 0.00001 BTC per lot
MAKER_PPM = 1_000
TAKER_PPM = 2_000
IDLE_S = 2.0

CODEC = Codec.offline()


def reference_commands(accounts: Sequence[int]) -> list[Any]:
    commands: list[Any] = [
        CreateAsset("a-btc", T0, "BTC", 8),
        CreateAsset("a-usd", T0, "USD", 2),
        CreateInstrument(
            "i-btc-usd",
            T0,
            BTC_USD,
            "BTC-USD",
            InstrumentKind.SPOT,
            "BTC",
            "USD",
            TICK,
            LOT,
            100,
            500,
            MAKER_PPM,
            TAKER_PPM,
        ),
        RegisterUser("u-7", T0, 7, "alice"),
    ]
    commands += [OpenAccount(f"open-{a}", T0, a, 7) for a in accounts]
    return commands


def reference_table(accounts: Sequence[int]) -> ReferenceData:
    table = ReferenceData()
    for command in reference_commands(accounts):
        table.decide(command)
    return table


def load_reference(settings: Settings, accounts: Sequence[int], partitions: int) -> None:
    """Account topics created; reference data on the log through the reference processor."""
    ensure_account_topics(settings, partitions)
    stage, processor = build_reference(settings, "t")
    produce_sync(
        settings,
        settings.topic(REFERENCE_COMMANDS),
        [(entity_key(c), encode_command(CODEC, c)) for c in reference_commands(accounts)],
    )
    stage.run(idle_s_max=IDLE_S)
    assert processor.decided == len(reference_commands(accounts)), processor.decided


def send(settings: Settings, commands: Sequence[Any], topic: str = ACCOUNT_COMMANDS) -> None:
    produce_sync(
        settings,
        settings.topic(topic),
        [(account_key(c.account_id), encode_command(CODEC, c)) for c in commands],
    )


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
    for message in read_partition(settings, settings.topic(topic), partition):
        data = message.value() or b""
        envelope, event = CODEC.decode_domain(data)
        out.append(Logged(message.offset() or 0, envelope, event, data, message.key() or b""))
    return out


def read_events(settings: Settings, partition: int) -> list[Logged]:
    return read_log(settings, ACCOUNT_EVENTS, partition)


def replay_commands(
    settings: Settings, partitions: int, accounts: Sequence[int]
) -> dict[int, list[Any]]:
    """A fresh decision of every command on ``account-commands`` with the domain alone:
    the events each partition should hold (commands only; no settlements)."""
    expected: dict[int, list[Any]] = {}
    for partition in range(partitions):
        book = AccountBook(reference_table(accounts))
        events: list[Any] = []
        for message in read_partition(settings, settings.topic(ACCOUNT_COMMANDS), partition):
            _envelope, command = CODEC.decode_domain(message.value() or b"")
            decision = book.handle(command, order_id(partition, message.offset() or 0))
            if not decision.duplicate:
                events += decision.events
        expected[partition] = events
    return expected
