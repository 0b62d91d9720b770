"""Rate limits counted in each worker and sent to the real Redis within SYNC_S."""

from __future__ import annotations

import asyncio

import pytest

from tradex.infra import redis_client
from tradex.infra.settings import Settings
from tradex.queries.config import RateLimit
from tradex.queries.rate_limits import RateLimiter

pytestmark = pytest.mark.integration

READ = RateLimit("read", 10, 60)


def test_one_worker_counts_exactly_and_redis_follows(redis_settings: Settings) -> None:
    async def scenario() -> None:
        conn = redis_client.async_client(redis_settings)
        limiter = RateLimiter(conn, "rl-test")
        try:
            seen = [await limiter.count(READ, ["ip:1.2.3.4"], 2) for _ in range(6)]
            assert [u.used for u in seen] == [2, 4, 6, 8, 10, 12]  # exact, in one worker
            assert [u.exceeded for u in seen] == [False] * 5 + [True]
            assert all(0 < u.reset_ms <= 60_000 for u in seen)
            key = "{rl-test}:rl:read:ip:1.2.3.4"
            assert int(await conn.get(key)) < 12  # the first went to Redis; the rest not yet
            await asyncio.sleep(0.05)  # > SYNC_S: the worker has sent its counts
            assert int(await conn.get(key)) == 12
            assert 0 < await conn.pttl(key) <= 60_000
            # the tighter of two counters answers; a new one is asked of Redis at once
            both = await limiter.count(READ, ["ip:1.2.3.4", "user:7"], 1)
            assert (both.used, int(await conn.get("{rl-test}:rl:read:user:7"))) == (13, 1)
            await limiter.aclose()  # a stopping worker sends what it still holds
            assert int(await conn.get(key)) == 13
        finally:
            await conn.aclose()

    asyncio.run(scenario())


def test_two_workers_learn_each_others_counts(redis_settings: Settings) -> None:
    async def scenario() -> None:
        conn = redis_client.async_client(redis_settings)
        first, second = RateLimiter(conn, "rl-two"), RateLimiter(conn, "rl-two")
        try:
            for _ in range(4):
                await first.count(READ, ["ip:9.9.9.9"])
            await asyncio.sleep(0.05)
            # the second worker has not seen this counter: Redis answers, with the first's 4
            assert (await second.count(READ, ["ip:9.9.9.9"])).used == 5
            for _ in range(3):
                await second.count(READ, ["ip:9.9.9.9"])
            await asyncio.sleep(0.05)
            # the first learns the second's counts at its next reply from Redis
            await first.count(READ, ["ip:9.9.9.9"])
            await first.flush()
            assert (await first.count(READ, ["ip:9.9.9.9"])).used == 10
            await asyncio.sleep(0.05)
            assert int(await conn.get("{rl-two}:rl:read:ip:9.9.9.9")) == 10
        finally:
            await first.aclose()
            await second.aclose()
            await conn.aclose()

    asyncio.run(scenario())


def test_a_window_that_ends_starts_again_from_redis(redis_settings: Settings) -> None:
    async def scenario() -> None:
        conn = redis_client.async_client(redis_settings)
        now = [100.0]
        limiter = RateLimiter(conn, "rl-end", clock=lambda: now[0])
        short = RateLimit("read", 3, 1)
        try:
            assert [(await limiter.count(short, ["ip:5.5.5.5"])).used for _ in range(4)] == [
                1, 2, 3, 4,
            ]  # fmt: skip
            await limiter.flush()
            await asyncio.sleep(1.1)  # Redis's window (1 s) ends
            now[0] += 1.1  # and the worker's
            fresh = await limiter.count(short, ["ip:5.5.5.5"])
            assert (fresh.used, fresh.exceeded) == (1, False)
        finally:
            await limiter.aclose()
            await conn.aclose()

    asyncio.run(scenario())
