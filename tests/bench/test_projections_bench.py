"""`tradex bench projections`: a quick run end to end, the log's own lag beside the projector's."""

from __future__ import annotations

import json

import pytest

from tradex.bench.log_lag import main as log_lag_main
from tradex.bench.projections import main


def test_the_log_reader_refuses_a_missing_stats_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert log_lag_main([]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.heavy  # a benchmark run: `./dev test --heavy`
def test_quick_projections_bench_reports_the_log_floor_beside_the_projector(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--quick", "--only", "redis"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bench"] == "projections"
    assert summary["ok"] is True, summary["notes"]
    assert code == 0
    figures = summary["figures"]
    assert figures["log_lag_p99_ms"] >= figures["log_lag_p50_ms"] >= 0
    # the reader applies nothing, so no record reaches it later than the projector applies it
    assert figures["lag_p99_ms_by_projector"]["redis"] >= figures["log_lag_p50_ms"]
