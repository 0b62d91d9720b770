"""`tradex bench ledger --quick` runs end to end and its correctness checks pass (never speed)."""

from __future__ import annotations

import json

import pytest

from tradex.bench.ledger import main

pytestmark = pytest.mark.integration


def test_quick_ledger_bench_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--quick", "--commands", "2000", "--accounts", "200", "--peer-commands", "200"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bench"] == "ledger"
    assert summary["ok"] is True, summary["notes"]
    assert code == 0
    assert summary["peer"]["name"] == "eventsourcing 9.5.6 + PostgreSQL"
    assert set(summary["figures"]) == {"commands_per_s", "commands_per_s_runs", "p50_ms", "p99_ms"}
    assert len(summary["figures"]["commands_per_s_runs"]) == 1  # --quick: one throughput run


def test_quick_micro_runs_both_paths_to_the_same_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--micro", "--quick", "--repeats", "1"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bench"] == "ledger-micro"
    assert summary["ok"] is True, summary
    assert code == 0
    assert isinstance(summary["outputs_sha256"], str)  # one digest: both paths, same bytes
    assert {"cpu_us_per_command_min", "python_cpu_us_per_command_min", "ratio_min"} <= set(
        summary["figures"]
    )


def test_quick_micro_of_order_trips_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    """Fills and order ends too: both paths, the same bytes, figures per order."""
    code = main(["--micro", "--trip", "--quick", "--repeats", "1"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ok"] is True, summary
    assert code == 0
    assert {"cpu_us_per_order_min", "python_cpu_us_per_order_min"} <= set(summary["figures"])
