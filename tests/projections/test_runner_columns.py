"""The runner's columnar path against its row path, on a log in memory: the same events
reach the projector (as columns, record by record equal), the same records are
dead-lettered with the same reasons and errors, the same are skipped, positions and bounds
alike; a record of an older schema version is decoded into the columns."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
from fastavro import parse_schema, schemaless_writer

from tests.log.memory_log import MemoryLog
from tests.schemas.samples import samples
from tradex import domain
from tradex.domain import engine
from tradex.log.records import LogRecord, Place
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, TOPIC_TYPES
from tradex.projections.projector import ColumnarBatch, Event, Frozen, Projector, Versions
from tradex.projections.runner import DeadLetters, ProjectorRun
from tradex.schemas.codec import Codec, EnvelopeFields
from tradex.schemas.columns import EVERYTHING, ColumnSpec

CODEC = Codec.offline()
TOPICS = (ENGINE_EVENTS, ACCOUNT_EVENTS)
IGNORED = frozenset((engine.RulesApplied, domain.CommandRejected))


class Sink(Projector):
    """Keeps what it is given: events (row path) or each record of the columns."""

    name: ClassVar[str] = "sink"
    topics: ClassVar[tuple[str, ...]] = TOPICS
    ignores: ClassVar[frozenset[type]] = IGNORED
    column_specs: ClassVar[Mapping[type, ColumnSpec]] = {
        cls: EVERYTHING for topic in TOPICS for cls in TOPIC_TYPES[topic] if cls not in IGNORED
    }

    def __init__(self, columnar: bool) -> None:
        self.columnar = columnar  # type: ignore[misc]
        self.events: list[tuple[str, int, int, Any, Any]] = []
        self.moves: list[dict[Place, int]] = []
        self._stored = {}

    def _open(self) -> dict[Place, int]:
        return {}

    def _apply(self, events: Sequence[Event], positions: Mapping[Place, int]) -> None:
        self.events += [(e.topic, e.partition, e.offset, e.envelope, e.body) for e in events]
        self.moves.append(dict(positions))

    def _apply_columns(self, batch: ColumnarBatch, positions: Mapping[Place, int]) -> None:
        for columns in batch.types.values():
            for row, (envelope, body) in zip(columns.rows.tolist(), columns.records(), strict=True):
                topic, partition = batch.records.place(row)
                self.events.append(
                    (topic, partition, int(batch.records.offset[row]), envelope, body)
                )
        self.moves.append(dict(positions))

    def close(self) -> None:
        pass

    @classmethod
    def versions(cls, settings: Any) -> Versions:
        return Versions(1, None)

    def mark_building(self) -> None:
        pass

    def make_live(self) -> None:
        pass

    def drop(self) -> None:
        pass

    def positions(self) -> dict[Place, int]:
        return dict(self._stored)

    def frozen(self) -> Frozen:
        raise NotImplementedError


class Letters(DeadLetters):
    def __init__(self) -> None:
        self.written: list[tuple[LogRecord, str, str]] = []

    def write(self, records: list[tuple[LogRecord, str, str]]) -> None:
        self.written += records


def _old_l2delta() -> bytes:
    """An L2Delta written with the subject's first schema version (no book_seq, no time)."""
    old = CODEC.registry.subjects[CODEC.subject_of("L2Delta")][0]
    record = {
        "envelope": {"event_id": "old", "type": "L2Delta", "event_time_ns": 0,
                     "causation_id": "c", "correlation_id": "k", "trace_parent": "",
                     "producer": "matcher/0", "seq": 4, "prev_hash": bytes(32)},
        "instrument_id": 1, "side": "SELL", "price": 7, "qty": 3, "hash": bytes(32),
    }  # fmt: skip
    buffer = io.BytesIO()
    buffer.write(b"\x00" + old.schema_id.to_bytes(4, "big"))
    schemaless_writer(buffer, parse_schema(json.loads(old.text)), record)
    return buffer.getvalue()


def _log() -> MemoryLog:
    env = EnvelopeFields("0190f0c2-0000-7000-8000-000000000001", "cause", "corr", "m/0", 3)
    by_name = {type(obj).__name__: obj for obj in samples()}

    def data(name: str, **changes: Any) -> bytes:
        return CODEC.encode_domain(by_name[name]._replace(**changes), env).data

    log = MemoryLog()
    engine_values: list[bytes | None] = [
        data("L2Delta"),
        data("Trade"),
        _old_l2delta(),
        data("RulesApplied"),
        b"\x00poison",
        None,
        data("OrderAccepted"),  # an account event on the engine topic
        data("Trade", price=0),  # validate() refuses it
        data("Accepted"),
        data("L2Delta", qty=0, book_seq=2),
    ]
    for i, value in enumerate(engine_values):
        log.append(ENGINE_EVENTS, i % 2, b"1", value, gap=1 if i == 4 else 0)  # type: ignore[arg-type]
    for name in ("OrderAccepted", "FillSettled", "CommandRejected", "Deposited", "HoldReleased"):
        log.append(ACCOUNT_EVENTS, 0, b"2", data(name))
    return log


def _run(
    columnar: bool, until: dict[Place, int] | None = None
) -> tuple[Sink, Letters, ProjectorRun]:
    log = _log()
    sink, letters = Sink(columnar), Letters()
    run = ProjectorRun(sink, log, CODEC, letters, until=until, batch_records=4)
    run.start()
    for _ in range(20):
        run.step(0)
    run.close()
    return sink, letters, run


@pytest.mark.parametrize("bounded", [False, True])
def test_the_columnar_path_gives_what_the_row_path_gives(bounded: bool) -> None:
    until = (
        {(ENGINE_EVENTS, 0): 5, (ENGINE_EVENTS, 1): 4, (ACCOUNT_EVENTS, 0): 3} if bounded else None
    )
    rows, row_letters, row_run = _run(False, until)
    cols, col_letters, col_run = _run(True, until)
    assert sorted(cols.events, key=repr) == sorted(rows.events, key=repr)
    assert [(r.offset, r.partition, why, text) for r, why, text in col_letters.written] == [
        (r.offset, r.partition, why, text) for r, why, text in row_letters.written
    ]
    assert col_run.positions == row_run.positions
    assert (col_run.stats.events, col_run.stats.skipped, col_run.stats.dead_letters) == (
        row_run.stats.events, row_run.stats.skipped, row_run.stats.dead_letters,
    )  # fmt: skip
    reasons = sorted(why for _, why, _ in col_letters.written)
    if not bounded:
        assert reasons == ["empty", "undecodable", "undecodable", "unexpected type"]
        old = [e for e in cols.events if e[3].event_id == "old"]
        assert [e[4] for e in old] == [engine.L2Delta(1, "SELL", 7, 3, 0, 0)], "re-encoded"
        assert col_run.stats.skipped == 2  # RulesApplied, CommandRejected
        assert col_run.stats.last_event_time_ns > 0
    assert all(len(batch) <= 4 for batch in cols.moves)


def test_a_projector_that_neither_decodes_nor_ignores_a_type_is_refused() -> None:
    class Partial(Sink):
        column_specs: ClassVar[Mapping[type, ColumnSpec]] = {engine.Trade: EVERYTHING}

    with pytest.raises(AssertionError, match="neither decoded nor ignored"):
        ProjectorRun(Partial(True), _log(), CODEC, Letters())


def test_a_replayed_prefix_of_columns_is_dropped() -> None:
    sink, _letters, run = _run(True)
    first = len(sink.events)
    sink._stored = dict(run.positions)  # as if applied and stored
    log = _log()
    again = ProjectorRun(sink, log, CODEC, Letters())
    again.positions = {place: 0 for place in run.positions}
    again._tail = log.follow_batches(again.positions)
    again._columns = run._columns
    for _ in range(20):
        again.step(0)
    assert len(sink.events) == first, "records below the stored positions were applied again"
    assert np.array_equal(
        np.array(sorted(sink._stored.values())), np.array(sorted(run.positions.values()))
    )
