"""One line when a service is down: which one, where it was expected, what starts it.

The connection helpers (:mod:`tradex.infra.kafka`, :mod:`tradex.infra.postgres`,
:mod:`tradex.infra.redis_client`) call :func:`require` before they hand out a client, so a
command run with the stack down fails at once with :class:`ServiceUnavailable` instead of a
client library's retries, log lines or hang; ``tradex/cli.py`` prints its message as one
line and exits 1. A check is one TCP connect; a success is remembered for
``success_ttl_s`` so a process creating many clients pays it rarely.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

from tradex.infra.local_process import port_open
from tradex.infra.settings import Settings

success_ttl_s = 5.0
connect_timeout_s = 1.0
STACK_UP = "tradex stack up"

_checked: dict[tuple[str, int], float] = {}  # (host, port) -> when it last answered
_lock = threading.Lock()


class ServiceUnavailable(Exception):
    """A service a command needs does not answer. Not a RuntimeError or OSError on purpose:
    code that reads those as "no such topic" or "not yet" must not swallow it."""

    def __init__(self, service: str, where: str, start: str, state: str = "not reachable") -> None:
        assert service, "which service"
        assert where, "where it was expected"
        self.service, self.where, self.start = service, where, start
        super().__init__(f"{service} is {state} at {where}: start it with `{start}`")


def host_port(address: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or a bare host) as a pair; IPv6 literals in brackets."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or "]" in port:
        return address.strip().strip("[]"), default_port
    return host.strip("[]"), int(port)


def answers(host: str, port: int) -> bool:
    """True when host:port accepts a TCP connection (a recent success is trusted)."""
    key = (host, port)
    now = time.monotonic()
    with _lock:
        if now - _checked.get(key, -success_ttl_s) < success_ttl_s:
            return True
    if not port_open(host, port, connect_timeout_s):
        return False
    with _lock:
        _checked[key] = now
    return True


def require(service: str, addresses: list[tuple[str, int]], start: str = STACK_UP) -> None:
    """Raise :class:`ServiceUnavailable` unless one of ``addresses`` answers."""
    assert addresses, service
    if any(answers(host, port) for host, port in addresses):
        return
    where = ", ".join(f"{host}:{port}" for host, port in addresses)
    raise ServiceUnavailable(service, where, start)


def require_kafka(settings: Settings) -> None:
    brokers = [host_port(a, 9092) for a in settings.kafka_bootstrap.split(",") if a.strip()]
    require("Kafka", brokers)


def require_postgres(settings: Settings) -> None:
    require("PostgreSQL", [(settings.postgres_host, settings.postgres_port)])


def require_redis(settings: Settings) -> None:
    parts = urlsplit(settings.redis_url)
    if parts.scheme == "unix":
        return  # a socket path: redis-py's own error names it
    require("Redis", [(parts.hostname or "127.0.0.1", parts.port or 6379)])


def require_clickhouse(settings: Settings) -> None:
    """A ClickHouse server, when one is configured (chdb is in-process: nothing to reach)."""
    if not settings.clickhouse_url:
        return
    parts = urlsplit(settings.clickhouse_url)
    require("ClickHouse", [(parts.hostname or "127.0.0.1", parts.port or 8123)],
            "start the ClickHouse server of TRADEX_CLICKHOUSE_URL")  # fmt: skip


REQUIRES = {
    "kafka": require_kafka,
    "postgres": require_postgres,
    "redis": require_redis,
    "clickhouse": require_clickhouse,
}


def require_stack(settings: Settings, services: tuple[str, ...]) -> None:
    """Each of ``services`` (names of :data:`REQUIRES`) answers, for a process that opens
    its connections later on threads or another event loop."""
    for name in services:
        REQUIRES[name](settings)


def require_group_member(settings: Settings, group: str, service: str, start: str) -> None:
    """Raise :class:`ServiceUnavailable` when consumer group ``group`` (logical name) has no
    member: the TradeX process that should answer a command is not running. Asked after a
    command went unanswered (a describe costs a broker round trip); an answer that cannot be
    had says nothing (no error)."""
    from confluent_kafka.admin import AdminClient

    require_kafka(settings)
    group_id = settings.topic(group)
    try:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
        found = admin.describe_consumer_groups([group_id], request_timeout=5)[group_id].result()
    except Exception:  # the broker busy or the group unknown: the timeout stands
        return
    if found.members:
        return
    env = f"TRADEX_TOPIC_PREFIX={settings.topic_prefix} " if settings.topic_prefix else ""
    raise ServiceUnavailable(service, f"consumer group {group_id!r} on {settings.kafka_bootstrap}",
                             f"{env}{start}", state="not running (no member)")  # fmt: skip
