"""A read-model version made by older code (a table without a column this code writes) is
refused with the command that fixes it, not written to until a projector crashes."""

from __future__ import annotations

import asyncio

import pytest

from tradex.infra import postgres
from tradex.infra.settings import Settings
from tradex.projections.catalog import projector_class
from tradex.projections.pg_store import PostgresProjector, column_names
from tradex.projections.projector import SchemaOutdated


def test_column_names_split_at_top_level_commas() -> None:
    body = "a bigint NOT NULL, b numeric(20, 0), c text DEFAULT 'x'"
    assert column_names(body) == ["a", "b", "c"]


@pytest.mark.integration
def test_an_older_version_missing_a_column_is_refused(pg_settings: Settings) -> None:
    cls = projector_class("postgres")
    projector = cls(pg_settings, 1)
    assert isinstance(projector, PostgresProjector)
    projector.open()
    projector.close()

    async def drop_column() -> None:
        conn = await postgres.connect(pg_settings)
        try:
            await conn.execute(f"ALTER TABLE {projector.schema}.withdrawals DROP COLUMN decided_by")
        finally:
            await conn.close()

    asyncio.run(drop_column())
    again = cls(pg_settings, 1)
    with pytest.raises(
        SchemaOutdated, match=r"withdrawals\.decided_by.*projections rebuild postgres"
    ):
        again.open()
    again.close()
