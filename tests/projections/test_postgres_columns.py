"""The ``postgres`` read model's columnar path equals its row path (its twin): the same
batches of a whole exchange log applied through both, into two databases, give the same
tables row for row."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.projections.exchange import Exchange, column_batches, row_events
from tradex.infra import postgres
from tradex.infra.settings import Settings
from tradex.log.batch import RecordBatch
from tradex.log.source import Place
from tradex.projections.pg_read import Balance, PostgresReader
from tradex.projections.postgres import PostgresReadModel, PostgresRowReadModel
from tradex.projections.projector import ColumnarBatch
from tradex.schemas.codec import Codec
from tradex.schemas.columns import STATUS_DECODED, STATUS_IGNORED

pytestmark = pytest.mark.integration

CODEC = Codec.offline()


@pytest.fixture
def two_databases(exchange: Exchange) -> Iterator[tuple[Settings, Settings]]:
    names = [f"t_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        asyncio.run(postgres.create_database(exchange.settings, name))
    try:
        yield tuple(dataclasses.replace(exchange.settings, postgres_db=n) for n in names)  # type: ignore[misc]
    finally:
        for name in names:
            asyncio.run(postgres.drop_database(exchange.settings, name))


def _positions(batch: RecordBatch) -> dict[Place, int]:
    moved: dict[Place, int] = {}
    for i in range(len(batch)):
        place = batch.place(i)
        moved[place] = max(moved.get(place, 0), int(batch.offset[i]) + 1)
    return moved


@pytest.mark.parametrize("records_max", [700])
@pytest.mark.parametrize("bulk_load", [False, True], ids=["live", "bulk"])
def test_the_columnar_path_equals_the_row_path(
    exchange: Exchange, two_databases: tuple[Settings, Settings], records_max: int,
    bulk_load: bool,
) -> None:  # fmt: skip
    """``bulk``: the columnar version is filled as a rebuild fills it (pipelined: a batch
    folded while the one before is written; keys of the appended tables and indexes at the
    end; only the orders it stored looked up), the row twin as a live writer."""
    by_columns = PostgresReadModel(two_databases[0], 1)
    by_rows = PostgresRowReadModel(two_databases[1], 1)
    by_columns.bulk_load = bulk_load
    assert by_columns.columnar and not by_rows.columnar
    by_columns.open()
    by_rows.open()
    kinds_seen: set[type] = set()
    try:
        for batch, decoded in column_batches(exchange.settings, PostgresReadModel, records_max):
            assert set(decoded.status.tolist()) <= {STATUS_DECODED, STATUS_IGNORED}
            events = row_events(batch, PostgresReadModel)
            kinds_seen.update(type(e.body) for e in events)
            positions = _positions(batch)
            by_rows.apply(events, positions)
            by_columns.apply_columns(ColumnarBatch(batch, decoded.types), positions)
        by_columns.finish()
        if bulk_load:  # it knew which orders were stored, and straddling orders were merged
            assert by_columns._orders_stored is not None
    finally:
        by_columns.close()
        by_rows.close()
    # the log exercises the hot types and the rare ones
    names = {kind.__name__ for kind in kinds_seen}
    assert {"FillSettled", "Trade", "OrderAccepted", "HoldReleased", "WithdrawalPaid",
            "AccountOpened", "Cancelled", "Rejected", "OrderAmended", "AmendSettled",
            "AmendApplied"} <= names, names  # fmt: skip
    with by_columns.frozen() as columns_view, by_rows.frozen() as rows_view:
        assert columns_view.positions == rows_view.positions
        for table in PostgresReadModel.tables:
            assert columns_view.rows(table.name) == rows_view.rows(table.name), table.name
        assert columns_view.digests() == rows_view.digests()
        assert all(count > 0 for count, _ in rows_view.digests().values())
    assert _keys_and_indexes(two_databases[0]) == _keys_and_indexes(two_databases[1])


def _keys_and_indexes(settings: Settings) -> list[tuple[str, str]]:
    """Every index of the version (primary keys included): table, definition."""

    async def read() -> list[tuple[str, str]]:
        conn = await postgres.connect(settings)
        try:
            rows = await conn.fetch(
                "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname LIKE '%_v1' "
                "ORDER BY 1, 2"
            )
        finally:
            await conn.close()
        return [(row[0], row[1].replace(settings.postgres_db, "")) for row in rows]

    return asyncio.run(read())


def test_a_pipelined_bulk_load_raises_the_error_of_the_batch_in_flight(
    exchange: Exchange, two_databases: tuple[Settings, Settings]
) -> None:
    """A bulk load returns from a batch before it commits: its error is raised by a later
    call, and the version keeps the batches committed before it (rows with positions)."""
    model = PostgresReadModel(two_databases[0], 1)
    model.bulk_load = True
    failing = 2  # the third batch's write fails
    written: list[int] = []
    write_columns = model.write_columns

    async def failing_write(conn: Any, rows: Any) -> None:
        written.append(len(written))
        if len(written) == failing + 1:
            raise RuntimeError("the sink broke")
        await write_columns(conn, rows)

    model.write_columns = failing_write  # type: ignore[method-assign]
    model.open()
    reached: list[dict[Place, int]] = []  # the positions after each batch
    with pytest.raises(RuntimeError, match="the sink broke"):
        try:
            for batch, decoded in column_batches(exchange.settings, PostgresReadModel, 700):
                positions = _positions(batch)
                model.apply_columns(ColumnarBatch(batch, decoded.types), positions)
                reached.append({**(reached[-1] if reached else {}), **positions})
            model.finish()
        finally:
            model.close()
    assert len(reached) > failing  # the failing batch was handed over and returned
    stored = PostgresReadModel(two_databases[0], 1).positions()
    assert stored == reached[failing - 1]


def test_an_amend_settled_moves_held_back_to_available_on_both_paths(
    two_databases: tuple[Settings, Settings],
) -> None:
    """An order amended and its amend confirmed (tests/projections/amends.py) through both
    paths: the same tables; the AmendSettled's release is a hold change (−6,000; none for
    the one releasing 0) and moves held back to available, now and as of any position; the
    order's row names its account and instrument, its terms the placed ones."""
    from tests.projections import amends

    events, batch, positions = amends.as_read(PostgresReadModel)
    by_columns = PostgresReadModel(two_databases[0], 1)
    by_rows = PostgresRowReadModel(two_databases[1], 1)
    for model in (by_columns, by_rows):
        model.open()
        try:
            if model.columnar:
                model.apply_columns(batch, positions)
            else:
                model.apply(events, positions)
            model.make_live()
        finally:
            model.close()
    with by_columns.frozen() as columns_view, by_rows.frozen() as rows_view:
        for table in PostgresReadModel.tables:
            assert columns_view.rows(table.name) == rows_view.rows(table.name), table.name
    first = amends.FIRST_OFFSET
    settled_at = first + amends.AMEND_SETTLED_AT
    for settings in two_databases:
        reader = PostgresReader(settings)

        async def check(reader: PostgresReader = reader) -> None:
            async with reader.connect() as conn:
                holds = await conn.fetch(
                    f"SELECT event_offset, delta FROM {reader.ns}.hold_changes "
                    "WHERE account_id = $1 ORDER BY event_offset", amends.ACCOUNT,
                )  # fmt: skip
                assert [tuple(h) for h in holds] == [
                    (first + 1, 10_000), (first + 2, 5_000), (settled_at, -amends.RELEASED),
                    (first + 5, -9_000),
                ]  # fmt: skip
                now = await reader.balances(conn, amends.ACCOUNT)
                assert now == [Balance("USD", 100_000, 0)]
                for index, pair in enumerate(amends.BALANCES):
                    cut = (amends.PARTITION, first + index + 1)
                    found = await reader.balances_as_of(conn, amends.ACCOUNT, position=cut)
                    assert found == [Balance("USD", *pair)], index
                    by_time = await reader.balances_as_of(
                        conn, amends.ACCOUNT, time_ns=amends.T0 + index
                    )
                    assert by_time == found, index
                order = await reader.order(conn, amends.ORDER)
                assert order is not None
                assert (order["account_id"], order["instrument_id"], order["price"],
                        order["qty"]) == (amends.ACCOUNT, amends.INSTRUMENT, 100, 10)  # fmt: skip
                assert (order["status"], order["released_amount"]) == ("CANCELLED", 9_000)
                assert order["updated_time_ns"] == amends.T0 + 5

        asyncio.run(check())
