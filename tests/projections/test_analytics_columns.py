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
    for batch, decoded in column_batches(exchange.settings, cls, 700):
        assert set(decoded.status.tolist()) <= {STATUS_DECODED, STATUS_IGNORED}
        events = row_events(batch, cls)
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
    assert {i: (b.bids, b.asks, b.seq) for i, b in column_books.books().items()} == {
        i: (b.bids, b.asks, b.seq) for i, b in row_books.books().items()
    }
