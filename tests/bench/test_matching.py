"""`tradex bench matching --quick` runs end to end and every checksum agrees (never speed)."""

from __future__ import annotations

import json

import pytest

from tradex.bench.matching import main


@pytest.mark.heavy  # a benchmark run: `./dev test --heavy`
def test_quick_matching_bench_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--ops", "10000", "--no-cache"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bench"] == "matching"
    assert summary["ok"] is True
    assert summary["peer"]["name"].startswith("liquibook 2.0.1 (native C++ engine")
    assert set(summary["figures"]) >= {
        "shallow_ops_per_s",
        "deep_ops_per_s",
        "moves_ops_per_s",
        "full_ops_per_s",
        "native_shallow_ratio",
        "native_deep_ratio",
    }
    assert {"native_shallow_ops_per_s", "native_deep_ops_per_s"} <= set(summary["peer"])
    every = [v for k, v in summary["figures"].items() if k.endswith("_ratio") and "cpu" not in k]
    assert summary["ratio_min"] == min(every)
