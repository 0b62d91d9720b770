"""The deterministic fold of one ``order-requests`` partition: books in, records out.

:class:`PartitionEngine` holds everything the matcher's output depends on — one
:class:`~tradex.matching.book.Book` per instrument with its engine time and L2Delta count
(``book_seq``), the hash-chain tails of its outputs and the trade counter — and turns a run
of input records into the output records, as a pure function of the input sequence (and of
the book dimensions). The service, its recovery
(snapshot + replay) and ``tradex matching verify`` all use it, so they agree byte for byte.

Output order: input order, then the engine's per-instrument ``seq`` inside one input. So
batch boundaries never change the outputs or their order.

Per input record, in order:

- undecodable / wrong type / key not the instrument → a ``DeadLetter`` (unchained);
- an instrument without InstrumentRules yet → ``Rejected`` (UNKNOWN_INSTRUMENT, seq 0) and,
  for a NewOrder, ``OrderEnded`` (REJECTED); the first InstrumentRules creates the book;
- otherwise the kernel's outputs, each to ``engine-events`` on this partition (key:
  instrument, envelope ``seq`` = the instrument's sequence number); each trade also gives a
  ``FillLeg`` per side, each order end an ``OrderEnded``, and each amend the engine applied
  (or refused, the order left as it was) and each self-trade prevention decrement (its
  ``amend_time_ns`` < 0: it answers no amend) an ``AmendConfirmed``, to ``settlements`` (key:
  account), right after the engine event that caused them. All at the input's engine time:
  ``max(the instrument's previous engine time, the request's event_time_ns)``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tradex.domain.commands import AmendConfirmed, FillLeg, OrderEnded, decrement_amend_time
from tradex.domain.engine import ENGINE_EVENT_TYPES, EngineEvent
from tradex.domain.types import EndReason, Liquidity, Side
from tradex.infra.stage import Output
from tradex.log.dead_letters import dead_letter
from tradex.log.ids import EventSource, event_id_base, format_event_id, matcher_event_id
from tradex.log.keys import Routes, instrument_key
from tradex.matching import wire
from tradex.matching.batch import FastFold
from tradex.matching.book import Book, OutputBuffers
from tradex.matching.constants import (
    EV_AMENDED,
    EV_CANCELLED,
    EV_DECREMENTED,
    EV_FILLED,
    EV_REJECTED,
    EV_RESTED,
    ORDERS_MAX_DEFAULT,
    PRICE_LEVELS_MAX_DEFAULT,
    SIDE_BUY,
)
from tradex.matching.dtypes import COMMAND_DTYPE
from tradex.matching.segments import run_book
from tradex.matching.snapshot import SnapshotError
from tradex.schemas.chain import HASH_SIZE, ZERO_HASH
from tradex.schemas.codec import Codec, EnvelopeFields

TRADE_ID_COUNTER_BITS = 40  # trade_id = partition << 40 | n-th trade of the partition
INSTRUMENTS_MAX = 4_096  # books per partition


class InputRecord(NamedTuple):
    """One ``order-requests`` record (from a Kafka message or a test)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def input_record(message: Any) -> InputRecord:
    """From a confluent_kafka Message."""
    _kind, timestamp_ms = message.timestamp()
    return InputRecord(
        message.partition(), message.offset(), message.key(), message.value(), timestamp_ms
    )


@dataclass(frozen=True)
class Topics:
    order_requests: str
    engine_events: str
    settlements: str
    dead_letters: str


@dataclass(frozen=True)
class BookConfig:
    """Book dimensions: part of what the output is a function of (the price window decides
    PRICE_OUT_OF_RANGE rejections), so the service and verify must use the same."""

    orders_max: int = ORDERS_MAX_DEFAULT
    price_levels_max: int = PRICE_LEVELS_MAX_DEFAULT


@dataclass
class EngineStats:
    inputs: int = 0
    dead_letters: int = 0
    engine_events: int = 0
    settlements: int = 0
    trades: int = 0


class _Pending:
    """One book's share of a batch: command rows, the inputs they came from, amend rows."""

    __slots__ = ("amends", "book", "inputs", "rows", "times")

    def __init__(self, book: Book) -> None:
        self.book = book
        self.rows: list[tuple[int, ...]] = []
        self.inputs: list[int] = []  # input index of each row
        self.times: list[int] = []  # engine time of each row
        self.amends: list[int] = []  # rows resolved against the book just before they run


@dataclass
class PartitionEngine:
    partition: int
    codec: Codec
    topics: Topics
    settlement_partitions: int
    out: OutputBuffers
    config: BookConfig = field(default_factory=BookConfig)
    books: dict[int, Book] = field(default_factory=dict)
    next_offset: int = 0  # every input below this offset is folded in
    trades_total: int = 0
    engine_prev: bytes = ZERO_HASH  # tail of the engine-events chain of this partition
    settle_prev: dict[int, bytes] = field(default_factory=dict)  # per settlements partition
    # Per instrument (the keys of ``books``): the engine time of its last request, and how
    # many L2Delta records it has had (the last ``book_seq``).
    engine_times: dict[int, int] = field(default_factory=dict)
    book_seqs: dict[int, int] = field(default_factory=dict)
    stats: EngineStats = field(default_factory=EngineStats)
    # True: the fold with the per-record work in C (batch.FastFold) when the codec has its C
    # programs; False: the Python fold below, its slow, obvious twin (same bytes, tested).
    fast: bool = True
    _routes: Routes = field(init=False, repr=False, compare=False)  # settlements by account

    def __post_init__(self) -> None:
        assert 0 <= self.partition < (1 << 12), "event ids hold 12 bits of partition"
        assert self.settlement_partitions > 0
        assert self.out.orders_max >= self.config.orders_max, "output buffers too small"
        self.producer = f"matcher/{self.partition}"
        self._routes = Routes(self.settlement_partitions)
        # encode-and-append per engine record type (the C codec's, one call per record)
        self._appenders = {cls: self.codec.appender(cls) for cls in ENGINE_EVENT_TYPES}
        self._fast = FastFold.of(self) if self.fast else None

    # --- one run of inputs ---------------------------------------------------------------

    def apply(self, records: Sequence[InputRecord]) -> list[Output]:
        """Fold ``records`` (this partition, increasing offsets) in; return their outputs.

        Engine time: each input of an instrument with a book runs at
        ``max(the instrument's previous engine time, the request's event_time_ns)`` — the
        time of every record it causes and the ``timestamp_ns`` of its kernel row. Inputs
        for an instrument without a book keep the request's time (like their ``seq`` 0,
        they are outside the instrument's stream)."""
        if self._fast is None:
            return self._apply_python(records)
        for rec in records:
            assert rec.partition == self.partition, "a record of another partition"
        return self._fast.apply(
            self,
            [r.offset for r in records],
            [r.key for r in records],
            [r.value for r in records],
            lambda i: records[i].timestamp_ms,
        )

    def apply_columns(
        self,
        offsets: Sequence[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        timestamp_ms: Callable[[int], int],
    ) -> list[Output]:
        """:meth:`apply` of inputs given as columns (the service's: no record tuples);
        ``timestamp_ms(i)`` is asked only for inputs that become dead letters."""
        if self._fast is not None:
            return self._fast.apply(self, offsets, keys, values, timestamp_ms)
        records = [
            InputRecord(self.partition, offset, keys[i], values[i], timestamp_ms(i))
            for i, offset in enumerate(offsets)
        ]
        return self._apply_python(records)

    def count_columns(
        self,
        offsets: Sequence[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        timestamp_ms: Callable[[int], int],
    ) -> int:
        """:meth:`apply_columns` without building the outputs (the fast fold encodes and
        hashes each record, keeping only the chain tails): afterwards the engine is exactly
        as after ``apply_columns``; the number of outputs. For a reader of the chain heads
        only (the audit's matching re-run). Without the fast fold: ``apply_columns``."""
        if self._fast is not None:
            return self._fast.fold(self, offsets, keys, values, timestamp_ms, None)
        return len(self.apply_columns(offsets, keys, values, timestamp_ms))

    def new_book(self, instrument_id: int, time_ns: int) -> Book:
        """The book an instrument's first InstrumentRules creates, its clock at ``time_ns``."""
        assert instrument_id not in self.books
        if len(self.books) >= INSTRUMENTS_MAX:
            raise RuntimeError(f"INSTRUMENTS_MAX={INSTRUMENTS_MAX} books on a partition")
        book = self.books[instrument_id] = Book(
            self.config.orders_max, self.config.price_levels_max
        )
        self.engine_times[instrument_id] = time_ns
        self.book_seqs[instrument_id] = 0
        return book

    def _apply_python(self, records: Sequence[InputRecord]) -> list[Output]:
        """:meth:`apply` record by record in Python: the obvious twin of the fast fold."""
        plans: list[wire.Request | wire.Malformed | None] = []
        times = [0] * len(records)  # engine time per input
        engine_times = self.engine_times
        unknown: set[int] = set()  # inputs rejected for an unknown instrument
        pending: dict[int, _Pending] = {}
        for index, rec in enumerate(records):
            assert rec.partition == self.partition, "a record of another partition"
            assert rec.offset >= self.next_offset, "input offsets must increase"
            self.next_offset = rec.offset + 1
            parsed = wire.parse_request(self.codec, rec.key, rec.value)
            plans.append(parsed)
            if isinstance(parsed, wire.Malformed):
                continue
            instrument_id, time_ns = parsed.instrument_id, parsed.time_ns
            book = self.books.get(instrument_id)
            if book is None:
                if parsed.kind != wire.REQ_RULES:
                    unknown.add(index)
                    times[index] = time_ns
                    continue
                book = self.new_book(instrument_id, time_ns)
            previous = engine_times[instrument_id]
            if time_ns < previous:
                time_ns = previous
            else:
                engine_times[instrument_id] = time_ns
            times[index] = time_ns
            share = pending.get(instrument_id)
            if share is None:
                share = pending[parsed.instrument_id] = _Pending(book)
            if parsed.kind == wire.REQ_AMEND:
                share.amends.append(len(share.rows))
            share.rows.append(parsed.row)
            share.inputs.append(index)
            share.times.append(time_ns)

        produced: list[list[tuple[int, list[int]]]] = [[] for _ in records]
        for share in pending.values():
            cmds = np.array(share.rows, dtype=COMMAND_DTYPE)
            cmds["timestamp_ns"] = share.times  # the kernel runs at engine time
            result = run_book(share.book, cmds, share.amends, self.out)
            items = [(t[0], wire.TAG_TRADE, t) for t in result.trades.tolist()]
            items += [(e[0], wire.TAG_EVENT, e) for e in result.events.tolist()]
            items += [(d[0], wire.TAG_L2, d) for d in result.l2.tolist()]
            items.sort()  # by seq: unique inside a book
            inputs = share.inputs
            for _seq, tag, row in items:
                produced[inputs[row[1]]].append((tag, row))

        outputs: list[Output] = []
        for index, rec in enumerate(records):
            plan = plans[index]
            self.stats.inputs += 1
            if isinstance(plan, wire.Malformed):
                outputs.append(self.dead_letter_output(
                    rec.offset, rec.timestamp_ms, rec.key, rec.value, plan
                ))  # fmt: skip
                self.stats.dead_letters += 1
            elif index in unknown:
                assert plan is not None
                self._unknown_instrument(rec, plan, outputs)
            else:
                assert plan is not None
                self._engine_outputs(rec, plan, produced[index], outputs, times[index])
        return outputs

    # --- encoding ------------------------------------------------------------------------

    def _engine_record(
        self,
        obj: EngineEvent,
        req: wire.Request,
        key: bytes,
        seq: int,
        event_id: str,
        outputs: list[Output],
    ) -> None:
        """Encode ``obj`` (C codec: envelope time = ``obj.event_time_ns``) as the next link
        of this partition's engine-events chain and append it to ``outputs``."""
        self.engine_prev = self._appenders[type(obj)](
            outputs, Output, self.topics.engine_events, key, self.partition, obj,
            self.engine_prev, event_id, req.causation_id, req.correlation_id, self.producer,
            seq, req.trace_parent,
        )  # fmt: skip
        self.stats.engine_events += 1

    def _settlement(
        self,
        obj: FillLeg | OrderEnded | AmendConfirmed,
        req: wire.Request,
        seq: int,
        cause: str,
        event_id: str,
    ) -> Output:
        target, key = self._routes.route(obj.account_id)
        prev = self.settle_prev.get(target, ZERO_HASH)
        fields = EnvelopeFields(event_id, cause, req.correlation_id, self.producer, seq,
                                req.trace_parent)  # fmt: skip
        sealed = self.codec.encode_domain(obj, fields, prev)
        self.settle_prev[target] = sealed.hash
        self.stats.settlements += 1
        return Output(self.topics.settlements, sealed.data, key, target)

    def _engine_outputs(
        self,
        rec: InputRecord,
        req: wire.Request,
        rows: list[tuple[int, list[int]]],
        outputs: list[Output],
        time_ns: int,
    ) -> None:
        """The records one input caused (``rows``: the kernel's, in ``seq`` order), all at
        engine time ``time_ns``."""
        instrument_id = req.instrument_id
        offset, partition = rec.offset, self.partition
        key = instrument_key(instrument_id)
        book_seq = self.book_seqs[instrument_id]
        settle_index = 0
        engine_base = event_id_base(time_ns, EventSource.MATCHER_ENGINE_EVENTS, partition, offset)
        settle_base = event_id_base(time_ns, EventSource.MATCHER_SETTLEMENTS, partition, offset)
        lost_priority = req.kind == wire.REQ_AMEND and any(
            tag == wire.TAG_EVENT and row[2] in (EV_RESTED, EV_FILLED, EV_CANCELLED)
            for tag, row in rows
        )
        record = self._engine_record
        for engine_index, (tag, row) in enumerate(rows):
            seq = row[0]
            assert row[-1] == time_ns, "a kernel output not at its input's engine time"
            eid = format_event_id(engine_base, engine_index)
            if tag == wire.TAG_TRADE:
                self.trades_total += 1
                self.stats.trades += 1
                trade_id = (partition << TRADE_ID_COUNTER_BITS) | self.trades_total
                trade = wire.trade_record(instrument_id, trade_id, row, time_ns)
                record(trade, req, key, seq, eid, outputs)
                taker_side = Side.BUY if row[6] == SIDE_BUY else Side.SELL
                maker_side = Side.SELL if row[6] == SIDE_BUY else Side.BUY
                legs = (
                    (row[4], row[2], maker_side, Liquidity.MAKER),
                    (row[5], row[3], taker_side, Liquidity.TAKER),
                )
                for account_id, order_id, side, liquidity in legs:
                    leg = FillLeg(account_id, order_id, trade_id, instrument_id, side,
                                  row[7], row[8], liquidity, time_ns)  # fmt: skip
                    sid = format_event_id(settle_base, settle_index)
                    settle_index += 1
                    outputs.append(self._settlement(leg, req, seq, eid, sid))
            elif tag == wire.TAG_L2:
                book_seq += 1
                delta = wire.l2_record(instrument_id, row, book_seq, time_ns)
                record(delta, req, key, seq, eid, outputs)
            else:
                amended = lost_priority and row[2] == EV_AMENDED
                event = wire.event_record(instrument_id, row, req, amended, time_ns)
                record(event, req, key, seq, eid, outputs)
                decrement = row[2] == EV_DECREMENTED
                if decrement or (
                    req.kind == wire.REQ_AMEND
                    and row[3] == req.order_id
                    and (
                        row[2] == EV_AMENDED
                        or (row[2] == EV_REJECTED and row[9] in wire.AMEND_LIVE_REJECTIONS)
                    )
                ):
                    # the engine's terms after the amend (applied, or refused with the order
                    # left as it was) or after a self-trade prevention decrement (it answers
                    # no amend): the account releases what they no longer need at once
                    # (docs/ledger.md, "Amend")
                    amend_time_ns = decrement_amend_time(seq) if decrement else req.time_ns
                    confirmed = AmendConfirmed(row[4], row[3], instrument_id, row[6],
                                               row[7] + row[8], amend_time_ns, time_ns)  # fmt: skip
                    sid = format_event_id(settle_base, settle_index)
                    settle_index += 1
                    outputs.append(self._settlement(confirmed, req, seq, eid, sid))
                reason = wire.end_reason(row, req)
                if reason is not None:
                    ended = OrderEnded(row[4], row[3], instrument_id, reason, time_ns)
                    sid = format_event_id(settle_base, settle_index)
                    settle_index += 1
                    outputs.append(self._settlement(ended, req, seq, eid, sid))
        self.book_seqs[instrument_id] = book_seq

    def _unknown_instrument(
        self, rec: InputRecord, req: wire.Request, outputs: list[Output]
    ) -> None:
        eid = matcher_event_id(
            req.time_ns, EventSource.MATCHER_ENGINE_EVENTS, self.partition, rec.offset, 0
        )
        rejected = wire.unknown_instrument_record(req, req.time_ns)
        self._engine_record(rejected, req, instrument_key(req.instrument_id), 0, eid, outputs)
        if req.kind == wire.REQ_NEW and req.order_id > 0:
            ended = OrderEnded(req.account_id, req.order_id, req.instrument_id,
                               EndReason.REJECTED, req.time_ns)  # fmt: skip
            sid = matcher_event_id(
                req.time_ns, EventSource.MATCHER_SETTLEMENTS, self.partition, rec.offset, 0
            )
            outputs.append(self._settlement(ended, req, 0, eid, sid))

    def dead_letter_output(
        self,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        why: wire.Malformed,
    ) -> Output:
        """The dead letter of the input at ``offset`` (unchained)."""
        return dead_letter(
            self.codec, self.topics.dead_letters, self.producer, EventSource.MATCHER_DEAD_LETTERS,
            self.topics.order_requests, self.partition, offset, timestamp_ms, key, value,
            why.reason, why.error,
        )  # fmt: skip

    # --- state as bytes ------------------------------------------------------------------

    def state_bytes(self) -> bytes:
        """Everything the outputs depend on, canonical (books sorted by instrument)."""
        parts = [
            _HEAD.pack(
                STATE_MAGIC, STATE_FORMAT, self.partition, self.next_offset, self.trades_total,
                self.settlement_partitions, self.config.orders_max, self.config.price_levels_max,
                self.engine_prev, len(self.settle_prev), len(self.books),
            )
        ]  # fmt: skip
        for target in sorted(self.settle_prev):
            parts.append(_SETTLE.pack(target, self.settle_prev[target]))
        assert self.engine_times.keys() == self.books.keys(), "a book without its clock"
        assert self.book_seqs.keys() == self.books.keys(), "a book without its book_seq"
        for instrument_id in sorted(self.books):
            blob = self.books[instrument_id].snapshot()
            book_seq = self.book_seqs[instrument_id]
            assert book_seq >= 0
            parts.append(
                _BOOK.pack(instrument_id, self.engine_times[instrument_id], book_seq, len(blob))
            )
            parts.append(blob)
        body = b"".join(parts)
        return body + hashlib.sha256(body).digest()

    def state_hash(self) -> str:
        return hashlib.sha256(self.state_bytes()).hexdigest()

    def restore(self, data: bytes) -> None:
        """Replace the state with ``state_bytes()`` output; SnapshotError (nothing changed)
        if it is corrupt or was made for another partition or book dimensions."""
        if len(data) < _HEAD.size + HASH_SIZE:
            raise SnapshotError("matcher state truncated")
        body, digest = data[:-HASH_SIZE], data[-HASH_SIZE:]
        if hashlib.sha256(body).digest() != digest:
            raise SnapshotError("matcher state corrupt: checksum mismatch")
        (magic, version, partition, next_offset, trades_total, settle_n, orders_max,
         levels_max, engine_prev, n_settle, n_books) = _HEAD.unpack_from(body)  # fmt: skip
        if magic != STATE_MAGIC or version != STATE_FORMAT:
            raise SnapshotError(f"not a matcher state of format {STATE_FORMAT}")
        if partition != self.partition:
            raise SnapshotError(f"state of partition {partition}, not {self.partition}")
        if settle_n != self.settlement_partitions:
            raise SnapshotError(
                f"state made for {settle_n} settlements partitions, not "
                f"{self.settlement_partitions}"
            )
        if (orders_max, levels_max) != (self.config.orders_max, self.config.price_levels_max):
            raise SnapshotError("state made with other book dimensions")
        pos = _HEAD.size
        settle_prev: dict[int, bytes] = {}
        for _ in range(n_settle):
            target, prev = _SETTLE.unpack_from(body, pos)
            pos += _SETTLE.size
            settle_prev[target] = prev
        books: dict[int, Book] = {}
        engine_times: dict[int, int] = {}
        book_seqs: dict[int, int] = {}
        for _ in range(n_books):
            instrument_id, engine_time_ns, book_seq, length = _BOOK.unpack_from(body, pos)
            pos += _BOOK.size
            if book_seq < 0:
                raise SnapshotError(f"matcher state: instrument {instrument_id} book_seq < 0")
            book = Book(orders_max, levels_max)
            book.restore(body[pos : pos + length])
            pos += length
            books[instrument_id] = book
            engine_times[instrument_id] = engine_time_ns
            book_seqs[instrument_id] = book_seq
        if pos != len(body):
            raise SnapshotError("matcher state has trailing bytes")
        self.next_offset, self.trades_total = next_offset, trades_total
        self.engine_prev, self.settle_prev, self.books = engine_prev, settle_prev, books
        self.engine_times, self.book_seqs = engine_times, book_seqs
        assert self.state_bytes() == data, "restored state does not re-encode identically"


STATE_MAGIC = b"TXMATCH\x00"
# 2: each book with its instrument's engine time and book_seq (1: the book alone; refused,
# so a format-1 snapshot means a full replay, never a state without clocks).
STATE_FORMAT = 2
_HEAD = struct.Struct("<8sqqqqqqq32sqq")
_SETTLE = struct.Struct("<q32s")
_BOOK = struct.Struct("<qqqq")  # instrument_id, engine time (ns), book_seq, snapshot length
