"""The ``timescale`` read model (trades + candles) on plain PostgreSQL, and the SQL of the
TimescaleDB path checked by PostgreSQL's own parser."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pglast
import pytest

from tests.projections.contract import PostgresContract, decoded, run_version
from tradex.domain import engine
from tradex.infra import postgres
from tradex.infra.settings import Settings
from tradex.projections import timescale
from tradex.projections.projector import namespace

pytestmark = pytest.mark.integration


class TestTimescaleContract(PostgresContract):
    name: ClassVar[str] = "timescale"


def expected_candles(trades: list[Any], seconds: int) -> dict[tuple[int, int], tuple[int, ...]]:
    """Candles computed the obvious way: trades in trade-id order, bucketed by time."""
    width = seconds * 1_000_000_000
    found: dict[tuple[int, int], list[int]] = {}
    for t in sorted(trades, key=lambda t: t.trade_id):
        key = (t.instrument_id, t.event_time_ns - t.event_time_ns % width)
        c = found.get(key)
        if c is None:
            found[key] = [t.price, t.price, t.price, t.price, t.qty, t.price * t.qty, 1]
        else:
            c[1], c[2], c[3] = max(c[1], t.price), min(c[2], t.price), t.price
            c[4], c[5], c[6] = c[4] + t.qty, c[5] + t.price * t.qty, c[6] + 1
    return {key: tuple(c) for key, c in found.items()}


async def _candles(settings: Settings, interval: str) -> list[Any]:
    conn = await postgres.connect(settings)
    try:
        rows = await conn.fetch(
            f"SELECT instrument_id, bucket, open, high, low, close, volume, quote_volume, trades "
            f"FROM {namespace(settings, 'timescale')}.candles_{interval}"
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


def test_candles_of_every_interval_equal_the_trades_bucketed(pg: Settings) -> None:
    run_version(pg, "timescale", 1, batch_records=53, live=True)
    trades = [e.body for e in decoded(pg, ("engine-events",)) if type(e.body) is engine.Trade]
    assert len(trades) > 50
    for interval in timescale.INTERVALS:
        rows = asyncio.run(_candles(pg, interval.name))
        found = {
            (instrument, int(bucket.timestamp()) * 1_000_000_000): (o, h, lo, c, v, int(q), n)
            for instrument, bucket, o, h, lo, c, v, q, n in rows
        }
        assert found == expected_candles(trades, interval.seconds), interval.name


def test_the_timescaledb_path_is_valid_postgresql_for_every_interval() -> None:
    statements = timescale.timescale_ddl("ns_v1")
    for statement in statements:
        pglast.parse_sql(statement)  # raises ParseError on a syntax error
    text = "\n".join(statements)
    assert "create_hypertable('ns_v1.trades', 'time'" in text
    for interval in timescale.INTERVALS:
        assert f"ns_v1.candles_{interval.name}\n" in text
        assert f"time_bucket(INTERVAL '{interval.sql}', time)" in text
    # the readers' query is the same on both paths (views named alike)
    pglast.parse_sql(timescale.candles_sql("ns", "1h"))
