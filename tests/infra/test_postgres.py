"""PostgreSQL helpers against the real local server (asyncpg)."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest

from tradex.infra import postgres
from tradex.infra.settings import Settings

pytestmark = pytest.mark.integration


def test_round_trip_in_a_fresh_database(pg_settings: Settings) -> None:
    async def run() -> list[tuple[int, int, str]]:
        conn = await postgres.connect(pg_settings)
        try:
            assert await conn.fetchval("SELECT current_database()") == pg_settings.postgres_db
            await conn.execute(
                "CREATE TABLE balances (account BIGINT PRIMARY KEY, amount BIGINT NOT NULL, asset TEXT)"
            )
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO balances VALUES ($1, $2, $3)",
                    [(1, 2**62, "BTC"), (2, -5, "USD")],
                )
            rows = await conn.fetch("SELECT account, amount, asset FROM balances ORDER BY account")
        finally:
            await conn.close()
        return [(r["account"], r["amount"], r["asset"]) for r in rows]

    assert asyncio.run(run()) == [(1, 2**62, "BTC"), (2, -5, "USD")]


def test_a_rolled_back_transaction_leaves_nothing(pg_settings: Settings) -> None:
    async def run() -> int:
        conn = await postgres.connect(pg_settings)
        try:
            await conn.execute("CREATE TABLE t (x BIGINT)")
            with pytest.raises(asyncpg.UniqueViolationError):
                async with conn.transaction():
                    await conn.execute("INSERT INTO t VALUES (1)")
                    await conn.execute("CREATE UNIQUE INDEX ON t (x)")
                    await conn.execute("INSERT INTO t VALUES (1)")
            count: int = await conn.fetchval("SELECT count(*) FROM t")
        finally:
            await conn.close()
        return count

    assert asyncio.run(run()) == 0


def test_fresh_databases_are_isolated(stack: Settings, pg_database: str) -> None:
    async def tables(database: str) -> list[str]:
        conn = await postgres.connect(stack, database)
        try:
            rows = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        finally:
            await conn.close()
        return [r["tablename"] for r in rows]

    assert asyncio.run(tables(pg_database)) == []


def test_dsn_quotes_credentials() -> None:
    settings = dataclasses.replace(
        _plain_settings(), postgres_user="u@x", postgres_password="p:/ss", postgres_db="db"
    )
    assert postgres.dsn(settings) == "postgresql://u%40x:p%3A%2Fss@127.0.0.1:15432/db"
    assert postgres.dsn(settings, "other").endswith("/other")


def test_bad_database_names_are_refused_before_any_sql() -> None:
    for name in ("x; DROP DATABASE tradex", "Upper", "", "1abc", "a" * 64):
        with pytest.raises(ValueError, match="identifier"):
            postgres.check_identifier(name)


def test_wrong_password_is_refused(stack: Settings) -> None:
    wrong = dataclasses.replace(stack, postgres_password="not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(postgres.ping(wrong))


def _plain_settings() -> Settings:
    from tradex.infra import settings

    return dataclasses.replace(settings.load(), postgres_host="127.0.0.1", postgres_port=15432)
