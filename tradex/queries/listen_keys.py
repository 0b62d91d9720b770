"""Binance's listenKeys in Redis: one account's user-data stream, 60 minutes at a time.

A listenKey names one account's private stream (``/ws/<listenKey>``, :mod:`.ws_user`);
the REST endpoints that open, extend and close keys are :mod:`.user_stream_routes`.

Redis (the API's namespace): ``{ns}:listen-key:<key>`` = ``<account>:<user>`` (and
``:<session>`` when an access token opened it) expiring with the key;
``{ns}:listen-key-of:<owner>`` = the owner's key (owner: the API key, or the login
session and account of a token), so a POST reuses it and revoking an API key closes the
key it opened (:meth:`ListenKeys.close_owner`); a key a session opened is usable only
while that session lives (:func:`.ws_user.usable`: logout ends its streams). Two POSTs racing for one owner may both
create a key: both are valid, the index keeps the last (the other one outlives a revoke
of its API key until it expires: PUT needs a live API key).
"""

from __future__ import annotations

import secrets
import string
from typing import NamedTuple

import redis.asyncio

LISTEN_KEY_TTL_S = 3_600  # Binance: 60 minutes, extended by PUT
LISTEN_KEY_CHARS = 60  # Binance's keys are 60 letters and digits
_ALPHABET = string.ascii_letters + string.digits


class Bound(NamedTuple):
    """What a live key names: an account, its user, and the login session that opened it
    ("" when an API key did): a key opened with an access token lives no longer than its
    session (logout ends its streams)."""

    account_id: int
    user_id: int
    session_id: str = ""


def redis_key(ns: str, listen_key: str) -> str:
    """The Redis key that exists while ``listen_key`` is alive (``ns``: the API's)."""
    return f"{{{ns}}}:listen-key:{listen_key}"


def key_owner(key_id: str) -> str:
    """The owner of the listenKey an API key opened (``key_id``: the key's public id)."""
    assert key_id, key_id
    return f"key:{key_id}"


def looks_like_key(text: str) -> bool:
    """A listenKey's shape (a stream name has an ``@``)."""
    return len(text) == LISTEN_KEY_CHARS and all(c in _ALPHABET for c in text)


class ListenKeys:
    def __init__(self, conn: redis.asyncio.Redis, ns: str, ttl_s: int = LISTEN_KEY_TTL_S) -> None:
        assert ttl_s > 0, ttl_s
        self.conn = conn
        self.ns = ns
        self.owner_prefix = f"{{{ns}}}:listen-key-of:"
        self.ttl_ms = ttl_s * 1_000

    def key(self, listen_key: str) -> str:
        return redis_key(self.ns, listen_key)

    async def open(self, owner: str, bound: Bound) -> str:
        """The owner's live key (extended), else a new one."""
        index = self.owner_prefix + owner
        found = await self.conn.get(index)
        if found is not None:
            listen_key = found.decode() if isinstance(found, bytes) else str(found)
            if await self.bound(listen_key) == bound and await self.conn.pexpire(
                self.key(listen_key), self.ttl_ms
            ):
                await self.conn.pexpire(index, self.ttl_ms)
                return listen_key
        listen_key = "".join(secrets.choice(_ALPHABET) for _ in range(LISTEN_KEY_CHARS))
        assert looks_like_key(listen_key), listen_key
        async with self.conn.pipeline(transaction=True) as pipe:
            value = f"{bound.account_id}:{bound.user_id}"
            if bound.session_id:
                value += f":{bound.session_id}"
            pipe.set(self.key(listen_key), value, px=self.ttl_ms)
            pipe.set(index, listen_key, px=self.ttl_ms)
            await pipe.execute()
        return listen_key

    async def bound(self, listen_key: str) -> Bound | None:
        """The account and user of a live key; None: no such key (or expired)."""
        if not looks_like_key(listen_key):
            return None
        value = await self.conn.get(self.key(listen_key))
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        account, user, *session = text.split(":", 2)
        found = Bound(int(account), int(user), session[0] if session else "")
        assert found.account_id > 0, text
        return found

    async def keep_alive(self, listen_key: str, bound: Bound) -> bool:
        if await self.bound(listen_key) != bound:
            return False
        return bool(await self.conn.pexpire(self.key(listen_key), self.ttl_ms))

    async def close(self, listen_key: str, bound: Bound) -> bool:
        if await self.bound(listen_key) != bound:
            return False
        return bool(await self.conn.delete(self.key(listen_key)))

    async def close_owner(self, owner: str) -> bool:
        """Close the owner's live key (its streams get ``listenKeyExpired``) and forget the
        index; False: it had none."""
        index = self.owner_prefix + owner
        found = await self.conn.get(index)
        if found is None:
            return False
        listen_key = found.decode() if isinstance(found, bytes) else str(found)
        assert looks_like_key(listen_key), listen_key
        closed: int = await self.conn.unlink(self.key(listen_key), index)
        return closed == 2
