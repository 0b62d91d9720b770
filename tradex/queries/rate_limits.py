"""Rate limits: fixed windows per key (or user) and per IP, counted in Redis.

Buckets are separate — ``read`` (request weight per minute), ``order`` (orders per 10 s),
``auth`` (register/login/refresh per minute) — and each request counts against its bucket
twice: for the caller's IP and for the caller (API key or user; public requests: the IP
only). The response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seconds) of the tighter of the two, and Binance's
``X-MBX-USED-WEIGHT-1M`` / ``X-MBX-ORDER-COUNT-10S``; over the limit: 429 with
``Retry-After`` (code -1003, for orders -1015). A refused request still counts.

A request with an access token is admitted in one round trip (:meth:`RateLimiter.admit`):
count the IP; unless that is over its limit, check the token's session; if it is alive and
the token's roles fit the endpoint, count the user — the same steps, in the same order,
as three separate calls would take. Admissions asked while others are on their way share
the next round trip (one pipeline; each still its own script call).

Other requests are counted in the worker: a counter it has seen in the current window
(from Redis: its count and time left) takes the request's weight at once, and what a
worker counted reaches Redis within :data:`SYNC_S` (one script for all its counters). A
counter new to the worker, or whose window ended, is counted in Redis before the answer.
With one worker the limits are exact; with several, a worker learns what the others
counted at its next Redis reply, so together they may admit, per counter, up to what the
others counted in their last :data:`SYNC_S` beyond the limit. The counts are soft state:
a worker that dies loses at most its last :data:`SYNC_S` of counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import redis.asyncio
from redis.exceptions import NoScriptError

from tradex.infra.coalesce import Coalescer
from tradex.queries.config import RateLimit

log = logging.getLogger("tradex.api")
SYNC_S = 0.01  # counts made in a worker reach Redis this long after, at most (plus a trip)
ADMISSIONS_PER_TRIP_MAX = 500

_COUNTER = """
local function count(key, weight, window_ms)
  local used = redis.call('INCRBY', key, weight)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window_ms)
    ttl = tonumber(window_ms)
  end
  return {used, ttl}
end
"""
# KEYS: the IP's counter, the session, the caller's counter; ARGV: weight, window (ms),
# limit, whether the caller may use the endpoint (1/0)
_ADMIT = (
    _COUNTER
    + """
local ip = count(KEYS[1], ARGV[1], ARGV[2])
if ip[1] > tonumber(ARGV[3]) then
  return {ip[1], ip[2], -1}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {ip[1], ip[2], 0}
end
if ARGV[4] ~= '1' then
  return {ip[1], ip[2], 1}
end
local mine = count(KEYS[3], ARGV[1], ARGV[2])
return {ip[1], ip[2], 1, mine[1], mine[2]}
"""
)
# KEYS: counters; ARGV: per counter, its weight then its window (ms)
_ADD = (
    _COUNTER
    + """
local out = {}
for i, key in ipairs(KEYS) do
  local counted = count(key, ARGV[2 * i - 1], ARGV[2 * i])
  out[#out + 1] = counted[1]
  out[#out + 1] = counted[2]
end
return out
"""
)


class Usage(NamedTuple):
    limit: RateLimit
    used: int
    reset_ms: int

    @property
    def remaining(self) -> int:
        return max(self.limit.limit - self.used, 0)

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit.limit

    def headers(self) -> dict[str, str]:
        reset_s = str(max(math.ceil(self.reset_ms / 1_000), 1))
        found = {
            "X-RateLimit-Limit": str(self.limit.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset_s,
        }
        if self.limit.name == "read":
            found["X-MBX-USED-WEIGHT-1M"] = str(self.used)
        elif self.limit.name == "order":
            found["X-MBX-ORDER-COUNT-10S"] = str(self.used)
        if self.exceeded:
            found["Retry-After"] = reset_s
        return found


class _Window:
    """One counter's window as this worker knows it: what Redis said it was (``synced``)
    and what this worker has added since and not yet sent (``pending``)."""

    __slots__ = ("ends_at", "pending", "synced", "window_ms")

    def __init__(self, ends_at: float, synced: int, window_ms: int) -> None:
        self.ends_at = ends_at
        self.synced = synced
        self.pending = 0
        self.window_ms = window_ms


class RateLimiter:
    def __init__(
        self, conn: redis.asyncio.Redis, ns: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.conn = conn
        self.prefix = f"{{{ns}}}:rl:"
        self.clock = clock
        self._add = conn.register_script(_ADD)
        self._admit = conn.register_script(_ADMIT)
        self._admits = Coalescer(self._admit_many, ADMISSIONS_PER_TRIP_MAX)
        self._windows: dict[str, _Window] = {}
        self._flushing: asyncio.Task[None] | None = None
        # one flush at a time: a count stays pending until Redis has it, so two flushes
        # in flight together would both send it
        self._flush_lock = asyncio.Lock()

    def _key(self, limit: RateLimit, caller: str) -> str:
        return f"{self.prefix}{limit.name}:{caller}"

    async def count(self, limit: RateLimit, callers: list[str], weight: int = 1) -> Usage:
        """Add ``weight`` for each caller (``ip:…``, ``key:…``, ``user:…``); the usage of the
        one with the least left. A counter seen before in its window is counted here and
        sent to Redis within :data:`SYNC_S`; a new one is asked of Redis now."""
        assert callers, "nobody to count"
        assert weight > 0, weight
        keys = [self._key(limit, caller) for caller in callers]
        now = self.clock()
        windows = [self._windows.get(key) for key in keys]
        known = [w for w in windows if w is not None and w.ends_at > now]
        if len(known) == len(keys):
            for window in known:
                window.pending += weight
            self._flush_later()
            usages = [
                Usage(limit, w.synced + w.pending, max(math.ceil((w.ends_at - now) * 1_000), 1))
                for w in known
            ]
        else:
            window_ms = limit.window_s * 1_000
            reply = await self._add(keys=keys, args=[weight, window_ms] * len(keys))
            usages = [
                self._learn(key, limit, int(used), int(ttl))
                for key, used, ttl in zip(keys, reply[::2], reply[1::2], strict=True)
            ]
        return max(usages, key=lambda usage: (usage.used, -usage.reset_ms))

    def _learn(self, key: str, limit: RateLimit, used: int, ttl_ms: int) -> Usage:
        """Redis said ``key`` counts ``used`` with ``ttl_ms`` left: remember it; the usage
        with what this worker has not sent yet."""
        now = self.clock()
        window = self._windows.get(key)
        if window is None or window.ends_at <= now:
            window = self._windows[key] = _Window(
                now + ttl_ms / 1_000, used, limit.window_s * 1_000
            )
        else:  # replies of other connections may come out of order: never count back
            window.synced = max(window.synced, used)
        return Usage(limit, window.synced + window.pending, ttl_ms)

    def _flush_later(self) -> None:
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_after(SYNC_S))

    async def _flush_after(self, delay_s: float) -> None:
        try:
            await asyncio.sleep(delay_s)
            await self.flush()
        except Exception as exc:  # Redis away: the counts wait for the next request's flush
            log.warning("rate limits: sending counts to Redis failed: %s", exc)
        finally:
            self._flushing = None

    async def flush(self) -> None:
        """Send the counts added here to Redis; forget windows that have ended."""
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        now = self.clock()
        batch = [(key, w, w.pending) for key, w in self._windows.items() if w.pending]
        for key in [k for k, w in self._windows.items() if w.ends_at <= now and not w.pending]:
            del self._windows[key]
        if not batch:
            return
        args = [value for _key, w, sent in batch for value in (sent, w.window_ms)]
        reply = await self._add(keys=[key for key, _w, _sent in batch], args=args)
        for (_key, window, sent), used in zip(batch, reply[::2], strict=True):
            window.pending -= sent
            window.synced = max(window.synced, int(used))

    async def aclose(self) -> None:
        """Send what is still counted here (a worker that stops)."""
        if self._flushing is not None:
            self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
        await self.flush()

    async def admit(
        self, limit: RateLimit, ip: str, session_key: str, caller: str, allowed: bool,
        weight: int = 1,
    ) -> Admission:  # fmt: skip
        """Count ``ip``; unless it is over the limit, check that ``session_key`` exists;
        if so and the caller is ``allowed`` (the endpoint's roles), count ``caller`` — in
        Redis now (the session must be checked there). Admissions asked while others are
        on their way go to Redis together (one pipelined round trip)."""
        assert weight > 0, weight
        window_ms = limit.window_s * 1_000
        keys = [self._key(limit, ip), session_key, self._key(limit, caller)]
        found = await self._admits.submit((keys, [weight, window_ms, limit.limit, int(allowed)]))
        if isinstance(found, Exception):
            raise found
        reply = [int(v) for v in found]
        by_ip = self._learn(keys[0], limit, reply[0], reply[1])
        mine = None
        if len(reply) == 5:
            mine = self._learn(keys[2], limit, reply[3], reply[4])
        return Admission(by_ip, reply[2] == 1, mine)

    async def _admit_many(
        self, admissions: list[tuple[list[str], list[int]]]
    ) -> list[list[Any] | Exception]:
        """The script's reply to each admission (or the error Redis gave for it): one
        alone as a plain call, several in one pipeline."""
        if len(admissions) == 1:
            keys, args = admissions[0]
            return [await self._admit(keys=keys, args=args)]
        pipe = self.conn.pipeline(transaction=False)
        for keys, args in admissions:  # by digest: the script is loaded once (below)
            pipe.evalsha(self._admit.sha, len(keys), *keys, *args)
        replies = await pipe.execute(raise_on_error=False)
        found: list[list[Any] | Exception] = []
        for (keys, args), reply in zip(admissions, replies, strict=True):
            if isinstance(reply, NoScriptError):  # a restarted Redis: the call loads it
                reply = await self._admit(keys=keys, args=args)
            found.append(reply)
        return found


class Admission(NamedTuple):
    """What :meth:`RateLimiter.admit` found: the IP's usage, whether the session is alive
    (False also when the IP was over its limit: then nothing else was checked), and the
    caller's usage (None when the caller was not counted)."""

    by_ip: Usage
    alive: bool
    mine: Usage | None
