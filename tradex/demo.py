"""`tradex demo`: the main job — a small exchange running end to end on the local stack.

It brings the stack up, starts the three stages as separate processes (reference
processor, account processor, matching engine), lays down reference data through the log,
funds two traders, trades, cancels and withdraws, waits until every fill is settled, and
then audits what the log says:

- balances (a fold of ``account-events``) and the trades (``engine-events``);
- ``tradex audit verify`` (:mod:`tradex.audit.verify`): hash chains, double entry,
  holds, trades against their settlement, fees, and the matching re-run reproducing
  ``engine-events`` and ``settlements`` byte for byte.

Each run uses its own topic prefix (a fresh exchange); ``--prefix`` names one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradex.audit.verify import Report, verify
from tradex.commands.client import CommandClient, encode_command
from tradex.domain import (
    AccountBook,
    CancelOrder,
    CreateAsset,
    CreateInstrument,
    Deposit,
    HoldReleased,
    InstrumentKind,
    OpenAccount,
    OrderKind,
    PlaceOrder,
    ReferenceData,
    RegisterUser,
    RequestWithdrawal,
    Side,
)
from tradex.infra import settings as settings_module
from tradex.infra import stack
from tradex.infra.kafka import produce_sync
from tradex.infra.local_process import StackError
from tradex.infra.settings import Settings
from tradex.log.keys import reference_key
from tradex.log.source import KafkaLog, LogSource
from tradex.log.topics import (
    ACCOUNT_EVENTS,
    ENGINE_EVENTS,
    REFERENCE_COMMANDS,
    REFERENCE_EVENTS,
    ensure_account_topics,
    ensure_reference_topics,
)
from tradex.log.typed import read_typed_topic
from tradex.schemas.codec import Codec
from tradex.schemas.remote import codec_from_settings

# The demo market: BTC-USD, a lot is 0.001 BTC, a tick is 1 cent per lot ($10 per BTC).
BTC_USD = 1
LOT_SATS = 100_000
TICK_CENTS = 1
ALICE, BOB = 101, 102
settle_timeout_s = 90.0
service_start_timeout_s = 60.0
reference_commands_max = 100


def _now_ns() -> int:
    return time.time_ns()  # the API edge: the only clock, stamped into each command


def reference_commands(t0: int) -> list[Any]:
    return [
        CreateAsset("demo-asset-btc", t0, "BTC", 8),
        CreateAsset("demo-asset-usd", t0, "USD", 2),
        CreateInstrument(
            "demo-instrument-1",
            t0,
            BTC_USD,
            "BTC-USD",
            InstrumentKind.SPOT,
            "BTC",
            "USD",
            TICK_CENTS,
            LOT_SATS,
            1_000,  # min notional: $10.00
            1_000,  # price band: 10%
            1_000,  # maker fee: 0.1%
            2_000,  # taker fee: 0.2%
        ),
        RegisterUser("demo-user-1", t0, 1, "alice"),
        RegisterUser("demo-user-2", t0, 2, "bob"),
        OpenAccount("demo-open-101", t0, ALICE, 1),
        OpenAccount("demo-open-102", t0, BOB, 2),
    ]


def start_services(settings: Settings, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """The three stages as separate processes (logs in ``log_dir``)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix)
    processes = []
    for name, words in (
        ("reference", ["run", "reference", "--instance", "demo"]),
        ("accounts", ["run", "accounts", "--instance", "demo"]),
        ("matcher", ["run", "matcher", "--instance", "demo"]),
    ):
        log_file = (log_dir / f"{settings.topic_prefix}{name}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "tradex.cli", *words],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        )
    return processes


def stop_services(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load_reference(settings: Settings, log: LogSource, codec: Codec, t0: int) -> None:
    commands = reference_commands(t0)
    assert len(commands) <= reference_commands_max
    produce_sync(
        settings,
        settings.topic(REFERENCE_COMMANDS),
        [(reference_key(c), encode_command(codec, c)) for c in commands],
    )
    deadline = time.monotonic() + service_start_timeout_s
    while time.monotonic() < deadline:
        seen = sum(1 for _ in log.read(REFERENCE_EVENTS, 0))
        if seen >= len(commands):
            return
        time.sleep(0.2)
    raise TimeoutError("the reference processor did not decide the reference commands")


def trade(settings: Settings, log: LogSource, codec: Codec) -> list[tuple[str, str]]:
    """The trading session; returns (command, outcome) lines for the report."""
    client = CommandClient(settings, codec, name=f"{settings.topic_prefix}demo")
    lines = []
    try:
        t = _now_ns()
        script: list[Any] = [
            Deposit("demo-dep-alice", ALICE, t, "USD", 100_000_000),  # $1,000,000.00
            Deposit("demo-dep-bob", BOB, t, "BTC", 1_000_000_000),  # 10 BTC
            PlaceOrder("demo-bob-s1", BOB, t, BTC_USD, Side.SELL, OrderKind.GTC, 6_000, 5),
            PlaceOrder("demo-bob-s2", BOB, t, BTC_USD, Side.SELL, OrderKind.GTC, 6_010, 5),
            PlaceOrder("demo-alice-b1", ALICE, t, BTC_USD, Side.BUY, OrderKind.GTC, 6_010, 7),
            PlaceOrder("demo-alice-big", ALICE, t, BTC_USD, Side.BUY, OrderKind.GTC, 6_000, 10**7),
            RequestWithdrawal("demo-wd-alice", ALICE, t, "USD", 5_000_00),
        ]
        order_ids: dict[str, int] = {}
        for command in script:
            outcome = client.execute(command, timeout_s=30)
            names = ", ".join(type(e).__name__ for e in outcome.events)
            lines.append((command.command_id, names))
            for event in outcome.events:
                if type(event).__name__ == "OrderAccepted":
                    order_ids[command.command_id] = event.order_id
        # bob's second order rests with 3 lots after alice's buy: cancel it.
        wait_for_fills(log, codec, expected_ends=2)
        cancel = CancelOrder("demo-bob-cancel", BOB, _now_ns(), order_ids["demo-bob-s2"])
        outcome = client.execute(cancel, timeout_s=30)
        lines.append((cancel.command_id, ", ".join(type(e).__name__ for e in outcome.events)))
        wait_for_fills(log, codec, expected_ends=3)
    finally:
        client.close()
    return lines


def wait_for_fills(log: LogSource, codec: Codec, expected_ends: int) -> None:
    """Until ``expected_ends`` orders have ended and released their holds."""
    deadline = time.monotonic() + settle_timeout_s
    while time.monotonic() < deadline:
        ends = sum(
            isinstance(record.checked()[1], HoldReleased)
            for record in read_typed_topic(log, codec, ACCOUNT_EVENTS)
        )
        if ends >= expected_ends:
            return
        time.sleep(0.2)
    raise TimeoutError(f"fewer than {expected_ends} orders ended within {settle_timeout_s} s")


@dataclasses.dataclass
class Audit:
    balances: dict[int, dict[str, tuple[int, int]]]
    trades: list[dict[str, Any]]
    report: Report  # tradex audit verify over the whole log

    @property
    def ok(self) -> bool:
        return self.report.ok


def audit(settings: Settings, log: LogSource, codec: Codec) -> Audit:
    """What the log says (balances, trades) and ``tradex audit verify`` of it."""
    del settings  # the log names everything
    book = AccountBook(ReferenceData())
    for record in read_typed_topic(log, codec, ACCOUNT_EVENTS):
        _envelope, event = record.checked()
        book.apply(event)
    balances = {account.account_id: account.balances() for account in book}
    trades = []
    for partition in range(log.partitions(ENGINE_EVENTS)):
        for logged in log.read(ENGINE_EVENTS, partition):
            decoded = codec.decode(logged.value or b"")  # engine events: records as dicts
            if decoded.subject.endswith(".Trade"):
                trades.append(decoded.record)
    return Audit(balances, trades, verify(log, codec, progress=False))


def _money(amount: int, scale: int) -> str:
    return f"{Decimal(amount).scaleb(-scale):,.{scale}f}"


def print_report(session: list[tuple[str, str]], result: Audit) -> None:
    scales = {"BTC": 8, "USD": 2}
    print("\n== session (command → events)")
    for command_id, events in session:
        print(f"  {command_id:<18} → {events}")
    print("\n== trades (engine-events)")
    for t in result.trades:
        price = Decimal(t["price"] * TICK_CENTS * 100_000_000 // LOT_SATS).scaleb(-2)
        print(
            f"  trade {t['trade_id']}: {t['qty']} lots at {t['price']} ticks (${price:,} per BTC), "
            f"maker {t['maker_account_id']} taker {t['taker_account_id']}"
        )
    print("\n== balances (fold of account-events): available / held")
    names = {ALICE: "alice", BOB: "bob"}
    for account_id, assets in sorted(result.balances.items()):
        for asset, (available, held) in sorted(assets.items()):
            scale = scales.get(asset, 0)
            print(
                f"  {names.get(account_id, account_id)!s:<6} {asset}: "
                f"{_money(available, scale):>18} / {_money(held, scale)}"
            )
    print("\n== audit (tradex audit verify)")
    print(result.report.text())
    print(f"\ntradex demo: {'OK' if result.ok else 'FAILED'}")


def run(settings: Settings, log_dir: Path) -> Audit:
    """Start the stages on ``settings``' prefix, run the session, audit, stop the stages."""
    codec = codec_from_settings(settings)
    ensure_reference_topics(settings)
    ensure_account_topics(settings, settings.topic_partitions)
    processes = start_services(settings, log_dir)
    with KafkaLog(settings) as log:
        try:
            load_reference(settings, log, codec, _now_ns())
            session = trade(settings, log, codec)
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a stage exited early: {process.args!r}")
        finally:
            stop_services(processes)
        result = audit(settings, log, codec)
    print_report(session, result)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex demo", description=__doc__.split("\n")[0])
    parser.add_argument("--prefix", default=None, help="topic prefix (default: a fresh one)")
    args = parser.parse_args(argv)
    settings = settings_module.load()
    try:
        health = stack.up(settings)
    except StackError as exc:
        print(f"tradex demo: {exc}", file=sys.stderr)
        return 1
    print(stack.format_health(health))
    if not all(h.ok for h in health):
        return 1
    prefix = args.prefix or f"demo-{time.strftime('%Y%m%d-%H%M%S')}-"
    settings = dataclasses.replace(settings, topic_prefix=prefix)
    print(f"tradex demo: a fresh exchange on topic prefix {prefix!r}; stage logs in "
          f"{settings.stack_dir / 'logs'}")  # fmt: skip
    result = run(settings, settings.stack_dir / "logs")
    return 0 if result.ok else 1
