"""What every request handler reaches: stores, readers, command clients, the clock.

Opened once per worker in the app's lifespan (:meth:`Services.open`), closed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio

from tradex.audit.roles import role_history, users_at
from tradex.commands.async_client import ACCOUNTS, REFERENCE, AsyncCommandClient
from tradex.infra import postgres, redis_client
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.projections.pg_read import CandleReader, PostgresReader
from tradex.projections.projector import namespace
from tradex.projections.redis_read import AsyncMarketReader
from tradex.queries import master_key
from tradex.queries.auth_store import AuthStore, schema_name
from tradex.queries.config import ApiConfig
from tradex.queries.listen_keys import ListenKeys
from tradex.queries.markets import Catalog
from tradex.queries.passwords import Passwords
from tradex.queries.rate_limits import RateLimiter
from tradex.queries.sessions import Sessions
from tradex.queries.signatures import ReplayGuard
from tradex.queries.tokens import TokenKeys
from tradex.schemas.codec import Codec
from tradex.schemas.remote import codec_from_settings

log = logging.getLogger(__name__)

POOL_CONNECTIONS_MAX = 10
REDIS_CONNECTIONS_MAX = 2_048


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """A released connection goes back to the pool as it is: the API sets no session state
    (no SET, LISTEN or session advisory lock; an open transaction is still rolled back by
    asyncpg), so the default reset — one more round trip per query — has nothing to undo."""


@dataclass
class Services:
    settings: Settings
    config: ApiConfig
    clock_ns: Callable[[], int]
    pool: asyncpg.Pool
    redis: redis.asyncio.Redis
    store: AuthStore
    master: master_key.MasterKey
    tokens: TokenKeys
    sessions: Sessions
    passwords: Passwords
    replays: ReplayGuard
    limiter: RateLimiter
    market: AsyncMarketReader
    ledger: PostgresReader
    candles: CandleReader
    catalog: Catalog
    accounts: AsyncCommandClient
    reference: AsyncCommandClient
    listen_keys: ListenKeys
    fanout: Any = None  # the WebSocket fan-out (ws_fanout.Fanout), set by the app
    reconciling: asyncio.Task[None] | None = None  # reconcile_roles every roles_reconcile_s

    @classmethod
    async def open(
        cls, settings: Settings, config: ApiConfig, clock_ns: Callable[[], int] = time.time_ns
    ) -> Services:
        pool = await asyncpg.create_pool(
            postgres.dsn(settings), min_size=1, max_size=POOL_CONNECTIONS_MAX, reset=_no_reset
        )
        assert pool is not None
        # room for a burst of concurrent requests (redis-py fails beyond its pool; a
        # blocking pool costs ~6 % of a read's CPU in its wait/notify)
        conn = redis_client.async_client(settings, max_connections=REDIS_CONNECTIONS_MAX)
        store = AuthStore(pool, schema_name(settings))
        await store.ensure_schema()
        master = master_key.MasterKey(master_key.load_or_create(config.master_key_path))
        tokens = TokenKeys(
            store, master, config.access_token_ttl_s, config.signing_key_rotate_s, clock_ns
        )
        await tokens.load()
        ns = namespace(settings, "api")
        market = AsyncMarketReader(settings, conn)
        codec = await asyncio.to_thread(codec_from_settings, settings)
        accounts = await AsyncCommandClient.open(settings, ACCOUNTS, codec, "api")
        reference = await AsyncCommandClient.open(settings, REFERENCE, codec, "api-reference")
        services = cls(
            settings=settings, config=config, clock_ns=clock_ns, pool=pool, redis=conn,
            store=store, master=master, tokens=tokens,
            sessions=Sessions(conn, ns, config.refresh_token_ttl_s, clock_ns),
            passwords=Passwords(config.argon2_time_cost, config.argon2_memory_kib,
                                config.argon2_parallelism),
            replays=ReplayGuard(conn, ns), limiter=RateLimiter(conn, ns), market=market,
            ledger=PostgresReader(settings), candles=CandleReader(settings),
            catalog=Catalog(market.instruments, market.assets),
            accounts=accounts, reference=reference, listen_keys=ListenKeys(conn, ns),
        )  # fmt: skip
        await services.reconcile_roles(codec)
        services.reconciling = asyncio.get_running_loop().create_task(
            services._reconcile_every(codec, config.roles_reconcile_s)
        )
        return services

    async def _reconcile_every(self, codec: Codec, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.reconcile_roles(codec)
            except Exception as exc:  # PostgreSQL or Kafka away: the next period tries again
                log.warning("roles: reconciling with the log failed: %s", exc)

    async def reconcile_roles(self, codec: Codec) -> list[int]:
        """Make the auth schema's roles the log's, at a worker's start and then every
        ``roles_reconcile_s`` while it runs. A role change is
        written to the log, then mirrored here (``auth_routes.change_user_roles``, ``tradex
        api set-roles``): a process that died between the two left the mirror behind the
        log, and the mirror is what tokens and API keys carry. Each user whose mirrored
        roles differ from ``reference-events``' gets the log's (compare and set: a change
        another worker mirrored meanwhile stays) and loses their sessions, as a change
        through the API does. The users changed."""
        mirrored = await self.store.mirrored_roles()
        logged = await asyncio.to_thread(_logged_roles, self.settings, codec)
        changed = []
        for user_id, before in mirrored.items():
            roles = logged.get(user_id)
            if roles is None or sorted(before) == roles:
                continue
            if await self.store.set_roles_if(user_id, roles, before):
                await self.sessions.revoke_all(user_id)
                changed.append(user_id)
                log.warning("user %d: roles %s -> %s, as the log has them", user_id,
                            ",".join(before), ",".join(roles))  # fmt: skip
        return changed

    async def close(self) -> None:
        if self.reconciling is not None:
            self.reconciling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reconciling
        await self.accounts.aclose()
        await self.reference.aclose()
        await self.limiter.aclose()
        await self.redis.aclose()
        await self.pool.close()

    async def fetch(self, call: Any) -> Any:
        """Run ``call(conn)`` on a pooled connection (readers take a connection)."""
        async with self.pool.acquire() as conn:
            return await call(conn)


def _logged_roles(settings: Settings, codec: Codec) -> dict[int, list[str]]:
    """Every registered user's roles as ``reference-events`` has them now (sorted)."""
    with KafkaLog(settings) as source:
        users = users_at(role_history(source, codec))
    return {user.user_id: sorted(role for role in user.roles.split(",") if role) for user in users}
