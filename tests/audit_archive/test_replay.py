"""Round trip: export -> replay (no Kafka read) gives read models equal to the live ones."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest

from tests.audit_archive.conftest import Audited
from tests.projections.contract import digests
from tradex.audit import replay as replay_module
from tradex.audit.replay import replay, replay_settings
from tradex.infra import postgres
from tradex.infra.settings import Settings
from tradex.log.archive import ArchiveError
from tradex.projections import admin

pytestmark = pytest.mark.integration


def test_replay_equals_the_live_read_models(
    audited: Audited, pg_database: str, tmp_path: Path
) -> None:
    live = dataclasses.replace(audited.settings, postgres_db=pg_database)
    expected = {}
    for name in ("clickhouse", "postgres"):
        projector, stats = admin.rebuild(live, name, show_progress=False)
        assert stats.events > 1_000
        expected[name] = digests(live, name, projector.version)
    other_db = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(postgres.create_database(audited.settings, other_db))
    try:
        # Kafka unreachable: the replay must not need it
        offline = dataclasses.replace(
            audited.settings, postgres_db=other_db, kafka_bootstrap="127.0.0.1:9", topic_prefix="none-"
        )  # fmt: skip
        out = tmp_path / "models"
        results = replay(
            audited.archive, offline, ("clickhouse", "postgres"), out, show_progress=False
        )
        replayed_settings: Settings = replay_settings(offline, out)
        for name in ("clickhouse", "postgres"):
            assert results[name].events > 1_000
            positions, tables = digests(replayed_settings, name, 1)
            assert sum(rows for rows, _digest in tables.values()) > 1_000, tables
            assert tables == expected[name][1], name
            assert positions == expected[name][0], name
    finally:
        asyncio.run(postgres.drop_database(audited.settings, other_db))


def test_replay_refuses_an_archive_without_the_topics(
    audited: Audited, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradex.audit.export import export

    partial = tmp_path / "partial"
    export(audited.settings, partial, topics=["reference-events"], show_progress=False)
    with pytest.raises(ArchiveError, match="needs account-events"):
        replay(partial, audited.settings, ("clickhouse",), tmp_path / "out", show_progress=False)
    assert replay_module.main([str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err
