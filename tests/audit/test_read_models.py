"""``tradex audit verify --read-models``: the live PostgreSQL read model against the log."""

from __future__ import annotations

import dataclasses

import pytest

from tests.audit.tamper import CODEC
from tests.projections.contract import run_version
from tests.projections.exchange import Exchange
from tests.projections.test_postgres import fetch
from tradex.audit.cli import check_read_models
from tradex.audit.verify import verify
from tradex.log.source import KafkaLog
from tradex.projections.projector import namespace

pytestmark = pytest.mark.integration


def test_a_drifted_read_model_is_reported(audit_exchange: Exchange, pg_database: str) -> None:
    pg = dataclasses.replace(audit_exchange.settings, postgres_db=pg_database)
    run_version(pg, "postgres", 1, live=True)

    def read_models(report: object) -> None:
        check_read_models(pg, ["postgres"], report, False)

    with KafkaLog(pg) as log:
        clean = verify(log, CODEC, progress=False, rerun=False, read_models=read_models)
    assert clean.ok, clean.text()
    assert clean.counts["read_model"] == 0
    schema = f"{namespace(pg, 'postgres')}_v1"  # the live version's tables
    fetch(pg, f"UPDATE {schema}.balances SET available = available + 1 WHERE account_id = 1 "
              "AND asset = 'USD' RETURNING account_id")  # fmt: skip
    with KafkaLog(pg) as log:
        drifted = verify(log, CODEC, progress=False, rerun=False, read_models=read_models)
    assert not drifted.ok
    found = [v for v in drifted.violations if v.check == "read_model"]
    assert found and found[0].topic == "postgres" and "balances" in found[0].message
