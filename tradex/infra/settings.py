"""Settings from environment variables, with defaults for the local stack.

The same code runs against the local stack, compose.yaml or a remote cluster: only these
variables change. Every variable is prefixed ``TRADEX_``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"TRADEX_{name}", default)


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"TRADEX_{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Where every service is. Built once per process by :func:`load`."""

    stack_dir: Path
    kafka_bootstrap: str
    kafka_port_base: int
    kafka_brokers: int
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    postgres_db: str
    redis_url: str
    redis_port: int
    clickhouse_url: str  # empty: embedded chdb at clickhouse_path
    clickhouse_path: Path
    schema_registry_url: str  # empty: the file-backed offline registry under stack_dir
    topic_partitions: int
    topic_prefix: str
    # /metrics of each long-running process: a port (0: any free one) or None (off); the
    # address it binds; where the endpoints are listed (None: <stack_dir>/run/metrics).
    metrics_port: int | None = 0
    metrics_host: str = "127.0.0.1"
    metrics_targets_dir: Path | None = None

    @property
    def postgres_dsn(self) -> str:
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}"
            f"@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"
        )

    def topic(self, name: str) -> str:
        """The real topic name for a logical one (a prefix isolates tests and tenants)."""
        return f"{self.topic_prefix}{name}"


def metrics_port(raw: str, what: str = "TRADEX_METRICS_PORT") -> int | None:
    """``off`` → None; a port 0..65535 (0: any free one); anything else: ValueError."""
    text = raw.strip().lower()
    if text == "off":
        return None
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a port (0: any free one) or 'off', got {raw!r}") from None
    if not 0 <= port < 65536:
        raise ValueError(f"{what} must be 0..65535 or 'off', got {port}")
    return port


def load() -> Settings:
    stack_dir = Path(_env("STACK_DIR", str(REPO_ROOT / ".stack"))).resolve()
    kafka_port_base = _env_int("KAFKA_PORT", 19092)
    brokers = _env_int("KAFKA_BROKERS", 1)
    default_bootstrap = ",".join(f"127.0.0.1:{kafka_port_base + 10 * i}" for i in range(brokers))
    postgres_port = _env_int("POSTGRES_PORT", 15432)
    redis_port = _env_int("REDIS_PORT", 16379)
    return Settings(
        stack_dir=stack_dir,
        kafka_bootstrap=_env("KAFKA_BOOTSTRAP", default_bootstrap),
        kafka_port_base=kafka_port_base,
        kafka_brokers=brokers,
        postgres_host=_env("POSTGRES_HOST", "127.0.0.1"),
        postgres_port=postgres_port,
        postgres_user=_env("POSTGRES_USER", "tradex"),
        postgres_password=_env("POSTGRES_PASSWORD", "tradex"),
        postgres_db=_env("POSTGRES_DB", "tradex"),
        redis_url=_env("REDIS_URL", f"redis://127.0.0.1:{redis_port}/0"),
        redis_port=redis_port,
        clickhouse_url=_env("CLICKHOUSE_URL", ""),
        clickhouse_path=Path(_env("CLICKHOUSE_PATH", str(stack_dir / "clickhouse"))),
        schema_registry_url=_env("SCHEMA_REGISTRY_URL", ""),
        topic_partitions=_env_int("TOPIC_PARTITIONS", 4),
        topic_prefix=_env("TOPIC_PREFIX", ""),
        metrics_port=metrics_port(_env("METRICS_PORT", "0")),
        metrics_host=_env("METRICS_HOST", "127.0.0.1"),
        metrics_targets_dir=Path(targets) if (targets := _env("METRICS_TARGETS_DIR", "")) else None,
    )
