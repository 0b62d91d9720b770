"""PostgreSQL connection helpers (asyncpg), driven by settings only."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

import asyncpg

from tradex.infra.reachable import require_postgres
from tradex.infra.settings import Settings

connect_timeout_s = 5.0
drop_attempts_max = 240
drop_retry_s = 0.25
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def dsn(settings: Settings, database: str | None = None) -> str:
    """The DSN for settings' server, optionally for another database on it."""
    db = settings.postgres_db if database is None else database
    assert db, "empty database name"
    return (
        f"postgresql://{quote(settings.postgres_user, safe='')}:"
        f"{quote(settings.postgres_password, safe='')}"
        f"@{settings.postgres_host}:{settings.postgres_port}/{quote(db, safe='')}"
    )


def check_identifier(name: str) -> str:
    """A database or schema name we are willing to splice into DDL."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain lower-case SQL identifier: {name!r}")
    return name


async def connect(settings: Settings, database: str | None = None) -> asyncpg.Connection:
    """One connection to settings' server (the settings database unless told otherwise)."""
    require_postgres(settings)
    return await asyncpg.connect(dsn(settings, database), timeout=connect_timeout_s)


async def create_database(settings: Settings, name: str) -> None:
    """CREATE DATABASE name (owned by the settings user)."""
    conn = await connect(settings)
    try:
        await conn.execute(f"CREATE DATABASE {check_identifier(name)}")
    finally:
        await conn.close()


async def drop_database(settings: Settings, name: str) -> None:
    """DROP DATABASE IF EXISTS name, closing other sessions on it.

    FORCE may not terminate an autovacuum worker busy in that database (it belongs to the
    superuser): PostgreSQL then refuses; the worker is soon done, so try again."""
    assert check_identifier(name) != settings.postgres_db, "refusing to drop the main database"
    conn = await connect(settings)
    try:
        for attempt in range(drop_attempts_max):
            try:
                await conn.execute(f"DROP DATABASE IF EXISTS {check_identifier(name)} WITH (FORCE)")
                return
            except asyncpg.InsufficientPrivilegeError:
                if attempt + 1 == drop_attempts_max:
                    raise
                await asyncio.sleep(drop_retry_s)
    finally:
        await conn.close()


async def ping(settings: Settings) -> str:
    """SELECT version() on the settings database; raises when unreachable."""
    conn = await connect(settings)
    try:
        version = await conn.fetchval("SELECT version()")
    finally:
        await conn.close()
    assert isinstance(version, str), version
    return version
