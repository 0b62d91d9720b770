"""The ClickHouse read model's columnar fold equals its row fold (its twin) on a whole
exchange log, batch by batch, table by table, row by row."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tests.projections.exchange import Exchange, column_batches, row_events
from tradex.projections.analytics_columns import fold_columns
from tradex.projections.analytics_model import ClickHouseReadModel, fold
from tradex.projections.analytics_tables import SCHEMAS
from tradex.projections.book_state import BookState
from tradex.projections.projector import ColumnarBatch
from tradex.schemas.codec import Codec
from tradex.schemas.columns import STATUS_DECODED, STATUS_IGNORED

pytestmark = pytest.mark.integration

CODEC = Codec.offline()


def _sorted_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)


def test_the_columnar_fold_equals_the_row_fold(exchange: Exchange) -> None:
    cls = ClickHouseReadModel
    row_books, column_books = BookState(), BookState()
    tables_seen: set[str] = set()
    kinds_seen: set[str] = set()
    for batch, decoded in column_batches(exchange.settings, cls, 700):
        assert set(decoded.status.tolist()) <= {STATUS_DECODED, STATUS_IGNORED}
        events = row_events(batch, cls)
        kinds_seen |= {type(e.body).__name__ for e in events}
        by_rows = fold(events, row_books)
        by_columns = fold_columns(ColumnarBatch(batch, decoded.types), column_books)
        assert set(by_columns) == set(by_rows)
        for name, table in by_rows.items():
            found = by_columns[name]
            assert found.schema == table.schema, name
            assert _sorted_rows(found) == _sorted_rows(table), name
            if table.num_rows:
                tables_seen.add(name)
    assert tables_seen == set(SCHEMAS), f"the log fed only {tables_seen}"
    assert {"OrderAmended", "AmendSettled", "AmendApplied"} <= kinds_seen
    assert {i: (b.bids, b.asks, b.seq) for i, b in column_books.books().items()} == {
        i: (b.bids, b.asks, b.seq) for i, b in row_books.books().items()
    }


def test_an_amend_settled_is_an_order_event_releasing_hold_in_both_folds() -> None:
    """The AmendSettled of tests/projections/amends.py: an order_events row with the order's
    bounds after it and hold_delta = −hold_released, the same in both folds."""
    from tests.projections import amends

    events, batch, _positions = amends.as_read(ClickHouseReadModel)
    by_rows = fold(events, BookState())
    by_columns = fold_columns(batch, BookState())
    assert set(by_columns) == set(by_rows)
    for name, table in by_rows.items():
        assert by_columns[name].schema == table.schema, name
        assert _sorted_rows(by_columns[name]) == _sorted_rows(table), name
    found = [r for r in by_rows["order_events"].to_pylist() if r["event_type"] == "AmendSettled"]
    assert [(r["order_id"], r["account_id"], r["price"], r["qty"], r["hold_asset"],
             r["hold_delta"], r["log_offset"]) for r in found] == [
        (amends.ORDER, amends.ACCOUNT, 60, 15, "USD", -amends.RELEASED,
         amends.FIRST_OFFSET + amends.AMEND_SETTLED_AT),
        (amends.ORDER, amends.ACCOUNT, 60, 15, "USD", 0, amends.FIRST_OFFSET + 4),
    ]  # fmt: skip
    holds = by_rows["order_events"].to_pydict()["hold_delta"]
    assert sum(holds) == 0, "the order's hold changes close it"
