"""The ``auth`` schema in PostgreSQL: what the API knows that is not an event.

Credentials are not events: password hashes (argon2id), API-key hashes, the JWT signing
keys (encrypted with the master key), who may act for which account (the ownership the
log records with ``AccountOpened``, copied here for the auth check), login failures, and
the API's record of the commands it sent (command id, request fingerprint, the acting
user) — what ``Idempotency-Key`` maps to and, until commands carry their ``actor`` on the
log, who requested a withdrawal. The schema is ``namespace(settings, "auth")``: the topic
prefix's exchange (``auth`` with no prefix). Sessions and revocations are in Redis
(:mod:`.sessions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from tradex.infra.coalesce import Coalescer
from tradex.infra.settings import Settings
from tradex.projections.projector import namespace

ROLES = ("trader", "admin", "auditor")
PERMISSIONS = ("read", "trade", "withdraw")
KEYS_PER_USER_MAX = 30
ACCOUNTS_PER_USER_MAX = 1_000
OWNERS_KNOWN_MAX = 100_000  # users whose accounts a worker remembers (then forgets all)
CLAIMS_PER_STATEMENT_MAX = 1_000
# (scope, command id, request fingerprint, user id, command kind, time ns)
Claim = tuple[str, str, bytes, int, str, int]


def schema_name(settings: Settings) -> str:
    return namespace(settings, "auth")


def ddl(s: str) -> list[str]:
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE SEQUENCE IF NOT EXISTS {s}.entity_ids",  # user and account ids
        f"""CREATE TABLE IF NOT EXISTS {s}.users (
            user_id bigint PRIMARY KEY, username text NOT NULL UNIQUE,
            password_hash text NOT NULL, roles text[] NOT NULL,
            active boolean NOT NULL DEFAULT false, failed_logins int NOT NULL DEFAULT 0,
            locked_until_ns bigint NOT NULL DEFAULT 0, created_ns bigint NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.accounts (
            account_id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES {s}.users,
            created_ns bigint NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS accounts_by_user ON {s}.accounts (user_id, account_id)",
        f"""CREATE TABLE IF NOT EXISTS {s}.api_keys (
            key_hash bytea PRIMARY KEY, key_id text NOT NULL UNIQUE,
            user_id bigint NOT NULL REFERENCES {s}.users, account_id bigint NOT NULL,
            salt bytea NOT NULL, permissions text[] NOT NULL, ip_allow text[] NOT NULL,
            label text NOT NULL, created_ns bigint NOT NULL, revoked_ns bigint)""",
        f"CREATE INDEX IF NOT EXISTS api_keys_by_user ON {s}.api_keys (user_id)",
        f"""CREATE TABLE IF NOT EXISTS {s}.signing_keys (
            kid text PRIMARY KEY, sealed_private bytea NOT NULL, public_jwk jsonb NOT NULL,
            created_ns bigint NOT NULL, retired_ns bigint)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.commands (
            scope text NOT NULL, command_id text NOT NULL, request_hash bytea NOT NULL,
            user_id bigint NOT NULL, kind text NOT NULL, created_ns bigint NOT NULL,
            PRIMARY KEY (scope, command_id))""",
    ]


class AuthStore:
    """Queries over the auth schema (an asyncpg pool; every method one short statement)."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.s = schema
        self._owned: dict[int, list[int]] = {}  # user id -> accounts, as last read
        self._claims = Coalescer(self._claim_many, CLAIMS_PER_STATEMENT_MAX)

    async def ensure_schema(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # Several workers start at once: one creates, the others wait and find it.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.s)
            for statement in ddl(self.s):
                await conn.execute(statement)

    async def next_id(self) -> int:
        value = await self.pool.fetchval(f"SELECT nextval('{self.s}.entity_ids')")
        assert isinstance(value, int) and value > 0, value
        return value

    # -- users -------------------------------------------------------------------------

    async def reserve_user(
        self, user_id: int, username: str, password_hash: str, roles: Sequence[str], now_ns: int
    ) -> bool:
        """A user row, not yet active (its RegisterUser is on its way); False: name taken."""
        assert all(role in ROLES for role in roles), roles
        try:
            await self.pool.execute(
                f"INSERT INTO {self.s}.users (user_id, username, password_hash, roles, "
                "created_ns) VALUES ($1, $2, $3, $4, $5)",
                user_id, username, password_hash, list(roles), now_ns,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def set_roles(self, user_id: int, roles: Sequence[str]) -> None:
        """The roles the log now gives ``user_id`` (a user without credentials here, e.g.
        registered by a tool straight on the log, has no row: nothing to mirror)."""
        assert all(role in ROLES for role in roles), roles
        await self.pool.execute(
            f"UPDATE {self.s}.users SET roles = $2 WHERE user_id = $1", user_id, list(roles)
        )

    async def mirrored_roles(self) -> dict[int, list[str]]:
        """The roles the auth schema holds, by user (registered users only)."""
        rows = await self.pool.fetch(f"SELECT user_id, roles FROM {self.s}.users WHERE active")
        return {int(row["user_id"]): list(row["roles"]) for row in rows}

    async def set_roles_if(
        self, user_id: int, roles: Sequence[str], expected: Sequence[str]
    ) -> bool:
        """:meth:`set_roles` only while the mirror still holds ``expected`` (compare and set:
        a change another worker mirrored meanwhile is not undone); True if it changed."""
        assert all(role in ROLES for role in roles), roles
        done = await self.pool.execute(
            f"UPDATE {self.s}.users SET roles = $2 WHERE user_id = $1 AND roles = $3",
            user_id, list(roles), list(expected),
        )  # fmt: skip
        return bool(done == "UPDATE 1")

    async def activate_user(self, user_id: int) -> None:
        await self.pool.execute(
            f"UPDATE {self.s}.users SET active = true WHERE user_id = $1", user_id
        )

    async def drop_user(self, user_id: int) -> None:
        """A reservation the log refused."""
        await self.pool.execute(
            f"DELETE FROM {self.s}.users WHERE user_id = $1 AND NOT active", user_id
        )

    async def user_by_name(self, username: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.pool.fetchrow(
            f"SELECT * FROM {self.s}.users WHERE username = $1", username
        )
        return row

    async def user(self, user_id: int) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.pool.fetchrow(
            f"SELECT * FROM {self.s}.users WHERE user_id = $1", user_id
        )
        return row

    async def users(self) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            f"SELECT user_id, username, roles, active, created_ns FROM {self.s}.users "
            "ORDER BY user_id LIMIT 1000"
        )
        return rows

    async def login_failed(self, user_id: int, now_ns: int, failures_max: int, lock_ns: int) -> int:
        """Count a failure; at ``failures_max`` in a row lock the user. Returns locked_until."""
        value = await self.pool.fetchval(
            f"""UPDATE {self.s}.users SET failed_logins = failed_logins + 1,
                locked_until_ns = CASE WHEN failed_logins + 1 >= $2::int THEN $3::bigint + $4::bigint
                                       ELSE locked_until_ns END
            WHERE user_id = $1 RETURNING locked_until_ns""",
            user_id, failures_max, now_ns, lock_ns,
        )  # fmt: skip
        return int(value or 0)

    async def login_succeeded(self, user_id: int) -> None:
        await self.pool.execute(
            f"UPDATE {self.s}.users SET failed_logins = 0, locked_until_ns = 0 WHERE user_id = $1",
            user_id,
        )

    # -- accounts ------------------------------------------------------------------------

    async def add_account(self, account_id: int, user_id: int, now_ns: int) -> None:
        await self.pool.execute(
            f"INSERT INTO {self.s}.accounts VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            account_id, user_id, now_ns,
        )  # fmt: skip

    async def accounts_of(self, user_id: int) -> list[int]:
        rows = await self.pool.fetch(
            f"SELECT account_id FROM {self.s}.accounts WHERE user_id = $1 ORDER BY account_id "
            f"LIMIT {ACCOUNTS_PER_USER_MAX}",
            user_id,
        )
        return [int(row[0]) for row in rows]

    async def owned(self, user_id: int, account_id: int | None = None) -> list[int]:
        """:meth:`accounts_of`, from memory when that already answers: whether the user
        owns ``account_id``, or (None) their lowest account. A user's accounts are never
        taken away, and new ones take higher ids (one ascending sequence), so a known
        account stays theirs and their lowest stays lowest; an account not known yet is
        read again."""
        known = self._owned.get(user_id)
        if known and (account_id is None or account_id in known):
            return known
        found = await self.accounts_of(user_id)
        if found:
            if len(self._owned) >= OWNERS_KNOWN_MAX:
                self._owned.clear()
            self._owned[user_id] = found
        return found

    async def owner(self, account_id: int) -> int | None:
        value = await self.pool.fetchval(
            f"SELECT user_id FROM {self.s}.accounts WHERE account_id = $1", account_id
        )
        return None if value is None else int(value)

    async def all_accounts(self, after: int, limit: int) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            f"SELECT a.account_id, a.user_id, u.username FROM {self.s}.accounts a "
            f"JOIN {self.s}.users u USING (user_id) WHERE a.account_id > $1 "
            "ORDER BY a.account_id LIMIT $2",
            after, limit,
        )  # fmt: skip
        return rows

    # -- API keys ------------------------------------------------------------------------

    async def add_key(self, row: dict[str, Any]) -> bool:
        """False when the user has :data:`KEYS_PER_USER_MAX` live keys already."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", row["user_id"])
            live = await conn.fetchval(
                f"SELECT count(*) FROM {self.s}.api_keys WHERE user_id = $1 AND revoked_ns IS NULL",
                row["user_id"],
            )
            if live >= KEYS_PER_USER_MAX:
                return False
            columns = ", ".join(row)
            places = ", ".join(f"${i}" for i in range(1, len(row) + 1))
            await conn.execute(
                f"INSERT INTO {self.s}.api_keys ({columns}) VALUES ({places})", *row.values()
            )
        return True

    async def key(self, key_hash: bytes) -> asyncpg.Record | None:
        """A live key with its user's roles (None if unknown, revoked or the user inactive)."""
        row: asyncpg.Record | None = await self.pool.fetchrow(
            f"SELECT k.*, u.roles, u.active FROM {self.s}.api_keys k JOIN {self.s}.users u "
            "USING (user_id) WHERE k.key_hash = $1 AND k.revoked_ns IS NULL AND u.active",
            key_hash,
        )
        return row

    async def keys_of(self, user_id: int) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            f"SELECT key_id, account_id, permissions, ip_allow, label, created_ns, revoked_ns "
            f"FROM {self.s}.api_keys WHERE user_id = $1 ORDER BY created_ns",
            user_id,
        )
        return rows

    async def revoke_key(self, user_id: int, key_id: str, now_ns: int) -> bool:
        done = await self.pool.execute(
            f"UPDATE {self.s}.api_keys SET revoked_ns = $3 WHERE user_id = $1 AND key_id = $2 "
            "AND revoked_ns IS NULL",
            user_id, key_id, now_ns,
        )  # fmt: skip
        return str(done).endswith(" 1")

    # -- JWT signing keys ----------------------------------------------------------------

    async def signing_keys(self) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            f"SELECT * FROM {self.s}.signing_keys WHERE retired_ns IS NULL ORDER BY created_ns"
        )
        return rows

    async def add_signing_key(self, kid: str, sealed: bytes, jwk: str, now_ns: int) -> None:
        await self.pool.execute(
            f"INSERT INTO {self.s}.signing_keys VALUES ($1, $2, $3::jsonb, $4, NULL)",
            kid, sealed, jwk, now_ns,
        )  # fmt: skip

    async def retire_signing_keys(self, kids: Sequence[str], now_ns: int) -> None:
        await self.pool.execute(
            f"UPDATE {self.s}.signing_keys SET retired_ns = $2 WHERE kid = ANY($1::text[])",
            list(kids), now_ns,
        )  # fmt: skip

    # -- commands sent -------------------------------------------------------------------

    async def claim_command(
        self, scope: str, command_id: str, request_hash: bytes, user_id: int, kind: str,
        now_ns: int,
    ) -> str:  # fmt: skip
        """``new`` (recorded now), ``same`` (a retry of the same request) or ``conflict``
        (this id was used for another request). Claims made while one statement is in
        flight go together in the next (one round trip and one commit for all of them)."""
        return await self._claims.submit((scope, command_id, request_hash, user_id, kind, now_ns))

    async def _claim_many(self, claims: list[Claim]) -> list[str]:
        """The outcome of each claim, recorded in one statement (a repeated id in the
        batch: the first is claimed, the later ones compared with it)."""
        first: dict[tuple[str, str], int] = {}  # (scope, id) -> index in unique
        unique: list[Claim] = []
        repeated: list[bool] = []  # per claim: its id came earlier in the batch
        for claim in claims:
            repeated.append(claim[:2] in first)
            if not repeated[-1]:
                first[claim[:2]] = len(unique)
                unique.append(claim)
        columns = [list(column) for column in zip(*unique, strict=True)]
        rows = await self.pool.fetch(
            f"""WITH input AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[],
                                     $5::text[], $6::bigint[])
                    WITH ORDINALITY AS t(scope, command_id, request_hash, user_id, kind,
                                         created_ns, n)),
            put AS (INSERT INTO {self.s}.commands
                SELECT scope, command_id, request_hash, user_id, kind, created_ns FROM input
                ON CONFLICT DO NOTHING RETURNING scope, command_id)
            SELECT put.command_id IS NOT NULL, c.request_hash, c.user_id
            FROM input
            LEFT JOIN put ON put.scope = input.scope AND put.command_id = input.command_id
            LEFT JOIN {self.s}.commands c
                ON c.scope = input.scope AND c.command_id = input.command_id
            ORDER BY input.n""",
            *columns,
        )  # fmt: skip
        stored: list[tuple[bytes, int] | None] = [
            None if fresh else (found_hash, found_user) for fresh, found_hash, found_user in rows
        ]
        # skipped, yet not in the statement's snapshot: another worker's claim committed
        # while this one waited for it; a new statement sees it
        unseen = [k for k, (fresh, found_hash, _u) in enumerate(rows)
                  if not fresh and found_hash is None]  # fmt: skip
        if unseen:
            again = await self.pool.fetch(
                f"""SELECT c.scope, c.command_id, c.request_hash, c.user_id
                FROM unnest($1::text[], $2::text[]) AS t(scope, command_id)
                JOIN {self.s}.commands c USING (scope, command_id)""",
                [unique[k][0] for k in unseen], [unique[k][1] for k in unseen],
            )  # fmt: skip
            found = {(r[0], r[1]): (r[2], r[3]) for r in again}
            for k in unseen:
                stored[k] = found[unique[k][:2]]
        outcomes = []
        for claim, again in zip(claims, repeated, strict=True):
            j = first[claim[:2]]
            was = (unique[j][2], unique[j][3]) if again else stored[j]
            if was is None:
                outcomes.append("new")
            elif was == (claim[2], claim[3]):
                outcomes.append("same")
            else:
                outcomes.append("conflict")
        return outcomes
