"""`tradex bench replay`: engines agree; bad input is refused with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradex.bench.gen_stream import generate
from tradex.bench.replay import main
from tradex.bench.streams import write_stream

KEYS = ["trades", "traded_qty", "notional", "resting", "resting_qty", "trade_hash", "ops_per_s"]


def last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_three_engines_agree_on_a_shallow_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shallow.bin"
    write_stream(path, generate("shallow", 5000, seed=9))
    results = {}
    for engine in ("tradex", "reference", "liquibook"):
        assert main([str(path), "--engine", engine]) == 0
        out = last_json(capsys)
        assert list(out) == KEYS
        results[engine] = {key: out[key] for key in KEYS[:-1]}
    assert results["tradex"] == results["reference"] == results["liquibook"]
    assert results["tradex"]["trades"] > 500


def test_full_mix_tradex_equals_reference_and_liquibook_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "full.bin"
    write_stream(path, generate("full", 4000, seed=9))
    assert main([str(path)]) == 0
    ours = last_json(capsys)
    assert main([str(path), "--engine", "reference"]) == 0
    theirs = last_json(capsys)
    assert {k: ours[k] for k in KEYS[:-1]} == {k: theirs[k] for k in KEYS[:-1]}
    assert main([str(path), "--engine", "liquibook"]) == 1
    assert "post-only, amend" in capsys.readouterr().err


def test_malformed_stream_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\x01" * 41)
    assert main([str(path)]) == 1
    assert "multiple of 40" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.bin")]) == 1
