"""JWT signing keys on their own auth schema: first key, rotation, retirement, expiry."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest

from tests.queries.exchange import Exchange
from tradex.infra import postgres
from tradex.queries.auth_store import AuthStore
from tradex.queries.errors import ApiError
from tradex.queries.master_key import MasterKey
from tradex.queries.tokens import TokenKeys

pytestmark = pytest.mark.integration

NS = 1_000_000_000
TTL_S, ROTATE_S = 60, 3_600


def test_keys_rotate_retire_and_tokens_follow(exchange: Exchange) -> None:
    async def scenario() -> None:
        schema = f"tokens_{secrets.token_hex(4)}"
        pool = await asyncpg.create_pool(postgres.dsn(exchange.settings), min_size=1, max_size=2)
        now = [1_800_000_000 * NS]
        try:
            store = AuthStore(pool, schema)
            await store.ensure_schema()
            keys = TokenKeys(store, MasterKey(secrets.token_bytes(32)), TTL_S, ROTATE_S,
                             lambda: now[0])  # fmt: skip
            await keys.load()
            first = keys.current.kid
            old, _ = keys.issue(7, "s1", frozenset({"trader"}))
            assert (await keys.verify(old)).user_id == 7
            second = await keys.rotate()
            assert keys.current.kid == second != first
            assert {k["kid"] for k in keys.jwks()["keys"]} == {first, second}
            now[0] += (TTL_S - 1) * NS
            new, _ = keys.issue(7, "s2", frozenset({"trader"}))
            assert (await keys.verify(old)).session_id == "s1"  # still alive: still verifies
            now[0] += 2 * NS
            with pytest.raises(ApiError, match="expired"):
                await keys.verify(old)
            await keys.load()  # the first key was replaced more than a token lifetime ago
            assert {k["kid"] for k in keys.jwks()["keys"]} == {second}
            with pytest.raises(ApiError, match=r"expired|unknown or retired"):
                await keys.verify(old)
            assert (await keys.verify(new)).session_id == "s2"
            tampered = new[:-4] + ("AAAA" if not new.endswith("AAAA") else "BBBB")
            with pytest.raises(ApiError):
                await keys.verify(tampered)
            now[0] += ROTATE_S * NS
            await keys.load()  # too old: replaced on the next load
            assert keys.current.kid not in (first, second)
            # a second worker on the same schema signs and verifies with the same keys
            other = TokenKeys(store, MasterKey(b"\0" * 32), TTL_S, ROTATE_S, lambda: now[0])
            with pytest.raises(Exception):  # noqa: B017 (another master key cannot unseal them)
                await other.load()
        finally:
            await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await pool.close()

    asyncio.run(scenario())
