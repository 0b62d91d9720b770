"""Rate limits in Redis: fixed windows per key (or user) and per IP, one script per request.

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
as three separate calls would take.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import redis.asyncio

from tradex.queries.config import RateLimit

_COUNTER = """
local function count(key)
  local used = redis.call('INCRBY', key, ARGV[1])
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return {used, ttl}
end
"""
_ADMIT = (
    _COUNTER
    + """
local ip = count(KEYS[1])
if ip[1] > tonumber(ARGV[3]) then
  return {ip[1], ip[2], -1}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {ip[1], ip[2], 0}
end
if ARGV[4] ~= '1' then
  return {ip[1], ip[2], 1}
end
local mine = count(KEYS[3])
return {ip[1], ip[2], 1, mine[1], mine[2]}
"""
)
_COUNT = (
    _COUNTER
    + """
local out = {}
for _, key in ipairs(KEYS) do
  local counted = count(key)
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


class RateLimiter:
    def __init__(self, conn: redis.asyncio.Redis, ns: str) -> None:
        self.conn = conn
        self.prefix = f"{{{ns}}}:rl:"
        self._count = conn.register_script(_COUNT)
        self._admit = conn.register_script(_ADMIT)

    async def count(self, limit: RateLimit, callers: list[str], weight: int = 1) -> Usage:
        """Add ``weight`` for each caller (``ip:…``, ``key:…``, ``user:…``); the usage of the
        one with the least left."""
        assert callers, "nobody to count"
        assert weight > 0, weight
        keys = [f"{self.prefix}{limit.name}:{caller}" for caller in callers]
        reply = await self._count(keys=keys, args=[weight, limit.window_s * 1_000])
        usages = [
            Usage(limit, int(used), int(ttl))
            for used, ttl in zip(reply[::2], reply[1::2], strict=True)
        ]
        return max(usages, key=lambda usage: (usage.used, -usage.reset_ms))

    async def admit(
        self, limit: RateLimit, ip: str, session_key: str, caller: str, allowed: bool,
        weight: int = 1,
    ) -> Admission:  # fmt: skip
        """Count ``ip``; unless it is over the limit, check that ``session_key`` exists;
        if so and the caller is ``allowed`` (the endpoint's roles), count ``caller``."""
        assert weight > 0, weight
        keys = [f"{self.prefix}{limit.name}:{ip}", session_key,
                f"{self.prefix}{limit.name}:{caller}"]  # fmt: skip
        reply = [int(v) for v in await self._admit(
            keys=keys, args=[weight, limit.window_s * 1_000, limit.limit, int(allowed)]
        )]  # fmt: skip
        by_ip = Usage(limit, reply[0], reply[1])
        mine = Usage(limit, reply[3], reply[4]) if len(reply) == 5 else None
        return Admission(by_ip, reply[2] == 1, mine)


class Admission(NamedTuple):
    """What :meth:`RateLimiter.admit` found: the IP's usage, whether the session is alive
    (False also when the IP was over its limit: then nothing else was checked), and the
    caller's usage (None when the caller was not counted)."""

    by_ip: Usage
    alive: bool
    mine: Usage | None
