"""The API's own settings: listen address, token lifetimes, lockout, rate limits, argon2.

Read from ``TRADEX_API_*`` environment variables (the stack's settings stay in
:mod:`tradex.infra.settings`); ``tradex run api`` flags override host, port and workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tradex.infra.settings import Settings


def _int(name: str, default: int) -> int:
    raw = os.environ.get(f"TRADEX_API_{name}", str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"TRADEX_API_{name} must be an integer, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"TRADEX_API_{name} must be >= 0, got {value}")
    return value


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` weight per ``window_s`` seconds, per key (or user) and per IP."""

    name: str  # the bucket: read | order | auth
    limit: int
    window_s: int


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 18080
    workers: int = 1
    access_token_ttl_s: int = 900  # 15 min
    refresh_token_ttl_s: int = 30 * 86_400
    signing_key_rotate_s: int = 7 * 86_400  # a new JWT signing key after this long
    login_failures_max: int = 5  # then the user is locked out
    lockout_s: int = 900
    recv_window_ms_max: int = 60_000
    recv_window_ms_default: int = 5_000
    clock_skew_ms_max: int = 1_000  # a timestamp at most this far ahead of the server
    command_timeout_s: float = 10.0
    cancel_wait_s: float = 2.0  # a cancel waits this long for the order to leave the book
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65_536
    argon2_parallelism: int = 1
    ws_queue_max: int = 1_000  # messages queued for one WebSocket client before it is dropped
    # how often an open WebSocket looks its credential up again (listenKey, API key,
    # session): a revoked or expired one ends its private streams within this long
    ws_auth_check_ms: int = 5_000
    # how often a worker makes the auth schema's roles the log's again (besides at its
    # start: Services.reconcile_roles), so a mirror left behind by a process that died
    # between the two writes is caught up by the workers still running
    roles_reconcile_s: int = 60
    master_key_path: Path = field(default_factory=lambda: Path(".stack/api/master.key"))
    # TRADEX_API_PROFILE_PATH: cProfile the worker's event loop from start-up to shutdown
    # and write the stats to <path>.<the worker's pid> (pstats reads them). Not
    # `python -m cProfile`: uvicorn re-raises SIGTERM after its graceful shutdown, so such
    # a process dies before cProfile writes anything.
    profile_path: Path | None = None
    rate_limits: tuple[RateLimit, ...] = (
        RateLimit("read", 6_000, 60),
        RateLimit("order", 100, 10),
        RateLimit("auth", 30, 60),
    )

    def limit(self, name: str) -> RateLimit:
        for found in self.rate_limits:
            if found.name == name:
                return found
        raise KeyError(name)


def load(settings: Settings) -> ApiConfig:
    """The config from the environment; the master key lives in the stack dir by default."""
    master = os.environ.get("TRADEX_API_MASTER_KEY_PATH", "")
    config = ApiConfig(
        host=os.environ.get("TRADEX_API_HOST", "127.0.0.1"),
        port=_int("PORT", 18080),
        access_token_ttl_s=_int("ACCESS_TOKEN_TTL_S", 900),
        refresh_token_ttl_s=_int("REFRESH_TOKEN_TTL_S", 30 * 86_400),
        signing_key_rotate_s=_int("SIGNING_KEY_ROTATE_S", 7 * 86_400),
        login_failures_max=_int("LOGIN_FAILURES_MAX", 5),
        lockout_s=_int("LOCKOUT_S", 900),
        argon2_time_cost=_int("ARGON2_TIME_COST", 3),
        argon2_memory_kib=_int("ARGON2_MEMORY_KIB", 65_536),
        ws_queue_max=_int("WS_QUEUE_MAX", 1_000),
        ws_auth_check_ms=_int("WS_AUTH_CHECK_MS", 5_000),
        roles_reconcile_s=_int("ROLES_RECONCILE_S", 60),
        master_key_path=Path(master) if master else settings.stack_dir / "api" / "master.key",
        profile_path=Path(profile)
        if (profile := os.environ.get("TRADEX_API_PROFILE_PATH"))
        else None,
        rate_limits=(
            RateLimit("read", _int("READ_WEIGHT_PER_MIN", 6_000), 60),
            RateLimit("order", _int("ORDERS_PER_10S", 100), 10),
            RateLimit("auth", _int("AUTH_PER_MIN", 30), 60),
        ),
    )
    assert config.access_token_ttl_s > 0, "access tokens must live > 0 s"
    assert config.login_failures_max > 0, "login_failures_max must be > 0"
    assert config.ws_queue_max > 0, "TRADEX_API_WS_QUEUE_MAX must be > 0"
    assert config.ws_auth_check_ms > 0, "TRADEX_API_WS_AUTH_CHECK_MS must be > 0"
    assert config.roles_reconcile_s > 0, "TRADEX_API_ROLES_RECONCILE_S must be > 0"
    return config
