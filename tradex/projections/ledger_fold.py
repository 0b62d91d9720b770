"""The ledger's read-model fold: account and reference events → rows (pure, no I/O).

Per batch it produces what the sink writes, aggregated so the sink makes one bulk call per
table: journal postings and hold changes (append-only, one row each, keyed by log
position), balance deltas per (account, asset) (added to the stored balances), withdrawal
states and reference rows (upserted, last state of the batch wins).

Balances follow the journal (``tradex.domain.events``): for every event and asset,
``Δtotal = Σ own postings`` and ``Δheld = hold delta``, so ``Δavailable = Δtotal − Δheld``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tradex import domain
from tradex.projections.projector import Event

WITHDRAWAL_REQUESTED = "REQUESTED"
WITHDRAWAL_PAID = "PAID"
WITHDRAWAL_RELEASED = "RELEASED"


# A balance change of a batch: [Δavailable, Δheld, partition, offset, event time] — the
# position and time of the newest event that changed it (a list: updated in place, fast).
BalanceDelta = list[int]
AVAILABLE, HELD, PARTITION, OFFSET, TIME_NS = range(5)


@dataclass
class LedgerRows:
    """The rows of one batch."""

    # (event_id, index, account_id, asset, delta, event_time_ns, partition, offset)
    postings: list[tuple[Any, ...]] = field(default_factory=list)
    # (partition, offset, account_id, asset, delta, event_time_ns)
    holds: list[tuple[Any, ...]] = field(default_factory=list)
    balances: dict[tuple[int, str], BalanceDelta] = field(default_factory=dict)
    # withdrawal_id -> row dict (see tradex.projections.postgres)
    withdrawals: dict[str, dict[str, Any]] = field(default_factory=dict)
    assets: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    instruments: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    users: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    accounts: dict[int, tuple[Any, ...]] = field(default_factory=dict)


def _account_event(rows: LedgerRows, event: Event) -> None:
    body = event.body
    time_ns = body.event_time_ns
    partition, offset = event.partition, event.offset
    kind = type(body)
    balances = rows.balances
    if kind in _WITH_POSTINGS:
        event_id = event.envelope.event_id
        append = rows.postings.append
        for index, (account_id, asset, amount) in enumerate(body.postings):
            append((event_id, index, account_id, asset, amount, time_ns, partition, offset))
            key = (account_id, asset)
            delta = balances.get(key)
            if delta is None:
                balances[key] = [amount, 0, partition, offset, time_ns]
            else:  # total; the hold part is moved below
                delta[0] += amount
                _newest(delta, partition, offset, time_ns)
    hold_of = _HOLD_DELTA_OF.get(kind)
    if hold_of is not None:
        asset, amount = hold_of(body)
        if amount:
            account_id = body.account_id
            rows.holds.append((partition, offset, account_id, asset, amount, time_ns))
            key = (account_id, asset)
            delta = balances.get(key)
            if delta is None:
                balances[key] = [-amount, amount, partition, offset, time_ns]
            else:
                delta[0] -= amount
                delta[1] += amount
                _newest(delta, partition, offset, time_ns)
    if kind in _WITHDRAWAL_EVENTS:
        _withdrawal(rows, event)


def _newest(delta: list[Any], partition: int, offset: int, time_ns: int) -> None:
    """Keep the newest change by (event time, partition, offset): the same whichever order
    the partitions were read in (live or rebuilt)."""
    if (time_ns, partition, offset) > (delta[4], delta[2], delta[3]):
        delta[2], delta[3], delta[4] = partition, offset, time_ns


_HOLD_DELTA_OF = domain.events.HOLD_DELTA_OF
_WITH_POSTINGS = frozenset((domain.Deposited, domain.WithdrawalPaid, domain.FillSettled))
_WITHDRAWAL_EVENTS = frozenset(
    (domain.WithdrawalRequested, domain.WithdrawalPaid, domain.WithdrawalReleased)
)


def _withdrawal(rows: LedgerRows, event: Event) -> None:
    body = event.body
    row = rows.withdrawals.get(body.withdrawal_id)
    if row is None:
        row = rows.withdrawals[body.withdrawal_id] = {
            "withdrawal_id": body.withdrawal_id,
            "account_id": body.account_id,
            "asset": body.asset,
            "amount": body.amount,
            "status": None,
            "requested_command_id": None,
            "requested_time_ns": None,
            "requested_by": None,
            "decided_command_id": None,
            "decided_time_ns": None,
            "decided_by": None,
        }
    if isinstance(body, domain.WithdrawalRequested):
        row["status"] = WITHDRAWAL_REQUESTED
        row["requested_command_id"] = body.command_id
        row["requested_time_ns"] = body.event_time_ns
        row["requested_by"] = body.actor  # the maker (0: the system)
    else:
        row["status"] = (
            WITHDRAWAL_PAID if isinstance(body, domain.WithdrawalPaid) else WITHDRAWAL_RELEASED
        )
        row["decided_command_id"] = body.command_id
        row["decided_time_ns"] = body.event_time_ns
        row["decided_by"] = body.actor  # the checker (0: the system)


def _reference_event(rows: LedgerRows, event: Event) -> None:
    body = event.body
    time_ns = body.event_time_ns
    position = (event.partition, event.offset)
    if isinstance(body, domain.AssetCreated):
        asset = body.asset
        rows.assets[asset.code] = (asset.code, asset.scale, time_ns, *position)
    elif isinstance(body, _INSTRUMENT_EVENTS):
        i = body.instrument
        rows.instruments[i.instrument_id] = (
            i.instrument_id, i.symbol, str(i.kind), i.base, i.quote, i.tick_size, i.lot_size,
            i.min_notional, i.price_band_bps, i.maker_fee_ppm, i.taker_fee_ppm, str(i.status),
            time_ns, *position,
        )  # fmt: skip
    elif isinstance(body, domain.UserRegistered):
        user = body.user
        rows.users[user.user_id] = (user.user_id, user.name, user.roles, time_ns, 0, 0, *position)
    elif isinstance(body, domain.UserRolesChanged):
        user = body.user
        earlier = rows.users.get(user.user_id)
        registered = earlier[3] if earlier is not None else 0  # 0: as stored (postgres.py)
        rows.users[user.user_id] = (
            user.user_id, user.name, user.roles, registered, time_ns, body.actor, *position,
        )  # fmt: skip
    elif isinstance(body, domain.AccountOpened):
        account = body.account
        rows.accounts[account.account_id] = (
            account.account_id, account.user_id, time_ns, *position,
        )  # fmt: skip
    else:
        assert isinstance(body, domain.ReferenceCommandRejected), type(body)


_INSTRUMENT_EVENTS = (
    domain.InstrumentCreated,
    domain.InstrumentRulesUpdated,
    domain.InstrumentHalted,
    domain.InstrumentResumed,
)


def fold(events: Sequence[Event], account_topic: str, reference_topic: str) -> LedgerRows:
    """The rows of a batch (events in log order within each partition)."""
    rows = LedgerRows()
    for event in events:
        if event.topic == account_topic:
            _account_event(rows, event)
        elif event.topic == reference_topic:
            _reference_event(rows, event)
    return rows
