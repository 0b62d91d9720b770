"""Every read model by name (the names of `tradex run projector NAME`)."""

from __future__ import annotations

import importlib

from tradex.projections.projector import Projector

# name -> "module:class" (imported on use: a Redis projector does not load chdb)
PROJECTORS: dict[str, str] = {
    "postgres": "tradex.projections.postgres:PostgresReadModel",
    "redis": "tradex.projections.market:RedisReadModel",
    "clickhouse": "tradex.projections.analytics_model:ClickHouseReadModel",
    "timescale": "tradex.projections.timescale:TimescaleReadModel",
}

# The store each read model writes (tradex.infra.reachable's names).
STORES: dict[str, str] = {
    "postgres": "postgres",
    "redis": "redis",
    "clickhouse": "clickhouse",
    "timescale": "postgres",
}


def projector_class(name: str) -> type[Projector]:
    """The projector class called ``name``; KeyError naming the known ones otherwise."""
    target = PROJECTORS.get(name)
    if target is None:
        raise KeyError(f"no projector {name!r}; known: {', '.join(sorted(PROJECTORS))}")
    module_name, _, class_name = target.partition(":")
    cls: type[Projector] = getattr(importlib.import_module(module_name), class_name)
    assert cls.name == name, (cls.name, name)
    return cls
