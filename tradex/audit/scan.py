"""One pass over the log's columns: hash chains checked, the audited values gathered.

    scan = Scan(codec)
    for batch in source.read_columns(starts, ends):   # any LogSource
        scan.feed(batch)
    found = scan.finish()          # Gathered: a table per record type, the chain streams
    found.tables["FillSettled"]["fee"]       # int64, one per FillSettled, in log order
    found.tables["FillSettled"]["g"]         # the record's number in the scan (place(g))

Every record gets a number ``g`` in the order the scan sees it (log order within each
partition). Values are int64; strings and enum symbols are interned (``found.name(id)``,
``found.intern("BUY")``), so the checks (:mod:`.checks_ledger`, :mod:`.checks_trades`)
are numpy over whole columns. Records are decoded in C by the columnar decoder
(:class:`~tradex.schemas.columns.ColumnReader`); a record the decoder does not serve (an
older schema version) is decoded by ``Codec.decode_domain`` and gathered the same way; a
record failing ``validate()`` is gathered *and* reported; an undecodable one is reported.

The hash chain of every chained stream — ``account-events[p]``, ``engine-events[p]``,
``reference-events[p]``, and ``settlements[p]`` per producer — is checked in C
(:mod:`._audit_native`) batch by batch as the records arrive.
"""

from __future__ import annotations

import bisect
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradex.audit import _audit_native as native
from tradex.audit.findings import Finding
from tradex.domain import ACCOUNT_EVENT_TYPES, ENGINE_EVENT_TYPES
from tradex.domain.commands import SETTLEMENT_TYPES
from tradex.domain.reference import REFERENCE_EVENT_TYPES
from tradex.log.batch import RecordBatch
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS, SETTLEMENTS
from tradex.schemas.chain import HASH_SIZE
from tradex.schemas.codec import Codec, CodecError
from tradex.schemas.columns import (
    STATUS_CORRUPT,
    STATUS_FLAGGED,
    STATUS_UNSERVED,
    ColumnReader,
    ColumnSpec,
    Dictionary,
    Enum,
    Strings,
    TypeColumns,
)

AUDITED_TOPICS = (REFERENCE_EVENTS, ACCOUNT_EVENTS, ENGINE_EVENTS, SETTLEMENTS)
HEADER_SIZE = 5  # magic byte + schema id
CHAINS_MAX = 1 << 16  # chained streams in one log (partitions x producers)
PARTITION_KEY_BITS = 12  # partitions < 4,096 (event ids hold 12 bits of partition)
TOPICS_KEY_BITS = 3
POSTINGS = "postings"

# The values gathered per record type (payload fields by name; postings items separately).
FIELDS: dict[str, tuple[str, ...]] = {
    "Deposited": ("account_id", "event_time_ns", "asset", "amount", "actor"),
    "WithdrawalRequested": ("account_id", "event_time_ns", "withdrawal_id", "asset", "amount", "actor"),
    "WithdrawalPaid": ("account_id", "event_time_ns", "withdrawal_id", "asset", "amount", "actor"),
    "WithdrawalReleased": ("account_id", "event_time_ns", "withdrawal_id", "asset", "amount", "actor"),
    "OrderAccepted": (
        "account_id", "event_time_ns", "order_id", "instrument_id", "side", "price", "qty", "tick_size",
        "lot_size", "maker_fee_ppm", "taker_fee_ppm", "hold_asset", "hold_amount",
    ),
    "FillSettled": (
        "account_id", "event_time_ns", "order_id", "trade_id", "instrument_id", "side", "liquidity", "price",
        "qty", "notional", "fee", "fee_micro", "hold_asset", "hold_consumed",
    ),
    "HoldReleased": ("account_id", "event_time_ns", "order_id", "asset", "amount"),
    "OrderAmended": ("account_id", "event_time_ns", "order_id", "hold_asset", "hold_added"),
    "AmendSettled": ("account_id", "event_time_ns", "order_id", "amend_time_ns", "hold_asset",
                     "hold_released"),
    "CommandRejected": ("account_id", "command_type"),
    "Trade": (
        "trade_id", "price", "qty", "taker_side", "maker_order_id", "maker_account_id",
        "taker_order_id", "taker_account_id",
    ),
    "FillLeg": ("account_id", "order_id", "trade_id", "instrument_id", "side", "price", "qty",
                "liquidity"),
    "OrderEnded": ("account_id", "order_id"),
    "AmendConfirmed": ("account_id", "order_id", "amend_time_ns"),
    "UserRegistered": ("user.user_id", "user.roles"),
    "UserRolesChanged": ("user.user_id", "user.roles"),
}  # fmt: skip
WITH_POSTINGS = ("Deposited", "WithdrawalPaid", "FillSettled")
POSTING_FIELDS = ("account_id", "asset", "delta")
# the settlement records (FillLeg, OrderEnded, AmendConfirmed), chained per producer: their
# producer is decoded even if no value of theirs is gathered
PRODUCER_TYPES = frozenset(cls.__name__ for cls in SETTLEMENT_TYPES)
ALL_TYPES: tuple[type, ...] = (
    *REFERENCE_EVENT_TYPES, *ACCOUNT_EVENT_TYPES, *ENGINE_EVENT_TYPES, *SETTLEMENT_TYPES,
)  # fmt: skip


_DECODED = frozenset((*FIELDS, *PRODUCER_TYPES))


def _spec(name: str) -> ColumnSpec:
    wanted = set(FIELDS.get(name, ()))
    if name in WITH_POSTINGS:
        wanted |= {f"{POSTINGS}.{f}" for f in POSTING_FIELDS}
    envelope = {"producer"} if name in PRODUCER_TYPES else set()
    return ColumnSpec(fields=frozenset(wanted), envelope=frozenset(envelope))


@dataclass
class Gathered:
    """What a scan found (see the module doc)."""

    tables: dict[str, dict[str, np.ndarray]]  # type name -> column -> values
    postings: dict[str, np.ndarray]  # g, account_id, asset, delta (in g order)
    names: list[str]  # interned strings
    chains: dict[tuple[str, int, str], np.ndarray]  # (topic, partition, producer) -> g
    heads: dict[tuple[str, int, str], bytes]  # each chain's last record's hash
    broken: set[tuple[str, int, str]]  # the chains with a chain violation
    batches: list[RecordBatch]
    bases: list[int]
    records: int
    found: list[Finding]
    ends: dict[tuple[str, int], int] = field(default_factory=dict)

    def intern_id(self, text: str) -> int:
        """The id of ``text`` (-1: never seen, so no value equals it)."""
        try:
            return self.names.index(text)
        except ValueError:
            return -1

    def name(self, interned: int) -> str:
        return self.names[interned]

    def locate(self, g: int) -> tuple[RecordBatch, int]:
        """The batch and row of record ``g``."""
        assert 0 <= g < self.records, g
        at = bisect.bisect_right(self.bases, g) - 1
        return self.batches[at], g - self.bases[at]

    def place(self, g: int) -> tuple[str, int, int]:
        batch, i = self.locate(g)
        topic, partition = batch.place(i)
        return topic, partition, int(batch.offset[i])

    def positions(self, gs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(partition, offset) of records ``gs``, vectorised."""
        at = np.searchsorted(np.asarray(self.bases, np.int64), gs, side="right") - 1
        partition = np.empty(len(gs), np.int64)
        offset = np.empty(len(gs), np.int64)
        for batch_index in np.unique(at).tolist():
            mine = at == batch_index
            rows = gs[mine] - self.bases[batch_index]
            batch = self.batches[batch_index]
            partition[mine] = batch.partition[rows]
            offset[mine] = batch.offset[rows]
        return partition, offset

    def value(self, g: int) -> bytes:
        batch, i = self.locate(g)
        return batch.value(i) or b""

    def fingerprints(self, gs: np.ndarray) -> Fingerprints:
        """Length, 5-byte header and trailing hash of records ``gs`` (increasing)."""
        n = len(gs)
        out = Fingerprints(np.zeros(n, np.int64), np.zeros((n, HEADER_SIZE), np.uint8),
                           np.zeros((n, HASH_SIZE), np.uint8))  # fmt: skip
        if n == 0:
            return out
        bases = np.asarray(self.bases, np.int64)
        cuts = np.searchsorted(gs, np.append(bases, self.records)).tolist()
        for batch_index in range(len(bases)):
            lo, hi = int(cuts[batch_index]), int(cuts[batch_index + 1])
            if lo == hi:
                continue
            batch = self.batches[batch_index]
            rows = gs[lo:hi] - bases[batch_index]
            fill_fingerprints(batch.values, batch.value_offsets, rows, out, lo)
        return out


@dataclass
class Fingerprints:
    """Per record: length, header and trailing hash. Two records with the same fingerprint,
    each hash matching its content (the chain check), have the same bytes: the hash is
    SHA-256 over everything after the header but itself (:mod:`tradex.schemas.chain`)."""

    length: np.ndarray  # int64
    header: np.ndarray  # uint8 (n, 5)
    tail: np.ndarray  # uint8 (n, 32)

    def __len__(self) -> int:
        return len(self.length)

    def first_difference(self, other: Fingerprints) -> int:
        """The first index where the two differ (the shorter one's length if one is a
        prefix of the other, -1 if equal)."""
        n = min(len(self), len(other))
        same = (
            (self.length[:n] == other.length[:n])
            & (self.header[:n] == other.header[:n]).all(axis=1)
            & (self.tail[:n] == other.tail[:n]).all(axis=1)
        )
        if not same.all():
            return int(np.argmin(same))
        return -1 if len(self) == len(other) else n


def fill_fingerprints(
    values: bytes, value_offsets: np.ndarray, rows: np.ndarray, out: Fingerprints, at: int
) -> None:
    """Fingerprints of records ``rows`` of a concatenation into ``out[at:]``."""
    data = np.frombuffer(values, np.uint8)
    starts, ends = value_offsets[rows], value_offsets[rows + 1]
    lengths = ends - starts
    n = len(rows)
    out.length[at : at + n] = lengths
    whole = lengths >= HEADER_SIZE + HASH_SIZE  # shorter ones: the chain check names them
    if not whole.all():
        starts, ends, place = starts[whole], ends[whole], np.flatnonzero(whole) + at
    else:
        place = np.arange(at, at + n)
    out.header[place] = data[starts[:, None] + np.arange(HEADER_SIZE)]
    out.tail[place] = data[ends[:, None] - HASH_SIZE + np.arange(HASH_SIZE)]


def fingerprints_of(values: list[bytes]) -> Fingerprints:
    """Fingerprints of records given as bytes."""
    lengths = np.fromiter(map(len, values), np.int64, len(values))
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = Fingerprints(np.zeros(len(values), np.int64),
                       np.zeros((len(values), HEADER_SIZE), np.uint8),
                       np.zeros((len(values), HASH_SIZE), np.uint8))  # fmt: skip
    fill_fingerprints(b"".join(values), offsets, np.arange(len(values)), out, 0)
    return out


class _Columns:
    """Growing columns of one record type (arrays per batch, joined at the end)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, values: np.ndarray) -> None:
        self.parts.setdefault(name, []).append(values)

    def joined(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.parts.items()}


class Scan:
    """Feed it the audited topics' batches (module doc); ``finish`` gives the findings."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.reader = ColumnReader(
            codec,
            {cls: _spec(cls.__name__) for cls in ALL_TYPES if cls.__name__ in _DECODED},
            ignored=[cls for cls in ALL_TYPES if cls.__name__ not in _DECODED],
        )
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        self.columns: dict[str, _Columns] = {name: _Columns() for name in FIELDS}
        self.posting_columns = _Columns()
        self.heads = np.zeros((CHAINS_MAX, HASH_SIZE), np.uint8)
        self.started = np.zeros(CHAINS_MAX, np.uint8)
        self.chain_ids: dict[tuple[str, int, str], int] = {}
        self.chain_members: list[list[np.ndarray]] = []
        self.batches: list[RecordBatch] = []
        self.bases: list[int] = []
        self.records = 0
        self.found: list[Finding] = []
        self.hasher = ThreadPoolExecutor(1, "audit-chains")
        self.pending: list[tuple[Future[bytes], int, np.ndarray]] = []
        self.broken_chains: set[int] = set()
        self.chain_starts: dict[tuple[str, int], int] = {}  # place -> first offset held

    # -- strings ----------------------------------------------------------------------------

    def intern(self, text: str) -> int:
        found = self._ids.get(text)
        if found is None:
            found = self._ids[text] = len(self.names)
            self.names.append(text)
        return found

    def _ints(self, column: Any) -> np.ndarray:
        """A column as int64 values (strings and symbols interned)."""
        if isinstance(column, np.ndarray):
            assert column.ndim == 1, column.shape
            return np.asarray(column, np.int64)  # no copy when it is int64 already
        if isinstance(column, Dictionary):
            lut = np.array([self.intern(s) for s in column.values.to_pylist()] or [0], np.int64)
            return lut[column.codes]
        if isinstance(column, Enum):
            lut = np.array([self.intern(s) for s in column.symbols], np.int64)
            return lut[column.codes]
        assert isinstance(column, Strings), type(column)
        return np.array([self.intern(str(s)) for s in column.to_pylist()], np.int64)

    # -- one batch ----------------------------------------------------------------------------

    def feed(self, batch: RecordBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        base = self.records
        self.batches.append(batch)
        self.bases.append(base)
        self.records += n
        decoded = self.reader.decode(batch.values, batch.value_offsets)
        producer = np.full(n, -1, np.int64)  # interned producer of settlement records
        for cls, found in decoded.types.items():
            name = cls.__name__
            if name in PRODUCER_TYPES:
                producer[found.rows] = self._ints(found["envelope.producer"])
            if name in self.columns:
                self._gather(name, found, base)
        status = decoded.status
        for i in np.flatnonzero(status == STATUS_FLAGGED).tolist():
            self._invalid(batch, base, i)
        for i in np.flatnonzero((status == STATUS_UNSERVED) | (status == STATUS_CORRUPT)).tolist():
            producer[i] = self._decode_one(batch, base, i)
        self._chains(batch, base, producer)

    def _gather(self, name: str, found: TypeColumns, base: int) -> None:
        table = self.columns[name]
        table.add("g", found.rows + np.int64(base))
        for field_name in FIELDS[name]:
            table.add(field_name, self._ints(found[field_name]))
        if name in WITH_POSTINGS:
            items = found.items[POSTINGS]
            parent_g = found.rows.astype(np.int64)[items.parent] + base
            self.posting_columns.add("g", parent_g)
            for f in POSTING_FIELDS:
                self.posting_columns.add(f, self._ints(items[f"{POSTINGS}.{f}"]))

    def _invalid(self, batch: RecordBatch, base: int, i: int) -> None:
        """A record the columns hold that fails its type's ``validate()``: reported."""
        try:
            self.codec.decode_domain(batch.value(i) or b"")
            return  # the C check was stricter than validate(): nothing to report
        except CodecError as exc:
            self._violation("record_invalid", batch, base, i, str(exc))

    def _decode_one(self, batch: RecordBatch, base: int, i: int) -> int:
        """A record the columns do not hold: decoded alone and gathered (reported if it
        does not decode); its interned producer if it is a settlement record, else -1."""
        value = batch.value(i)
        try:
            envelope, obj = self.codec.decode_domain(value or b"")
        except CodecError as exc:
            self._violation("record_undecodable", batch, base, i, str(exc))
            return -1
        name = type(obj).__name__
        if name in self.columns:
            table = self.columns[name]
            table.add("g", np.array([base + i], np.int64))
            for field_name in FIELDS[name]:
                value = obj
                for part in field_name.split("."):  # "user.roles": a nested row's field
                    value = getattr(value, part)
                table.add(field_name, np.array([self._value(value)], np.int64))
            if name in WITH_POSTINGS:
                postings = obj.postings
                self.posting_columns.add("g", np.full(len(postings), base + i, np.int64))
                for f in POSTING_FIELDS:
                    self.posting_columns.add(
                        f, np.array([self._value(getattr(p, f)) for p in postings], np.int64)
                    )
        return self.intern(envelope.producer) if name in PRODUCER_TYPES else -1

    def _value(self, value: Any) -> int:
        return self.intern(str(value)) if isinstance(value, str) else int(value)

    def _violation(self, check: str, batch: RecordBatch, base: int, i: int, text: str) -> None:
        del batch
        self.found.append(Finding(check, base + i, text))

    def _chains(self, batch: RecordBatch, base: int, producer: np.ndarray) -> None:
        """Check the batch's links and hashes against the chains' heads (in C)."""
        key = (batch.topic_index.astype(np.int64) << PARTITION_KEY_BITS) | batch.partition
        key = key | ((producer + 1) << (PARTITION_KEY_BITS + TOPICS_KEY_BITS))
        unique, inverse = np.unique(key, return_inverse=True)
        lut = np.empty(len(unique), np.int32)
        for j, k in enumerate(unique.tolist()):
            topic = batch.topics[(k >> PARTITION_KEY_BITS) & ((1 << TOPICS_KEY_BITS) - 1)]
            partition = k & ((1 << PARTITION_KEY_BITS) - 1)
            producer_id = (k >> (PARTITION_KEY_BITS + TOPICS_KEY_BITS)) - 1
            name = (topic, partition, "" if producer_id < 0 else self.names[producer_id])
            chain = self.chain_ids.get(name)
            if chain is None:
                chain = self.chain_ids[name] = len(self.chain_ids)
                if chain >= CHAINS_MAX:
                    raise RuntimeError(f"more than CHAINS_MAX={CHAINS_MAX} chained streams")
                self.chain_members.append([])
                if self.chain_starts.get((topic, partition), 0) > 0:
                    self.started[chain] = 2  # the log's start is not held: no link to zeros
            lut[j] = chain
        chain_of = lut[inverse.reshape(-1)]
        for j in range(len(unique)):
            rows = np.flatnonzero(chain_of == lut[j])
            if len(rows):
                self.chain_members[lut[j]].append(rows.astype(np.int64) + base)
        # The hashes run on the worker thread (the C call releases the GIL) while this thread
        # decodes the next batch; one worker, so the chains' heads advance in log order.
        status = self.hasher.submit(
            native.chain_check,
            batch.values, batch.value_offsets, chain_of, self.heads, self.started,
        )  # fmt: skip
        self.pending.append((status, base, chain_of))

    def _chain_findings(self) -> None:
        for status_future, base, chain_of in self.pending:
            status = np.frombuffer(status_future.result(), np.uint8)
            self.broken_chains.update(np.unique(chain_of[status != 0]).tolist())
            for i in np.flatnonzero(status).tolist():
                problems = []
                if status[i] & native.CHAIN_BAD_LINK:
                    problems.append("prev_hash does not link to the previous record of its chain")
                if status[i] & native.CHAIN_BAD_HASH:
                    problems.append("hash does not match the record's content")
                if status[i] & native.CHAIN_BAD_ENVELOPE:
                    problems.append("its envelope does not decode")
                if status[i] & native.CHAIN_TOO_SHORT:
                    problems.append("too short to hold a hash")
                self.found.append(Finding("chain", base + i, "; ".join(problems)))
        self.pending.clear()

    def finish(self) -> Gathered:
        self._chain_findings()
        self.hasher.shutdown()
        tables = {name: cols.joined() for name, cols in self.columns.items() if cols.parts}
        for name in FIELDS:
            if name not in tables:
                tables[name] = {f: np.zeros(0, np.int64) for f in ("g", *FIELDS[name])}
        postings = (
            self.posting_columns.joined()
            if self.posting_columns.parts
            else {f: np.zeros(0, np.int64) for f in ("g", *POSTING_FIELDS)}
        )
        order = np.argsort(postings["g"], kind="stable")
        postings = {name: values[order] for name, values in postings.items()}
        chains = {
            name: np.concatenate(self.chain_members[chain])
            for name, chain in self.chain_ids.items()
        }
        heads = {name: self.heads[chain].tobytes() for name, chain in self.chain_ids.items()}
        broken = {name for name, chain in self.chain_ids.items() if chain in self.broken_chains}
        return Gathered(
            tables, postings, self.names, chains, heads, broken, self.batches, self.bases,
            self.records, self.found,
        )  # fmt: skip
