"""Rate limits counted in each worker and sent to the real Redis within SYNC_S."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from tradex.infra import redis_client
from tradex.infra.settings import Settings
from tradex.queries.config import RateLimit
from tradex.queries.rate_limits import RateLimiter

pytestmark = pytest.mark.integration

READ = RateLimit("read", 10, 60)


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Wait for a worker's background send (due within SYNC_S; a busy machine is slower)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.005)


def _counts(conn: object, key: str, expected: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        found = await conn.get(key)  # type: ignore[attr-defined]
        assert found is None or int(found) <= expected, (int(found), expected)
        return found is not None and int(found) == expected

    return check


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
            await _until(_counts(conn, key, 12))  # the worker sends its counts by itself
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
            key = "{rl-two}:rl:read:ip:9.9.9.9"
            for _ in range(4):
                await first.count(READ, ["ip:9.9.9.9"])
            await _until(_counts(conn, key, 4))
            # the second worker has not seen this counter: Redis answers, with the first's 4
            assert (await second.count(READ, ["ip:9.9.9.9"])).used == 5
            for _ in range(3):
                await second.count(READ, ["ip:9.9.9.9"])
            await _until(_counts(conn, key, 8))
            # the first learns the second's counts at its next reply from Redis (its own
            # background send may be on its way meanwhile: never counted twice)
            await first.count(READ, ["ip:9.9.9.9"])
            await first.flush()
            assert (await first.count(READ, ["ip:9.9.9.9"])).used == 10
            await _until(_counts(conn, key, 10))
        finally:
            await first.aclose()
            await second.aclose()
            await conn.aclose()

    asyncio.run(scenario())


def test_flushes_at_the_same_time_send_each_count_once(redis_settings: Settings) -> None:
    async def scenario() -> None:
        conn = redis_client.async_client(redis_settings)
        limiter = RateLimiter(conn, "rl-flushes")
        key = "{rl-flushes}:rl:read:ip:4.4.4.4"
        try:
            for _ in range(5):
                await limiter.count(READ, ["ip:4.4.4.4"])  # 1 in Redis, 4 held here
            await asyncio.gather(limiter.flush(), limiter.flush(), limiter.flush())
            assert int(await conn.get(key)) == 5
            await limiter.count(READ, ["ip:4.4.4.4"])
            await asyncio.gather(limiter.flush(), limiter.aclose())
            assert int(await conn.get(key)) == 6
        finally:
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


def test_admissions_asked_together_count_exactly(redis_settings: Settings) -> None:
    """Concurrent admissions share pipelined round trips, each its own script call: every
    one counted once, in order, the session checked for each; a script the server does not
    know (restarted) is loaded again. (Never SCRIPT FLUSH here: the server is shared with
    running exchanges.)"""
    order = RateLimit("order", 30, 10)

    async def scenario() -> None:
        conn = redis_client.async_client(redis_settings)
        limiter = RateLimiter(conn, "rl-admit")
        session = "{rl-admit}:session:s1"
        try:
            await conn.set(session, "1", px=60_000)
            found = await asyncio.gather(*(
                limiter.admit(order, "ip:9.9.9.9", session, f"user:{k % 2}", True)
                for k in range(40)
            ))  # fmt: skip
            assert sorted(a.by_ip.used for a in found) == list(range(1, 41))
            assert [a.by_ip.exceeded for a in found].count(True) == 10
            assert all(a.alive for a in found[:30])
            # counted per user only while the IP was under its limit: 15 each
            assert int(await conn.get("{rl-admit}:rl:order:user:0")) == 15
            assert int(await conn.get("{rl-admit}:rl:order:user:1")) == 15
            await conn.delete(session)
            again = await asyncio.gather(*(
                limiter.admit(order, "ip:8.8.8.8", session, "user:2", True) for _ in range(5)
            ))  # fmt: skip
            assert [a.alive for a in again] == [False] * 5  # the session is gone
            assert sorted(a.by_ip.used for a in again) == [1, 2, 3, 4, 5]
            # a pipeline meeting NOSCRIPT loads it and goes on (as after a Redis restart)
            limiter._admit.sha = "0" * 40
            keys = ["{rl-admit}:rl:order:ip:7.7.7.7", session, "{rl-admit}:rl:order:user:3"]
            replies = await limiter._admit_many([(keys, [1, 10_000, 30, 1])] * 3)
            assert [int(r[0]) for r in replies] == [1, 2, 3]
        finally:
            await conn.aclose()

    asyncio.run(scenario())
