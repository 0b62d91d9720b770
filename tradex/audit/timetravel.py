"""Time travel from the log alone (Kafka or an archive, through a LogSource): no read model.

    at = parse_at("2026-12-02T07:00:00Z")          # or "1764658800000000000" (ns), "offset:1500"
    rows = balances(source, codec, account_id=7, at=at)     # [Balance(asset, available, held)]
    lines = statement(source, codec, 7, start_ns, end_ns)   # [StatementLine ...] in log order
    view = book(source, codec, instrument_id=1, position=1200)  # BookView: orders and levels

- **balances** fold the account's partition of ``account-events`` (an account's events all
  live there) up to a log position (``offset:N``: the events below offset N of that
  partition) or an event time (every event at or before it): total = Σ postings, held =
  Σ hold changes, available = total − held — what ``PostgresReader.balances_as_of``
  answers from the read model.
- **statement**: the account's postings with event time in [start, end), in log order,
  each with the account's total balance of that asset after it (``PostgresReader.
  statement``'s rows).
- **book**: the instrument's ``order-requests`` partition re-run through a fresh engine
  up to an input position (the inputs below it), and the book it leaves: resting orders
  and price levels. An id that no ``InstrumentCreated`` names is :class:`UnknownInstrument`
  (its message lists the log's instruments), not an empty book.

Amounts are int64 minor units here; :func:`decimal` gives them with the asset's scale
(from ``reference-events``) at the edge (the CLI's CSV/JSON).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np

from tradex.audit.checks_ledger import _hold_rows
from tradex.audit.rerun import LOGICAL_TOPICS, _items
from tradex.audit.scan import Gathered, Scan
from tradex.audit.verify import event_id_of
from tradex.domain import AssetCreated, InstrumentCreated, InstrumentRulesUpdated
from tradex.infra.partitioner import partition_for
from tradex.log.batch import FLAG_KEY_NULL, FLAG_VALUE_NULL
from tradex.log.keys import account_partition, instrument_key
from tradex.log.source import LogSource
from tradex.log.topics import ACCOUNT_EVENTS, ORDER_REQUESTS, REFERENCE_EVENTS, SETTLEMENTS
from tradex.matching.book import OutputBuffers
from tradex.matching.constants import SIDE_BUY
from tradex.matching.partition import BookConfig, PartitionEngine
from tradex.matching.recovery import REPLAY_BATCH_MAX
from tradex.schemas.codec import Codec, CodecError

TIME_NS_MIN = 10**15  # an integer --at this large is a time in ns, not an offset
LEVELS_SHOWN_MAX = 1_000
INSTRUMENTS_SHOWN_MAX = 20  # instruments an UnknownInstrument's message lists


class Balance(NamedTuple):
    asset: str
    available: int
    held: int


class StatementLine(NamedTuple):
    event_id: str
    partition: int
    offset: int
    event_time_ns: int
    asset: str
    delta: int
    balance_after: int


@dataclass(frozen=True)
class AsOf:
    """A point of the log: an event time (ns, inclusive) or a position (offset, exclusive)."""

    time_ns: int | None = None
    offset: int | None = None

    def __post_init__(self) -> None:
        assert (self.time_ns is None) != (self.offset is None), "exactly one of time, offset"


def parse_at(text: str) -> AsOf:
    """``offset:N`` (or ``@N``): a position; an ISO-8601 time, or integer nanoseconds since
    the epoch: a time. ValueError on anything else."""
    text = text.strip()
    for prefix in ("offset:", "@"):
        if text.startswith(prefix):
            offset = int(text[len(prefix) :])
            if offset < 0:
                raise ValueError(f"{text!r}: an offset is >= 0")
            return AsOf(offset=offset)
    if text.lstrip("-").isdigit():
        value = int(text)
        if value < TIME_NS_MIN:
            raise ValueError(f"{text!r}: a time in ns since the epoch (or offset:N for a position)")
        return AsOf(time_ns=value)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time (ISO 8601, ns) or a position (offset:N)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return AsOf(time_ns=(delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000)


# -- reference data ---------------------------------------------------------------------------


@dataclass
class Reference:
    scales: dict[str, int]  # asset -> scale
    instruments: dict[int, Any]  # instrument id -> the last Instrument row


def reference(source: LogSource, codec: Codec) -> Reference:
    """Asset scales and instruments from ``reference-events``."""
    found = Reference({}, {})
    for partition in range(source.partitions(REFERENCE_EVENTS)):
        for record in source.read(REFERENCE_EVENTS, partition):
            try:
                _envelope, event = codec.decode_domain(record.value or b"")
            except CodecError:
                continue  # the audit's verify reports it
            if isinstance(event, AssetCreated):
                found.scales[event.asset.code] = event.asset.scale
            elif isinstance(event, InstrumentCreated | InstrumentRulesUpdated):
                found.instruments[event.instrument.instrument_id] = event.instrument
    return found


def decimal(amount: int, scale: int | None) -> str:
    """Minor units as a decimal string with the asset's scale (as is if unknown)."""
    if scale is None:
        return str(amount)
    return f"{Decimal(amount).scaleb(-scale):.{scale}f}"


# -- balances and statements ------------------------------------------------------------------


def _account_log(source: LogSource, codec: Codec, account_id: int) -> tuple[Gathered, int]:
    """The scan of the account's partition of ``account-events``, and the partition."""
    if account_id <= 0:
        raise ValueError(f"account {account_id}: user accounts are > 0")
    partition = account_partition(account_id, source.partitions(ACCOUNT_EVENTS))
    low, high = source.watermarks(ACCOUNT_EVENTS, partition)
    scan = Scan(codec)
    place = (ACCOUNT_EVENTS, partition)
    scan.chain_starts[place] = low
    for batch in source.read_columns({place: low}, {place: high}):
        scan.feed(batch)
    return scan.finish(), partition


def _times(found: Gathered) -> tuple[np.ndarray, np.ndarray]:
    """(g, event_time_ns) of every gathered account event, sorted by g."""
    gs, times = [], []
    for table in found.tables.values():
        if "event_time_ns" in table:
            gs.append(table["g"])
            times.append(table["event_time_ns"])
    g = np.concatenate(gs) if gs else np.zeros(0, np.int64)
    t = np.concatenate(times) if times else np.zeros(0, np.int64)
    order = np.argsort(g)
    return g[order], t[order]


def _time_of(found: Gathered, gs: np.ndarray) -> np.ndarray:
    g, t = _times(found)
    at = np.searchsorted(g, gs)
    assert len(gs) == 0 or (g[np.minimum(at, len(g) - 1)] == gs).all(), "an event without time"
    return t[at] if len(gs) else np.zeros(0, np.int64)


def _selected(found: Gathered, gs: np.ndarray, at: AsOf) -> np.ndarray:
    if at.offset is not None:
        return found.positions(gs)[1] < at.offset
    assert at.time_ns is not None
    return _time_of(found, gs) <= at.time_ns


def balances(source: LogSource, codec: Codec, account_id: int, at: AsOf) -> list[Balance]:
    """The account's balances at ``at`` (module doc), by asset."""
    found, _partition = _account_log(source, codec, account_id)
    p = found.postings
    mine = p["account_id"] == account_id
    totals: dict[int, int] = {}
    held: dict[int, int] = {}
    keep = mine.copy()
    keep[mine] = _selected(found, p["g"][mine], at)
    for asset, delta in zip(p["asset"][keep].tolist(), p["delta"][keep].tolist(), strict=True):
        totals[asset] = totals.get(asset, 0) + delta
    holds = _hold_rows(found)
    mine = holds["account_id"] == account_id
    keep = mine.copy()
    keep[mine] = _selected(found, holds["g"][mine], at)
    for asset, delta in zip(
        holds["asset"][keep].tolist(), holds["delta"][keep].tolist(), strict=True
    ):
        held[asset] = held.get(asset, 0) + delta
    rows = [
        Balance(found.name(a), totals.get(a, 0) - held.get(a, 0), held.get(a, 0))
        for a in totals.keys() | held.keys()
    ]
    return sorted(rows)


def statement(
    source: LogSource, codec: Codec, account_id: int, start_ns: int, end_ns: int
) -> list[StatementLine]:
    """The account's postings with event time in [start_ns, end_ns), in log order (module
    doc)."""
    if end_ns < start_ns:
        raise ValueError(f"the statement ends ({end_ns}) before it starts ({start_ns})")
    found, partition = _account_log(source, codec, account_id)
    p = found.postings
    rows = np.flatnonzero(p["account_id"] == account_id)  # g order, then posting order
    times = _time_of(found, p["g"][rows])
    lines = []
    running: dict[int, int] = {}
    offsets = found.positions(p["g"][rows])[1]
    for j, i in enumerate(rows.tolist()):
        if times[j] >= end_ns:
            break
        asset, delta, g = int(p["asset"][i]), int(p["delta"][i]), int(p["g"][i])
        running[asset] = running.get(asset, 0) + delta
        if times[j] >= start_ns:
            lines.append(StatementLine(
                event_id_of(found.value(g)), partition, int(offsets[j]), int(times[j]),
                found.name(asset), delta, running[asset],
            ))  # fmt: skip
    return lines


# -- the book ----------------------------------------------------------------------------------


class Order(NamedTuple):
    order_id: int
    account_id: int
    side: str
    price: int  # ticks
    remaining: int  # lots
    filled: int  # lots


@dataclass
class BookView:
    instrument_id: int
    partition: int  # of order-requests
    position: int  # the inputs below this offset were re-run
    orders: list[Order]
    bids: list[tuple[int, int, int]]  # (price ticks, lots, orders), best first
    asks: list[tuple[int, int, int]]
    state_hash: str  # "": no book (no InstrumentRules of the instrument below ``position``)


class UnknownInstrument(ValueError):
    """:func:`book` of an id that no ``InstrumentCreated`` on ``reference-events`` names: it
    has no book at any position, and an empty view would pass for an empty book."""


def _unknown(instruments: dict[int, Any], named: str) -> UnknownInstrument:
    ids = sorted(instruments)
    shown = ", ".join(f"{i} {instruments[i].symbol}" for i in ids[:INSTRUMENTS_SHOWN_MAX])
    if len(ids) > INSTRUMENTS_SHOWN_MAX:
        shown += f", ... ({len(ids)} in all)"
    return UnknownInstrument(
        f"instrument {named} is not an instrument of this log (no InstrumentCreated "
        f"on reference-events); its instruments: {shown or 'none'}"
    )


def _check_instrument(source: LogSource, codec: Codec, instrument_id: int) -> None:
    """:class:`UnknownInstrument` unless ``reference-events`` creates ``instrument_id``; its
    message lists the log's instruments (id and symbol). A source without that topic (an
    archive of some topics) cannot tell: no error."""
    try:
        instruments = reference(source, codec).instruments
    except RuntimeError:  # "topic ... does not exist" / "is not in the archive"
        return
    if instrument_id not in instruments:
        raise _unknown(instruments, str(instrument_id))


def instrument_id_of(source: LogSource, codec: Codec, named: str) -> int:
    """The id of the instrument ``named`` (its id, or its symbol as ``reference-events``
    last named it, e.g. ``BTC-USD``); :class:`UnknownInstrument` for a symbol the log has no
    instrument of (an unknown id is found by :func:`book`)."""
    if named.isdecimal():
        return int(named)
    instruments = reference(source, codec).instruments
    for instrument_id, instrument in instruments.items():
        if instrument.symbol == named:
            return instrument_id
    raise _unknown(instruments, repr(named))


def book(
    source: LogSource,
    codec: Codec,
    instrument_id: int,
    position: int | None = None,
    config: BookConfig | None = None,
) -> BookView:
    """The instrument's book after the inputs of its ``order-requests`` partition below
    ``position`` (default: all of them), by the engine re-run. :class:`UnknownInstrument` if
    the log has no such instrument; no book at ``position``: an empty view, no hash."""
    config = config or BookConfig()
    partitions = source.partitions(ORDER_REQUESTS)
    partition = partition_for(instrument_key(instrument_id), partitions)
    place = (ORDER_REQUESTS, partition)
    end = source.watermarks(ORDER_REQUESTS, partition)[1]
    position = end if position is None else min(position, end)
    if position < 0:
        raise ValueError("a position is >= 0")
    try:
        settlement_partitions = source.partitions(SETTLEMENTS)
    except Exception:  # the book does not need settlements
        settlement_partitions = 1
    engine = PartitionEngine(
        partition, codec, LOGICAL_TOPICS, max(settlement_partitions, 1),
        OutputBuffers(config.orders_max), config,
    )  # fmt: skip
    if position > 0:
        for batch in source.read_columns({place: 0}, {place: position}, REPLAY_BATCH_MAX):
            engine.apply_columns(
                batch.offset.tolist(),
                _items(batch.keys, batch.key_offsets, batch.flags, FLAG_KEY_NULL),
                _items(batch.values, batch.value_offsets, batch.flags, FLAG_VALUE_NULL),
                lambda i, b=batch: int(b.timestamp_ms[i]),  # type: ignore[misc]
            )
    found = engine.books.get(instrument_id)
    if found is None:  # an unknown id, or a position before the instrument's first rules
        _check_instrument(source, codec, instrument_id)
        return BookView(instrument_id, partition, position, [], [], [], "")
    orders = [
        Order(int(r[0]), int(r[1]), "BUY" if r[2] == SIDE_BUY else "SELL", int(r[3]), int(r[4]),
              int(r[5]))
        for r in found.live_orders()
    ]  # fmt: skip
    levels: dict[tuple[str, int], list[int]] = {}
    for o in orders:
        level = levels.setdefault((o.side, o.price), [0, 0])
        level[0] += o.remaining
        level[1] += 1
    bids = sorted(((p, q, n) for (s, p), (q, n) in levels.items() if s == "BUY"), reverse=True)
    asks = sorted((p, q, n) for (s, p), (q, n) in levels.items() if s == "SELL")
    state_hash = found.state_hash()
    assert state_hash, "a book has a state hash ('' says there is no book)"
    assert len(orders) == sum(n for _p, _q, n in bids + asks), "every order on one level"
    return BookView(instrument_id, partition, position, orders, bids, asks, state_hash)
