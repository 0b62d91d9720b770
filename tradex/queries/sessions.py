"""Login sessions in Redis: refresh tokens rotated on use, revocation, reuse detection.

A session is ``{ns}:session:<sid>`` (a hash: user, the SHA-256 of the current refresh
token's secret, created) expiring with its refresh token. The refresh token is
``<sid>.<secret>``; using it replaces the secret (rotation) in one script. Presenting a
secret that is not the current one — an old, already used token, i.e. stolen or replayed
— deletes the session: both the thief and the owner are logged out (reuse detection).
Every access token names its session, and every request checks the session still
exists, so logout or a detected reuse revokes the access tokens at once, not at expiry.
``{ns}:user-sessions:<user>`` (a set of session ids, expiring with the newest) lets
"log out everywhere" revoke every session of a user; ids of sessions that already ended
stay in it until then, harmlessly (deleting a gone key is a no-op).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

import redis.asyncio

TOKEN_CHARS_MAX = 200
REVOKE_CHUNK_MAX = 500  # session keys deleted per UNLINK by revoke_all
_ROTATE = """
local stored = redis.call('HGET', KEYS[1], 'refresh')
if not stored then return 0 end
if stored ~= ARGV[1] then redis.call('DEL', KEYS[1]); return -1 end
redis.call('HSET', KEYS[1], 'refresh', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return tonumber(redis.call('HGET', KEYS[1], 'user'))
"""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Sessions:
    def __init__(
        self, conn: redis.asyncio.Redis, ns: str, ttl_s: int,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:  # fmt: skip
        assert ttl_s > 0, ttl_s
        self.conn = conn
        self.prefix = f"{{{ns}}}:session:"
        self.user_prefix = f"{{{ns}}}:user-sessions:"
        self.ttl_ms = ttl_s * 1_000
        self.clock_ns = clock_ns
        self._rotate = conn.register_script(_ROTATE)

    def key(self, session_id: str) -> str:
        """The Redis key that exists while the session is alive."""
        return self.prefix + session_id

    async def open(self, user_id: int) -> tuple[str, str]:
        """A new session: (session id, refresh token)."""
        session_id, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
        key = self.key(session_id)
        await self.conn.hset(
            key, mapping={"user": user_id, "refresh": _digest(secret), "created": self.clock_ns()}
        )
        await self.conn.pexpire(key, self.ttl_ms)
        index = self.user_prefix + str(user_id)
        await self.conn.sadd(index, session_id)
        await self.conn.pexpire(index, self.ttl_ms)
        return session_id, f"{session_id}.{secret}"

    async def rotate(self, refresh_token: str) -> tuple[int, str, str] | None:
        """(user id, session id, the new refresh token), or None: unknown, expired, revoked
        or reused (then the session is revoked now)."""
        session_id, dot, secret = refresh_token.partition(".")
        if not dot or not session_id or not secret or len(refresh_token) > TOKEN_CHARS_MAX:
            return None
        fresh = secrets.token_urlsafe(32)
        user = await self._rotate(
            keys=[self.key(session_id)], args=[_digest(secret), _digest(fresh), self.ttl_ms]
        )
        if int(user) <= 0:
            return None
        return int(user), session_id, f"{session_id}.{fresh}"

    async def alive(self, session_id: str) -> bool:
        return bool(await self.conn.exists(self.key(session_id)))

    async def revoke(self, session_id: str) -> bool:
        return bool(await self.conn.delete(self.key(session_id)))

    async def revoke_all(self, user_id: int) -> int:
        """Revokes every session of ``user_id`` (their access and refresh tokens stop
        working now); answers how many were still alive."""
        assert user_id > 0, user_id
        index = self.user_prefix + str(user_id)
        session_ids = sorted(str(s, "utf-8") if isinstance(s, bytes) else str(s)
                             for s in await self.conn.smembers(index))  # fmt: skip
        alive = 0
        for start in range(0, len(session_ids), REVOKE_CHUNK_MAX):
            chunk = session_ids[start : start + REVOKE_CHUNK_MAX]
            alive += int(await self.conn.unlink(*[self.key(s) for s in chunk]))
        await self.conn.unlink(index)
        assert alive <= len(session_ids), (alive, len(session_ids))
        return alive
