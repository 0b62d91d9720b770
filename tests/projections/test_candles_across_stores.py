"""Candles from the timescale read model (PostgreSQL) equal candles computed in ClickHouse
from the same trades, at every interval the timescale model keeps."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest

from tests.projections.contract import run_version
from tests.projections.exchange import Exchange
from tradex.infra import postgres
from tradex.infra.clickhouse import ChdbClickHouse
from tradex.infra.settings import Settings
from tradex.projections import timescale
from tradex.projections.analytics import Analytics
from tradex.projections.projector import namespace

pytestmark = pytest.mark.integration

Candle = tuple[
    int, int, int, int, int, int, int
]  # bucket ns, open, high, low, close, volume, trades


@pytest.fixture
def both(
    exchange: Exchange, pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    folder = tmp_path_factory.mktemp("candles") / "chdb"
    settings = dataclasses.replace(
        exchange.settings, postgres_db=pg_database, clickhouse_path=folder
    )
    run_version(settings, "timescale", 1, batch_records=97, live=True)
    run_version(settings, "clickhouse", 1, batch_records=89, live=True)
    yield settings
    ChdbClickHouse.release(folder)


def timescale_candles(settings: Settings, interval: str) -> dict[int, list[Candle]]:
    async def read() -> list[tuple[int, ...]]:
        conn = await postgres.connect(settings)
        try:
            rows = await conn.fetch(
                "SELECT instrument_id, (extract(epoch FROM bucket) * 1e9)::bigint, open, high, "
                f"low, close, volume, trades FROM {namespace(settings, 'timescale')}.candles_"
                f"{interval} ORDER BY instrument_id, bucket"
            )
        finally:
            await conn.close()
        return [tuple(r) for r in rows]

    found: dict[int, list[Candle]] = {}
    for instrument, *candle in asyncio.run(read()):
        found.setdefault(instrument, []).append(tuple(candle))  # type: ignore[arg-type]
    return found


def test_candles_agree_between_postgres_and_clickhouse(both: Settings) -> None:
    analytics = Analytics(both)
    for interval in timescale.INTERVALS:
        ours = timescale_candles(both, interval.name)
        assert ours, "no candles: the exchange traded nothing"
        for instrument, candles in ours.items():
            rows = analytics.candles(instrument, interval.name).arrow().to_pylist()
            theirs = [
                (r["bucket_ns"], r["open"], r["high"], r["low"], r["close"], r["volume_lots"],
                 r["trades"])
                for r in rows
            ]  # fmt: skip
            assert theirs == candles, (interval.name, instrument)
