"""A bulk load of the ClickHouse read model writes on a thread (one batch in flight): a
failed insert stops the load at the next batch or at its end, and the version keeps the
positions of the batches written whole before it; a resumed load ends where a clean one
does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.projections.chdb_folder import private_folder
from tests.projections.contract import digests, ends
from tests.projections.exchange import Exchange
from tradex.infra.clickhouse import ChdbClickHouse, ClickHouseError
from tradex.infra.settings import Settings
from tradex.projections import admin
from tradex.projections.analytics_model import ClickHouseReadModel
from tradex.schemas.codec import Codec

pytestmark = pytest.mark.integration

CODEC = Codec.offline()


@pytest.fixture
def store(exchange: Exchange, tmp_path: Path) -> Iterator[Settings]:
    yield from private_folder(exchange.settings, tmp_path / "chdb")


def test_a_failed_insert_of_a_bulk_load_stops_it_and_a_resume_ends_clean(
    store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = ClickHouseReadModel
    until = ends(store, cls)
    real = ChdbClickHouse.insert_arrow
    inserts: list[str] = []
    batches_before_failure = 3

    def failing(self: ChdbClickHouse, table: str, data: pa.Table, settings: Any = None) -> None:
        if table.endswith(".log_positions") and len(inserts) == batches_before_failure:
            raise ClickHouseError("the disk is full (a test)")
        real(self, table, data, settings)
        if table.endswith(".log_positions"):
            inserts.append(table)

    monkeypatch.setattr(ChdbClickHouse, "insert_arrow", failing)
    projector = cls(store, 1)
    with pytest.raises(ClickHouseError, match="disk is full"):
        admin.build_version(projector, store, CODEC, until, batch_records=50)
    assert len(inserts) == batches_before_failure
    written = cls(store, 1).positions()
    assert 0 < sum(written.values()) < sum(until.values())
    monkeypatch.setattr(ChdbClickHouse, "insert_arrow", real)
    admin.build_version(cls(store, 1), store, CODEC, until, batch_records=50)
    assert cls(store, 1).positions() == {p: o for p, o in until.items() if o}
    admin.build_version(cls(store, 2), store, CODEC, until)  # clean, in big batches
    assert digests(store, "clickhouse", 1)[1] == digests(store, "clickhouse", 2)[1]
