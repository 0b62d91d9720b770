"""`tradex bench matching --quick` runs end to end and every checksum agrees (never speed)."""

from __future__ import annotations

import json

import pytest

from tradex.bench.matching import main


def test_quick_matching_bench_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--ops", "10000", "--no-cache"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bench"] == "matching"
    assert summary["ok"] is True
    assert summary["peer"]["name"] == "liquibook 2.0.1"
    assert set(summary["figures"]) >= {
        "shallow_ops_per_s",
        "deep_ops_per_s",
        "moves_ops_per_s",
        "full_ops_per_s",
    }
