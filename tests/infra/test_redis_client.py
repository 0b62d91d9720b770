"""Redis helpers against the real local server."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tradex.infra import redis_client
from tradex.infra.settings import Settings

pytestmark = pytest.mark.integration


def test_round_trip_and_multi_exec(redis_settings: Settings) -> None:
    conn = redis_client.client(redis_settings)
    try:
        assert conn.ping()
        conn.set("k", "v")
        assert conn.get("k") == b"v"
        with conn.pipeline(transaction=True) as pipe:
            pipe.hset("book:BTC-USD", mapping={"bid": 100, "ask": 101})
            pipe.incr("book:BTC-USD:seq")
            results = pipe.execute()
        assert results == [2, 1]
        assert conn.hgetall("book:BTC-USD") == {b"bid": b"100", b"ask": b"101"}
    finally:
        conn.close()


def test_logical_databases_are_isolated(redis_settings: Settings) -> None:
    db = int(redis_settings.redis_url.rsplit("/", 1)[1])
    other = (db % (redis_client.databases_max - 1)) + 1
    assert other != db
    mine = redis_client.client(redis_settings)
    theirs = redis_client.client(redis_settings, other)
    try:
        mine.set("isolated", "1")
        assert theirs.get("isolated") is None
    finally:
        mine.close()
        theirs.close()


def test_async_client(redis_settings: Settings) -> None:
    async def run() -> bytes | str | None:
        conn = redis_client.async_client(redis_settings)
        try:
            await conn.set("a", "b")
            value = await conn.get("a")
        finally:
            await conn.aclose()
        return value

    assert asyncio.run(run()) == b"b"


def test_url_replaces_only_the_database(stack: Settings) -> None:
    settings = dataclasses.replace(stack, redis_url="redis://:pw@127.0.0.1:16379/0?protocol=3")
    assert redis_client.url(settings, 7) == "redis://:pw@127.0.0.1:16379/7?protocol=3"
    assert redis_client.url(settings, None) == settings.redis_url
    with pytest.raises(AssertionError):
        redis_client.url(settings, redis_client.databases_max)
