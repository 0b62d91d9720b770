from __future__ import annotations

import json

import pytest

from tradex.bench.codec import main


@pytest.mark.heavy  # a benchmark run: `./dev test --heavy`
def test_quick_bench_runs_and_our_path_agrees_with_fastavro(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--quick", "--records", "200"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bench"] == "codec"
    assert result["ok"] is True
    assert set(result["figures"]) == {
        f"{name}_{kind}us_per_record"
        for name in ("Deposited", "OrderAccepted", "FillSettled")
        for kind in ("", "twin_", "before_")
    }
