"""A market's log written by the real stages: the input of read-side benchmarks.

    counts = write_market_log(settings, events_min=1_000_000, accounts=10_000, seed=1)

Reference data (BTC, ETH, SOL, USD; three instruments quoted in USD) goes through the
reference processor; every account is funded in every asset; then a seeded order flow —
GTC limit orders a few ticks around each instrument's mid (about half of them cross),
IOC takers and cancels of resting orders — is preloaded into ``account-commands`` in
rounds, and ``tradex run accounts`` and ``tradex run matcher`` run as processes until the
pipeline is idle, until ``account-events`` + ``engine-events`` hold at least
``events_min`` records. Everything on the log is what the real processors wrote.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from tradex.commands.client import encode_command
from tradex.commands.reference_service import build as build_reference
from tradex.domain import (
    CancelOrder,
    CreateAsset,
    CreateInstrument,
    Deposit,
    InstrumentKind,
    OpenAccount,
    OrderKind,
    PlaceOrder,
    RegisterUser,
    Side,
)
from tradex.domain.ids import order_id
from tradex.infra.kafka import TopicSpec, ensure_topics, produce_sync
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.log.keys import account_key, account_partition, reference_key
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    ENGINE_EVENTS,
    ORDER_REQUESTS,
    REFERENCE_COMMANDS,
    REFERENCE_GROUP,
    ensure_account_topics,
    ensure_matcher_topics,
)
from tradex.schemas.codec import Codec

T0 = 1_700_000_000_000_000_000
PARTITIONS = 4  # account topics and order-requests
ROUND_ORDERS = 50_000  # orders preloaded per round
ROUNDS_MAX = 200
EVENTS_PER_ORDER_GUESS = 6
STAGE_IDLE_S = 4.0
STAGE_TIMEOUT_S = 900.0
# (instrument id, symbol, base, base scale, mid price in ticks, tick (quote minor units per
# lot per tick), lot (base minor units))
INSTRUMENTS = (
    (1, "BTC-USD", "BTC", 8, 60_000, 1, 1_000),  # lot 0.00001 BTC, tick $0.01 per lot
    (2, "ETH-USD", "ETH", 8, 30_000, 1, 10_000),
    (3, "SOL-USD", "SOL", 8, 15_000, 1, 100_000),
)
FUNDING = 10**14  # minor units of every asset per account (plenty)


def reference_commands(accounts: int) -> list[Any]:
    commands: list[Any] = [CreateAsset("a-usd", T0, "USD", 2)]
    for instrument_id, symbol, base, scale, _mid, tick, lot in INSTRUMENTS:
        commands.append(CreateAsset(f"a-{base}", T0, base, scale))
        commands.append(
            CreateInstrument(
                f"i-{instrument_id}",
                T0,
                instrument_id,
                symbol,
                InstrumentKind.SPOT,
                base,
                "USD",
                tick,
                lot,
                100,
                0,
                1_000,
                2_000,
            )
        )
    commands.append(RegisterUser("u-1", T0, 1, "bench"))
    commands += [OpenAccount(f"open-{a}", T0, a, 1) for a in range(1, accounts + 1)]
    return commands


def funding(accounts: int) -> list[Any]:
    assets = ["USD", *(i[2] for i in INSTRUMENTS)]
    return [
        Deposit(f"fund-{a}-{asset}", a, T0, asset, FUNDING)
        for a in range(1, accounts + 1)
        for asset in assets
    ]


class OrderFlow:
    """Seeded orders; remembers resting candidates (their order ids) to cancel later.

    Order ids are known in advance: the flow goes to fresh topics in order, so a command's
    offset is its index among the commands of its partition (see ``tradex.domain.ids``)."""

    def __init__(self, accounts: int, seed: int, first_offsets: Sequence[int]) -> None:
        self.rng = random.Random(seed)
        self.accounts = accounts
        self.next_offset = list(first_offsets)
        self.placed: list[tuple[int, int]] = []  # (account, order id) of GTC orders
        self.count = 0

    def commands(self, orders: int) -> list[Any]:
        rng, out = self.rng, []
        for _ in range(orders):
            i = self.count
            self.count += 1
            t = T0 + 1_000_000 + i * 10_000  # 100k commands per second of event time
            account = rng.randint(1, self.accounts)
            roll = rng.random()
            command: Any
            if roll < 0.07 and self.placed:
                owner, oid = self.placed.pop(rng.randrange(len(self.placed)))
                account = owner
                command = CancelOrder(f"x{i}", owner, t, oid)
            else:
                instrument_id, _s, _b, _sc, mid, _t, _l = rng.choice(INSTRUMENTS)
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                # buyers a little above, sellers a little below the mid: about half cross
                price = mid + rng.randint(-6, 4) if side == Side.BUY else mid + rng.randint(-4, 6)
                kind = OrderKind.IOC if roll < 0.17 else OrderKind.GTC
                command = PlaceOrder(f"o{i}", account, t, instrument_id, side, kind, price,
                                     rng.randint(1, 20))  # fmt: skip
            partition = account_partition(account, PARTITIONS)
            if isinstance(command, PlaceOrder) and command.kind == OrderKind.GTC:
                self.placed.append((account, order_id(partition, self.next_offset[partition])))
            self.next_offset[partition] += 1
            out.append(command)
        if len(self.placed) > 100_000:
            del self.placed[: len(self.placed) - 100_000]
        return out


def _send(settings: Settings, codec: Codec, commands: Sequence[Any]) -> None:
    produce_sync(
        settings, settings.topic(ACCOUNT_COMMANDS),
        [(account_key(c.account_id), encode_command(codec, c)) for c in commands],
    )  # fmt: skip


def _run_stages(settings: Settings) -> None:
    """The account processor and the matcher as processes, until both are idle."""
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix)
    idle = str(STAGE_IDLE_S)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tradex.cli", "run", *words, "--exit-when-idle", idle],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for words in (
            ("accounts", "--instance", "bench", "--partitions", str(PARTITIONS)),
            ("matcher", "--instance", "bench"),
        )
    ]
    for process in processes:
        _out, err = process.communicate(timeout=STAGE_TIMEOUT_S)
        if process.returncode != 0:
            raise RuntimeError(f"{process.args!r} failed: {err[-2000:]}")


def event_count(settings: Settings) -> dict[str, int]:
    """Offsets used per topic (records plus transaction markers: an upper bound)."""
    with KafkaLog(settings, bulk=False) as log:
        return {topic: sum(log.ends([topic]).values()) for topic in (ACCOUNT_EVENTS, ENGINE_EVENTS)}


def write_market_log(
    settings: Settings, events_min: int, accounts: int, seed: int, say: Any = print
) -> dict[str, int]:
    """Write the log (see the module doc) on ``settings``' prefix; the offsets per topic."""
    codec = Codec.offline()
    ensure_account_topics(settings, PARTITIONS)
    ensure_topics(settings, {ORDER_REQUESTS: TopicSpec(PARTITIONS)})
    ensure_matcher_topics(settings)  # engine-events: as many partitions as order-requests
    stage, processor = build_reference(settings, "bench")
    commands = reference_commands(accounts)
    produce_sync(
        settings, settings.topic(REFERENCE_COMMANDS),
        [(reference_key(c), encode_command(codec, c)) for c in commands],
    )  # fmt: skip
    stage.run(idle_s_max=1.0)
    assert processor.decided == len(commands), "reference data not loaded"
    fund = funding(accounts)
    _send(settings, codec, fund)
    offsets = [0] * PARTITIONS
    for command in fund:
        offsets[account_partition(command.account_id, PARTITIONS)] += 1
    flow = OrderFlow(accounts, seed, offsets)
    counts = event_count(settings)
    for round_index in range(ROUNDS_MAX):
        missing = events_min - sum(counts.values())
        if missing <= 0 and round_index > 0:
            return counts
        orders = min(ROUND_ORDERS, max(1_000, missing // EVENTS_PER_ORDER_GUESS + 1))
        started = time.monotonic()
        _send(settings, codec, flow.commands(orders))
        _run_stages(settings)
        counts = event_count(settings)
        say(f"  log: +{orders:,} orders in {time.monotonic() - started:.1f} s; "
            f"{sum(counts.values()):,} events so far ({counts})")  # fmt: skip
    raise RuntimeError(f"fewer than {events_min} events after {ROUNDS_MAX} rounds")


def wait_reference_applied(settings: Settings, commands: int, limit_s: float) -> None:
    """Until the reference processor has committed ``commands`` reference commands: an
    account processor that sees a deposit before its account is open rejects it."""
    deadline = time.monotonic() + limit_s
    with KafkaLog(settings, bulk=False) as log:
        while log.committed(REFERENCE_GROUP, REFERENCE_COMMANDS).get(0, -1) < commands:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the reference processor did not apply {commands} commands")
            time.sleep(0.1)
