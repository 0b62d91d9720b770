"""The simulated market's reference data and accounts, laid through the real command path.

    market = setup_market(settings, SimConfig(instruments=3, accounts=300))

Instruments come from :data:`INSTRUMENTS` (quoted in USD), traders are one user and one
account each, and two admins fund them and decide withdrawals (maker/checker). Everything
goes through the reference processor and the account processor (the async command client),
with fixed command ids: running it again on the same topic prefix submits only what has no
outcome yet (read from the events topics), so it changes nothing.

The layout is chosen for determinism (docs/sim.md): each instrument's id hashes to its own
``order-requests`` partition (trade ids count per partition), and all accounts trading an
instrument live on one ``account-commands`` partition (the account processor keeps the
order of one partition; across partitions it interleaves as records arrive).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from tradex.commands.async_client import ACCOUNTS, REFERENCE, AsyncCommandClient
from tradex.commands.client import Outcome
from tradex.domain import CreateAsset, CreateInstrument, Deposit, InstrumentKind, RegisterUser
from tradex.domain.reference import OpenAccount, ReferenceCommandRejected
from tradex.domain.types import Reason
from tradex.infra.partitioner import partition_for
from tradex.infra.settings import Settings
from tradex.log.keys import account_partition, instrument_key
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_COMMANDS, ACCOUNT_EVENTS, ORDER_REQUESTS, REFERENCE_EVENTS
from tradex.log.typed import read_typed
from tradex.schemas.remote import codec_from_settings
from tradex.sim.config import ConfigError, SimConfig

QUOTE, QUOTE_SCALE = "USD", 2
INSTRUMENT_ID_BASE = 101  # ids searched upwards from here (away from hand-made instruments)
ACCOUNT_ID_BASE = 100_001  # trader accounts (and their users) searched upwards from here
ID_SEARCH_MAX = 1_000_000  # ids tried per instrument before giving up
ADMINS = (90_001, 90_002)  # (funds accounts, approves withdrawals): maker/checker
MIN_NOTIONAL = 1_000  # $10.00
PRICE_BAND_BPS = 1_000
MAKER_FEE_PPM, TAKER_FEE_PPM = 200, 500
FUNDING_LOTS = 1_000_000  # per account: this many lots of base, and their price at the path's top
SETUP_TIMEOUT_S = 60.0
SETUP_ID_PREFIX = "sim"  # of the setup's command ids and names: one market per topic prefix


class SetupRefused(RuntimeError):
    """The processors refused a setup command (e.g. a prefix holding another market)."""


class InstrumentSpec(NamedTuple):
    symbol: str
    base: str
    base_scale: int
    lot_size: int  # base minor units per lot
    tick_size: int  # quote minor units (cents) per lot per tick
    start_ticks: int  # the fair value's start, in ticks


# A tick is one cent per lot: BTC lot 0.01 BTC at 60,000 ticks = $600/lot = $60,000/BTC.
INSTRUMENTS = (
    InstrumentSpec("BTC-USD", "BTC", 8, 1_000_000, 1, 60_000),
    InstrumentSpec("ETH-USD", "ETH", 8, 10_000_000, 1, 30_000),
    InstrumentSpec("SOL-USD", "SOL", 8, 100_000_000, 1, 15_000),
    InstrumentSpec("XRP-USD", "XRP", 6, 100_000_000, 1, 6_000),
    InstrumentSpec("LTC-USD", "LTC", 8, 100_000_000, 1, 8_000),
    InstrumentSpec("ADA-USD", "ADA", 6, 100_000_000, 1, 4_500),
    InstrumentSpec("DOT-USD", "DOT", 8, 1_000_000_000, 1, 7_000),
    InstrumentSpec("LINK-USD", "LINK", 8, 1_000_000_000, 1, 15_000),
)


@dataclass(frozen=True)
class SimInstrument:
    index: int  # 0.. in the config
    spec: InstrumentSpec
    instrument_id: int
    account_partition: int  # of account-commands: every account below lives there
    accounts: tuple[int, ...]  # trader account ids; user id = account id


@dataclass(frozen=True)
class Market:
    instruments: tuple[SimInstrument, ...]
    admins: tuple[int, int]
    account_partitions: int
    order_partitions: int

    def funding(self, instrument: SimInstrument) -> dict[str, int]:
        """What each account of ``instrument`` is given, per asset (minor units)."""
        spec = instrument.spec
        ceiling = spec.start_ticks * 2  # the fair value's top (fair_value.PathParams)
        return {
            spec.base: FUNDING_LOTS * spec.lot_size,
            QUOTE: FUNDING_LOTS * ceiling * spec.tick_size * 2,
        }


def layout(config: SimConfig, account_partitions: int, order_partitions: int) -> Market:
    """Instrument and account ids for ``config`` on topics of these partition counts."""
    config.check()
    if config.instruments > order_partitions:
        raise ConfigError(
            f"{config.instruments} instruments need as many order-requests partitions "
            f"(there are {order_partitions}): each instrument's trade ids count on its own "
            "partition (TRADEX_TOPIC_PARTITIONS)"
        )
    instruments: list[SimInstrument] = []
    used: set[int] = set()
    instrument_id = INSTRUMENT_ID_BASE
    for index in range(config.instruments):
        instrument_id = _next_id(instrument_id, order_partitions, index)
        partition = index % account_partitions
        accounts: list[int] = []
        account = ACCOUNT_ID_BASE
        while len(accounts) < config.accounts_per_instrument:
            account = _next_account(account, account_partitions, partition)
            if account not in used:
                accounts.append(account)
                used.add(account)
            account += 1
        instruments.append(
            SimInstrument(index, INSTRUMENTS[index], instrument_id, partition, tuple(accounts))
        )
        instrument_id += 1
    ids = [a for i in instruments for a in i.accounts]
    assert len(set(ids)) == len(ids), "an account on two instruments"
    assert not set(ids) & set(ADMINS)
    return Market(tuple(instruments), ADMINS, account_partitions, order_partitions)


def _next_id(start: int, partitions: int, wanted: int) -> int:
    for candidate in range(start, start + ID_SEARCH_MAX):
        if partition_for(instrument_key(candidate), partitions) == wanted:
            return candidate
    raise AssertionError(f"no instrument id on partition {wanted} in {ID_SEARCH_MAX} tries")


def _next_account(start: int, partitions: int, wanted: int) -> int:
    for candidate in range(start, start + ID_SEARCH_MAX):
        if account_partition(candidate, partitions) == wanted:
            return candidate
    raise AssertionError(f"no account id on partition {wanted} in {ID_SEARCH_MAX} tries")


def reference_commands(market: Market, t_ns: int) -> list[Any]:
    """Assets, instruments, admins, traders and their accounts, in dependency order."""
    tag = SETUP_ID_PREFIX
    commands: list[Any] = [CreateAsset(f"{tag}-asset-{QUOTE}", t_ns, QUOTE, QUOTE_SCALE)]
    for item in market.instruments:
        s = item.spec
        commands.append(CreateAsset(f"{tag}-asset-{s.base}", t_ns, s.base, s.base_scale))
        commands.append(CreateInstrument(
            f"{tag}-instrument-{item.instrument_id}", t_ns, item.instrument_id, s.symbol,
            InstrumentKind.SPOT, s.base, QUOTE, s.tick_size, s.lot_size, MIN_NOTIONAL,
            PRICE_BAND_BPS, MAKER_FEE_PPM, TAKER_FEE_PPM,
        ))  # fmt: skip
    for n, admin in enumerate(market.admins, 1):
        commands.append(RegisterUser(f"{tag}-user-{admin}", t_ns, admin, f"{tag}-admin-{n}",
                                     "admin"))  # fmt: skip
    for item in market.instruments:
        for account in item.accounts:
            commands.append(RegisterUser(f"{tag}-user-{account}", t_ns, account,
                                         f"{tag}-trader-{account}", "trader"))  # fmt: skip
            commands.append(OpenAccount(f"{tag}-open-{account}", t_ns, account, account))
    return commands


def funding_commands(market: Market, t_ns: int) -> list[Deposit]:
    """Each trader's deposits, made by the first admin."""
    out = []
    for item in market.instruments:
        for asset, amount in market.funding(item).items():
            for account in item.accounts:
                out.append(Deposit(f"{SETUP_ID_PREFIX}-fund-{account}-{asset}", account, t_ns,
                                   asset, amount, market.admins[0]))  # fmt: skip
    return out


def _refused(command: Any, outcome: Outcome) -> str | None:
    """Why a setup command failed, or None (an asset that exists already is fine)."""
    for event in outcome.events:
        reason = getattr(event, "reason", None)
        if reason is None:
            continue
        exists = isinstance(event, ReferenceCommandRejected) and reason == Reason.ALREADY_EXISTS
        if exists and isinstance(command, CreateAsset):
            continue
        detail = getattr(event, "detail", "")
        return f"{command.command_id}: {type(event).__name__} {reason} {detail}"
    return None


async def _execute_all(client: AsyncCommandClient, commands: Sequence[Any]) -> None:
    """Submit in order (one producer: the log keeps it), await all, fail on a refusal."""
    tasks = [asyncio.create_task(client.execute(c, SETUP_TIMEOUT_S)) for c in commands]
    outcomes = await asyncio.gather(*tasks)
    problems = [p for c, o in zip(commands, outcomes, strict=True) if (p := _refused(c, o))]
    if problems:
        raise SetupRefused(f"setup refused ({len(problems)}): " + "; ".join(problems[:5]))


def partition_counts(settings: Settings) -> tuple[int, int]:
    """(account-commands, order-requests) partitions; the stages create the topics."""
    with KafkaLog(settings, bulk=False) as log:
        return log.partitions(ACCOUNT_COMMANDS), log.partitions(ORDER_REQUESTS)


def decided(settings: Settings, topic: str, partitions: Iterable[int]) -> set[str]:
    """The setup's command ids that already have events on ``topic`` (one read of each
    partition: cheaper than asking about each duplicate)."""
    codec = codec_from_settings(settings)
    found = set()
    with KafkaLog(settings) as log:
        for partition in partitions:
            for record in read_typed(log, codec, topic, partition):
                command_id = getattr(record.checked()[1], "command_id", "")
                if command_id.startswith(f"{SETUP_ID_PREFIX}-"):
                    found.add(command_id)
    return found


async def setup_market_async(settings: Settings, config: SimConfig) -> Market:
    market = layout(config, *partition_counts(settings))
    t_ns = config.start_ns or time.time_ns()
    done = await asyncio.to_thread(decided, settings, REFERENCE_EVENTS, [0])
    todo = [c for c in reference_commands(market, t_ns) if c.command_id not in done]
    if todo:
        reference = await AsyncCommandClient.open(settings, REFERENCE, name="sim-setup")
        try:
            await _execute_all(reference, todo)
        finally:
            await reference.aclose()
    partitions = sorted({i.account_partition for i in market.instruments})
    done = await asyncio.to_thread(decided, settings, ACCOUNT_EVENTS, partitions)
    funding = [c for c in funding_commands(market, t_ns) if c.command_id not in done]
    if funding:
        accounts = await AsyncCommandClient.open(settings, ACCOUNTS, name="sim-setup")
        try:
            await _execute_all(accounts, funding)
        finally:
            await accounts.aclose()
    return market


def setup_market(settings: Settings, config: SimConfig) -> Market:
    """Create the market of ``config`` on ``settings``' prefix (blocking; idempotent)."""
    return asyncio.run(setup_market_async(settings, config))
