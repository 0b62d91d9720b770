"""The fold of a batch with the per-record work in C: :class:`FastFold`.

:class:`~tradex.matching.partition.PartitionEngine` folds a batch of one partition either
record by record in Python (its twin, ``fast=False``) or here, in five steps whose cost is
per batch, not per record, except inside C and the kernel:

1. **decode** (``RequestDecoder``, C): every record the C scan can read (newest schema of
   an order request, ASCII strings, key = its instrument) becomes its command row and a
   meta row; the others — dead letters and old versions — go through
   :func:`tradex.matching.wire.parse_request`, one by one;
2. **route** (numpy, per instrument): a book per instrument (created by the first
   InstrumentRules; inputs before it are UNKNOWN_INSTRUMENT), engine time = the running max
   of request times;
3. **match** (the kernel, per book): :func:`tradex.matching.segments.run_book`, one call
   (an AmendOrder is ``OP_AMEND_KEEP``: the kernel takes its kept fields and side from
   the order, where the Python fold resolves them with ``Book.order`` between calls);
4. **emit** (``Emitter``, C): every output in input order — engine records, FillLegs and
   OrderEnded and AmendConfirmed, hash chains, event ids, trade ids, ``book_seq`` — appended as the stage's
   ``Output`` tuples;
5. the chain tails, counters and book sequences go back to the engine's state.

Everything the C side assumes about the domain (record field orders, dtype columns,
constants) is checked against the Python definitions here, at construction.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tradex.domain.commands import AmendConfirmed, FillLeg, OrderEnded
from tradex.domain.engine import (
    Accepted,
    AmendApplied,
    Cancelled,
    Expired,
    Filled,
    L2Delta,
    Rejected,
    Rested,
    RulesApplied,
    Trade,
)
from tradex.domain.orders import AmendOrder, CancelOrderRequest, InstrumentRules, NewOrder
from tradex.domain.types import EndReason, Liquidity, Reason
from tradex.infra.stage import Output
from tradex.log.ids import OUTPUTS_PER_INPUT_MAX, EventSource, OutputOverflow
from tradex.log.keys import instrument_key
from tradex.matching import constants as k
from tradex.matching import wire
from tradex.matching.dtypes import COMMAND_DTYPE, EVENT_DTYPE, L2_DTYPE, TRADE_DTYPE
from tradex.matching.segments import run_book
from tradex.schemas.bindings import BINDINGS
from tradex.schemas.chain import HASH_SIZE
from tradex.schemas.codec import Codec, Envelope, EnvelopeFields
from tradex.schemas.compile_native import enum_symbols

if TYPE_CHECKING:
    from tradex.matching.partition import PartitionEngine

try:
    from tradex.matching import _matcher_wire as native
except ImportError:  # not built: PartitionEngine keeps its Python fold
    native = None  # type: ignore[assignment]

RECORD_TYPES = (Accepted, Rested, Trade, Filled, Cancelled, Expired, Rejected, AmendApplied,
                L2Delta, RulesApplied, FillLeg, OrderEnded, AmendConfirmed)  # fmt: skip
REQUEST_TYPES: dict[int, Any] = {
    wire.REQ_NEW: NewOrder,
    wire.REQ_CANCEL: CancelOrderRequest,
    wire.REQ_AMEND: AmendOrder,
    wire.REQ_RULES: InstrumentRules,
}


def _check_layouts() -> None:
    """What the C code assumes, against the Python definitions (fails loudly at start)."""
    assert native is not None
    assert tuple(t.__name__ for t in RECORD_TYPES) == native.RECORD_TYPES
    for record in RECORD_TYPES:
        assert native.RECORD_FIELDS[record.__name__] == record._fields, record
    fields = {wire.REQ_NEW: native.NEW_ORDER_FIELDS, wire.REQ_CANCEL: native.CANCEL_FIELDS,
              wire.REQ_AMEND: native.AMEND_FIELDS, wire.REQ_RULES: native.RULES_FIELDS}  # fmt: skip
    for kind, request in REQUEST_TYPES.items():
        assert fields[kind] == request._fields, request
    assert Envelope._fields == native.ENVELOPE_FIELDS
    assert EnvelopeFields._fields == native.ENVELOPE_FIELDS_IN
    assert COMMAND_DTYPE.names == native.CMD_FIELDS
    assert TRADE_DTYPE.names == native.TRADE_FIELDS
    assert EVENT_DTYPE.names == native.EVENT_FIELDS
    assert L2_DTYPE.names == native.L2_FIELDS
    same = {
        "OP_MARKET": k.OP_MARKET, "OP_CANCEL": k.OP_CANCEL, "OP_AMEND": k.OP_AMEND,
        "OP_AMEND_KEEP": k.OP_AMEND_KEEP,
        "OP_RULES": k.OP_RULES, "STP_NONE": k.STP_NONE, "PROTECTION_NONE": k.PROTECTION_NONE,
        "PROTECTION_BAD": wire.PROTECTION_BAD, "SIDE_BUY": k.SIDE_BUY,
        "SIDE_SELL": k.SIDE_SELL, "EV_ACCEPTED": k.EV_ACCEPTED, "EV_RESTED": k.EV_RESTED,
        "EV_FILLED": k.EV_FILLED, "EV_CANCELLED": k.EV_CANCELLED, "EV_EXPIRED": k.EV_EXPIRED,
        "EV_REJECTED": k.EV_REJECTED, "EV_AMENDED": k.EV_AMENDED,
        "EV_DECREMENTED": k.EV_DECREMENTED, "EV_RULES": k.EV_RULES, "REQ_NEW": wire.REQ_NEW,
        "REQ_CANCEL": wire.REQ_CANCEL, "REQ_AMEND": wire.REQ_AMEND, "REQ_RULES": wire.REQ_RULES,
        "SOURCE_ENGINE_EVENTS": EventSource.MATCHER_ENGINE_EVENTS,
        "SOURCE_SETTLEMENTS": EventSource.MATCHER_SETTLEMENTS,
        "OUTPUTS_PER_INPUT_MAX": OUTPUTS_PER_INPUT_MAX,
    }  # fmt: skip
    for name, value in same.items():
        assert getattr(native, name) == value, name


def _symbols(codec: Codec, cls: type) -> dict[str, tuple[str, ...]]:
    subject = codec.subject_of(cls.__name__)
    return enum_symbols(codec.registry.latest(subject).text, BINDINGS[cls.__name__])


def _decoder(codec: Codec) -> Any:
    """The C request decoder of ``codec``'s newest order-request schemas, or None."""
    programs = []
    for kind, cls in REQUEST_TYPES.items():
        found = codec.native_decoder(cls.__name__)
        if found is None:
            return None
        wire_id, program = found
        programs.append((kind, wire_id, program, len(cls._fields)))
    new, rules = _symbols(codec, NewOrder), _symbols(codec, InstrumentRules)
    return native.RequestDecoder(
        tuple(programs),
        tuple(wire.SIDES.get(s, -1) for s in new["side"]),
        tuple(wire.OPS.get(s, 0) for s in new["kind"]),
        tuple(wire.STP_MODES.get(s, -1) for s in new["stp_mode"]),
        tuple(1 if s == "HALTED" else 0 for s in rules["status"]),
    )


def _emitter(engine: PartitionEngine, order_kinds: tuple[str, ...]) -> Any:
    """The C emitter of ``engine``'s outputs, or None."""
    programs = tuple(engine.codec.native_encoder(cls) for cls in RECORD_TYPES)
    if any(p is None for p in programs):
        return None
    codes = range(max(wire.REASONS) + 1)
    assert set(codes) == set(wire.REASONS), "reason codes are 0..n"
    return native.Emitter(
        programs, Output, engine.topics.engine_events, engine.topics.settlements,
        engine.producer, engine.partition, engine.settlement_partitions, OutputOverflow,
        (wire.SIDE_NAMES[k.SIDE_BUY], wire.SIDE_NAMES[k.SIDE_SELL]), order_kinds,
        ("", *(wire.REQUEST_NAMES[r] for r in sorted(REQUEST_TYPES))),
        tuple(wire.reason_of(c) for c in codes), tuple(wire.detail_of(c) for c in codes),
        (str(Liquidity.MAKER), str(Liquidity.TAKER)),
        (str(EndReason.FILLED), str(EndReason.CANCELLED), str(EndReason.EXPIRED),
         str(EndReason.REJECTED)),
        (str(Reason.UNKNOWN_INSTRUMENT), "unknown_instrument", ""),
        tuple(sorted(wire.NOT_ENDING_REJECTIONS)), tuple(sorted(wire.AMEND_LIVE_REJECTIONS)),
    )  # fmt: skip


class FastFold:
    """One partition engine's C decoder and emitter (see the module docstring)."""

    def __init__(self, decoder: Any, emitter: Any, order_kinds: tuple[str, ...]) -> None:
        self.decoder = decoder
        self.emitter = emitter
        self.order_kinds = {symbol: i for i, symbol in enumerate(order_kinds)}

    @classmethod
    def of(cls, engine: PartitionEngine) -> FastFold | None:
        """The fast fold of ``engine``, or None when its codec has no C programs (the C
        codec not built, or ``native=False``) or the extension is not built."""
        if native is None or not engine.codec.native:
            return None
        _check_layouts()
        decoder = _decoder(engine.codec)
        order_kinds = _symbols(engine.codec, NewOrder)["kind"]
        emitter = _emitter(engine, order_kinds)
        if decoder is None or emitter is None:
            return None
        return cls(decoder, emitter, order_kinds)

    def apply(
        self,
        engine: PartitionEngine,
        offsets: Sequence[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        timestamp_ms: Callable[[int], int],
    ) -> list[Output]:
        """Fold inputs (``offsets`` increasing, this partition) into ``engine``; their
        outputs. ``timestamp_ms(i)``: the Kafka timestamp of input i (dead letters)."""
        outputs: list[Output] = []
        self.fold(engine, offsets, keys, values, timestamp_ms, outputs)
        return outputs

    def fold(
        self,
        engine: PartitionEngine,
        offsets: Sequence[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        timestamp_ms: Callable[[int], int],
        outputs: list[Output] | None,
    ) -> int:
        """:meth:`apply`, its outputs appended to ``outputs`` — or, with None, not built at
        all (each record is still encoded and hashed: the engine's chain tails, counters and
        books end exactly as with them). The number of outputs."""
        n = len(values)
        assert len(keys) == n
        assert len(offsets) == n
        if n == 0:
            return 0
        cmds = np.empty((n, native.CMD_W), np.int64)
        meta = np.empty((n, native.META_W), np.int64)
        fallbacks = self.decoder.decode(values, keys, cmds, meta)
        positions = np.asarray(offsets, np.int64)
        assert positions[0] >= engine.next_offset, "input offsets must increase"
        assert n == 1 or bool(np.all(positions[1:] > positions[:-1])), "offsets must increase"
        meta[:, native.M_OFFSET] = positions
        engine.next_offset = int(positions[-1]) + 1
        letters: list[Output] = []
        if fallbacks:
            values = self._python_requests(engine, cmds, meta, keys, values, timestamp_ms, letters)
        books, book_keys, rows = self._match(engine, cmds, meta)
        chained = self._emit(engine, outputs, values, meta, books, book_keys, rows, letters)
        engine.stats.inputs += n
        engine.stats.dead_letters += len(letters)
        return chained + len(letters)

    def _python_requests(
        self,
        engine: PartitionEngine,
        cmds: np.ndarray,
        meta: np.ndarray,
        keys: list[bytes | None],
        values: list[bytes | None],
        timestamp_ms: Callable[[int], int],
        letters: list[Output],
    ) -> list[bytes | None]:
        """The inputs the C decoder left: :func:`wire.parse_request` decides each; a request
        gets its rows, and its envelope strings as the bytes the emitter reads."""
        values = list(values)
        python = np.flatnonzero(meta[:, native.M_STATUS] == native.STATUS_PYTHON).tolist()
        for i in python:
            parsed = wire.parse_request(engine.codec, keys[i], values[i])
            offset = int(meta[i, native.M_OFFSET])
            if isinstance(parsed, wire.Malformed):
                meta[i, native.M_ROUTE] = native.ROUTE_DEAD
                letters.append(engine.dead_letter_output(
                    offset, timestamp_ms(i), keys[i], values[i], parsed
                ))  # fmt: skip
                continue
            cmds[i] = parsed.row
            if parsed.kind == wire.REQ_AMEND:
                cmds[i, 0] = k.OP_AMEND_KEEP  # as the C decoder maps it (op: column 0)
            texts = [t.encode() for t in (parsed.causation_id, parsed.correlation_id,
                                          parsed.trace_parent)]  # fmt: skip
            m = meta[i]
            m[native.M_KIND] = parsed.kind
            m[native.M_INSTRUMENT] = parsed.instrument_id
            m[native.M_TIME] = parsed.time_ns
            m[native.M_ORDER_KIND] = (
                self.order_kinds[parsed.order_kind] if parsed.kind == wire.REQ_NEW else -1
            )
            m[native.M_PRICE] = parsed.price
            m[native.M_ORDER_ID] = parsed.order_id
            m[native.M_ACCOUNT] = parsed.account_id
            at = 0
            for column, text in zip((native.M_EID_AT, native.M_CORR_AT, native.M_TRACE_AT),
                                    texts, strict=True):  # fmt: skip
                m[column] = at
                m[column + 1] = len(text)  # the _N column follows its _AT
                at += len(text)
            values[i] = b"".join(texts)
        return values

    def _match(
        self, engine: PartitionEngine, cmds: np.ndarray, meta: np.ndarray
    ) -> tuple[np.ndarray, list[bytes], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """Route the inputs to their books (engine time, unknown instruments) and run each
        book: the books table, their keys, their output rows."""
        live = np.flatnonzero(meta[:, native.M_ROUTE] != native.ROUTE_DEAD)
        instruments = meta[live, native.M_INSTRUMENT]
        order = np.argsort(instruments, kind="stable")
        ids = instruments[order]
        cuts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), len(ids)]
        books = np.zeros((len(cuts) - 1, native.BOOK_W), np.int64)
        book_keys: list[bytes] = []
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        ends = [0, 0, 0]  # outputs so far: trades, events, l2
        for start, stop in itertools.pairwise(cuts):
            inputs = live[order[start:stop]]  # input indices, increasing (stable sort)
            instrument_id = int(ids[start])
            book = engine.books.get(instrument_id)
            if book is None:
                rules = np.flatnonzero(meta[inputs, native.M_KIND] == wire.REQ_RULES)
                first = int(rules[0]) if rules.shape[0] else len(inputs)
                meta[inputs[:first], native.M_ROUTE] = native.ROUTE_UNKNOWN
                inputs = inputs[first:]
                if inputs.shape[0] == 0:
                    continue
                book = engine.new_book(instrument_id, int(meta[inputs[0], native.M_TIME]))
            times = meta[inputs, native.M_TIME]  # a copy (fancy indexing)
            times[0] = max(int(times[0]), engine.engine_times[instrument_id])
            np.maximum.accumulate(times, out=times)
            engine.engine_times[instrument_id] = int(times[-1])
            book_cmds = cmds[inputs]
            book_cmds[:, native.CMD_FIELDS.index("timestamp_ns")] = times
            out = run_book(book, book_cmds.view(COMMAND_DTYPE)[:, 0], (), engine.out)
            b = len(book_keys)
            meta[inputs, native.M_ROUTE] = native.ROUTE_BOOK
            meta[inputs, native.M_BOOK] = b
            meta[inputs, native.M_ROW] = np.arange(inputs.shape[0])
            meta[inputs, native.M_ENGINE_TIME] = times
            row = books[b]
            row[native.B_INSTRUMENT] = instrument_id
            row[native.B_BOOK_SEQ] = engine.book_seqs[instrument_id]
            for j, (first_col, part) in enumerate(
                ((native.B_T0, out.trades), (native.B_E0, out.events), (native.B_L0, out.l2))
            ):
                row[first_col] = ends[j]
                ends[j] += part.shape[0]
                row[first_col + 1] = ends[j]  # the _1 column follows its _0
            book_keys.append(instrument_key(instrument_id))
            rows.append((out.trades, out.events, out.l2))
        return books[: len(book_keys)], book_keys, rows

    def _emit(
        self,
        engine: PartitionEngine,
        outputs: list[Output] | None,
        values: list[bytes | None],
        meta: np.ndarray,
        books: np.ndarray,
        book_keys: list[bytes],
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        letters: list[Output],
    ) -> int:
        """The batch's records (``outputs``: see :meth:`fold`); how many are chained."""
        widths = (native.TRADE_W, native.EVENT_W, native.L2_W)
        joined = [
            np.concatenate([r[j] for r in rows]) if rows else np.empty((0, widths[j]), np.int64)
            for j in range(3)
        ]
        partitions = engine.settlement_partitions
        engine_prev = bytearray(engine.engine_prev)
        settle_prev = np.zeros((partitions, HASH_SIZE), np.uint8)
        settle_seen = np.zeros(partitions, np.uint8)
        for target, prev in engine.settle_prev.items():
            settle_prev[target] = np.frombuffer(prev, np.uint8)
            settle_seen[target] = 1
        counters = np.zeros(native.K_W, np.int64)
        counters[native.K_TRADES_TOTAL] = engine.trades_total
        self.emitter.emit(
            outputs, values, meta, *joined, books, book_keys, letters, engine_prev,
            settle_prev, settle_seen, counters,
        )  # fmt: skip
        engine.engine_prev = bytes(engine_prev)
        for target in np.flatnonzero(settle_seen).tolist():
            engine.settle_prev[target] = settle_prev[target].tobytes()
        engine.trades_total = int(counters[native.K_TRADES_TOTAL])
        chained = int(counters[native.K_ENGINE_EVENTS]) + int(counters[native.K_SETTLEMENTS])
        engine.stats.engine_events += int(counters[native.K_ENGINE_EVENTS])
        engine.stats.settlements += int(counters[native.K_SETTLEMENTS])
        engine.stats.trades += int(counters[native.K_TRADES])
        for row in books.tolist():
            engine.book_seqs[row[native.B_INSTRUMENT]] = row[native.B_BOOK_SEQ]
        return chained
