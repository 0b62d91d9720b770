"""Redis connection helpers (redis-py), driven by settings only."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
from redis.driver_info import DriverInfo

from tradex.infra.reachable import require_redis
from tradex.infra.settings import Settings

socket_timeout_s = 5.0
databases_max = 16  # redis-server default `databases`
# What each new connection tells the server (CLIENT SETINFO), made once: left to redis-py,
# every connection of a growing pool looked its version up in the installed packages'
# metadata (importlib.metadata: ~3 ms of CPU each, 9 % of the API's under an order burst).
_DRIVER_INFO = DriverInfo()


def url(settings: Settings, db: int | None) -> str:
    """settings.redis_url, or the same server with another logical database."""
    if db is None:
        return settings.redis_url
    assert 0 <= db < databases_max, db
    parts = urlsplit(settings.redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def client(settings: Settings, db: int | None = None) -> redis.Redis:
    """A synchronous client for settings' Redis (optionally another logical db)."""
    require_redis(settings)
    return redis.Redis.from_url(
        url(settings, db), socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s, driver_info=_DRIVER_INFO,
    )  # fmt: skip


def async_client(
    settings: Settings, db: int | None = None, max_connections: int | None = None
) -> redis.asyncio.Redis:
    """An asyncio client for settings' Redis (optionally another logical db); its pool holds
    at most ``max_connections`` (redis-py's default: 100; one more raises)."""
    require_redis(settings)
    return redis.asyncio.Redis.from_url(
        url(settings, db), socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s, max_connections=max_connections,
        driver_info=_DRIVER_INFO,
    )  # fmt: skip
