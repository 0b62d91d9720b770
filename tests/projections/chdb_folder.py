"""A chdb folder of a test's own (the projector tests hand folders between processes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradex.infra.clickhouse import ChdbClickHouse
from tradex.infra.settings import Settings


def private_folder(settings: Settings, folder: Path) -> Iterator[Settings]:
    """``settings`` with a chdb folder of its own, which this process keeps open only
    while it uses it (a projector subprocess may take it in between); released after."""
    if settings.clickhouse_url:
        pytest.fail("these tests run on chdb; unset TRADEX_CLICKHOUSE_URL")
    isolated = dataclasses.replace(settings, clickhouse_path=folder)
    yield isolated
    ChdbClickHouse.release(folder)
