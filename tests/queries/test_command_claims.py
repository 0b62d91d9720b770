"""Idempotency claims (auth schema, real PostgreSQL): claims made together go in one
statement and get the outcomes one statement each would have given."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest

from tradex.infra import postgres
from tradex.infra.settings import Settings
from tradex.queries.auth_store import AuthStore

pytestmark = pytest.mark.integration

A, B = b"\x01" * 32, b"\x02" * 32


def test_claims_together_new_same_and_conflict(stack: Settings) -> None:
    async def scenario() -> None:
        schema = f"claims_{secrets.token_hex(4)}"
        pool = await asyncpg.create_pool(postgres.dsn(stack), min_size=1, max_size=3)
        try:
            store = AuthStore(pool, schema)
            await store.ensure_schema()
            assert await store.claim_command("account:1", "c0", A, 7, "PlaceOrder", 1) == "new"
            claims = [
                ("account:1", "c0", A, 7, "PlaceOrder", 2),  # stored before: the same request
                ("account:1", "c0", B, 7, "PlaceOrder", 2),  # stored before, other request
                ("account:1", "c0", A, 8, "PlaceOrder", 2),  # stored before, other user
                ("account:1", "c1", A, 7, "PlaceOrder", 2),  # new
                ("account:1", "c1", A, 7, "PlaceOrder", 3),  # the same id again in the batch
                ("account:1", "c1", B, 7, "PlaceOrder", 3),  # ... for another request
                ("account:2", "c1", B, 9, "PlaceOrder", 3),  # another scope: new
            ]
            outcomes = await asyncio.gather(*(store.claim_command(*c) for c in claims))
            assert outcomes == ["same", "conflict", "conflict", "new", "same", "conflict", "new"]
            rows = await pool.fetch(f"SELECT scope, command_id, request_hash, user_id "
                                    f"FROM {schema}.commands ORDER BY 1, 2")  # fmt: skip
            assert [tuple(r) for r in rows] == [
                ("account:1", "c0", A, 7), ("account:1", "c1", A, 7), ("account:2", "c1", B, 9),
            ]  # fmt: skip
            # many at once: one batch or several, each claimed exactly once
            many = [("account:3", f"m{k % 50}", A, 7, "PlaceOrder", k) for k in range(200)]
            found = await asyncio.gather(*(store.claim_command(*c) for c in many))
            assert found.count("new") == 50 and found.count("same") == 150
            # another worker's store claims the same ids: never new again
            other = AuthStore(pool, schema)
            again = await asyncio.gather(*(other.claim_command(*c) for c in many[:50]))
            assert again == ["same"] * 50
            await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await pool.close()

    asyncio.run(scenario())
