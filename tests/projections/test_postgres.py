"""The ``postgres`` read model on the real PostgreSQL, over a real exchange's log."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import ClassVar

import pytest

from tests.projections.contract import CODEC, ProjectorContract, decoded, run_version
from tests.projections.exchange import Exchange
from tradex.domain import AccountBook, ReferenceData
from tradex.infra import postgres
from tradex.infra.settings import Settings

pytestmark = pytest.mark.integration


async def _fetch(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    conn = await postgres.connect(settings)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def fetch(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    return asyncio.run(_fetch(settings, sql))


class TestPostgresContract(ProjectorContract):
    name: ClassVar[str] = "postgres"

    def isolate(self, settings: Settings, request: pytest.FixtureRequest) -> Settings:
        return dataclasses.replace(settings, postgres_db=request.getfixturevalue("pg_database"))


@pytest.fixture
def pg(exchange: Exchange, pg_database: str) -> Settings:
    return dataclasses.replace(exchange.settings, postgres_db=pg_database)


def test_balances_equal_the_domain_fold_of_account_events(pg: Settings) -> None:
    run_version(pg, "postgres", 1, live=True)
    book = AccountBook(ReferenceData())
    for event in decoded(pg, ("account-events",)):
        book.apply(event.body)
    expected = {
        (account.account_id, asset): pair
        for account in book
        for asset, pair in account.balances().items()
    }
    namespace = f"{pg.topic_prefix.replace('-', '_')}postgres"
    rows = fetch(pg, f"SELECT account_id, asset, available, held FROM {namespace}.balances")
    found = {(a, asset): (available, held) for a, asset, available, held in rows if a > 0}
    assert found == expected
    totals = fetch(
        pg, f"SELECT asset, sum(available + held) FROM {namespace}.balances GROUP BY asset"
    )
    assert {asset: int(total) for asset, total in totals} == {"BTC": 0, "USD": 0}, "double entry"
    assert CODEC  # the shared codec decoded the log above
