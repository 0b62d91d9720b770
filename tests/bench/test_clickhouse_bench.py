"""`tradex bench clickhouse --quick` runs end to end and its checks pass (never speed)."""

from __future__ import annotations

import json

import pytest

from tradex.bench.clickhouse import main

pytestmark = pytest.mark.integration


@pytest.mark.heavy  # a benchmark run: `./dev test --heavy`
def test_quick_clickhouse_bench_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--quick", "--commands", "1000", "--accounts", "100"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bench"] == "clickhouse"
    assert summary["ok"] is True, summary["notes"]
    assert code == 0
    figures = summary["figures"]
    assert figures["events"] > 1000
    assert figures["rows"]["trades"] > 0, "the workload traded nothing"
    for phase in ("consume", "decode", "fold", "insert", "rebuild"):
        assert figures[f"{phase}_events_per_s"] > 0, phase
