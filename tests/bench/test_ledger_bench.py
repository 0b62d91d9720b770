"""`tradex bench ledger --quick` runs end to end and its correctness checks pass (never speed)."""

from __future__ import annotations

import json

import pytest

from tradex.bench.ledger import funding_count, main, workload
from tradex.domain import Deposit, PlaceOrder

pytestmark = pytest.mark.integration


@pytest.mark.heavy  # a benchmark run: `./dev test --heavy`
def test_quick_ledger_bench_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--quick", "--commands", "2000", "--accounts", "200", "--peer-commands", "200"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bench"] == "ledger"
    assert summary["ok"] is True, summary["notes"]
    assert code == 0
    assert summary["peer"]["name"] == "eventsourcing 9.5.6 + PostgreSQL"
    assert set(summary["figures"]) == {
        "commands_per_s", "commands_per_s_runs", "p50_ms", "p99_ms", "ack_p99_ms"
    }  # fmt: skip
    assert len(summary["figures"]["commands_per_s_runs"]) == 1  # --quick: one throughput run
    # Both peer rows ran (their balances were checked: ok), paired with the one TradeX run.
    peer = summary["peer"]
    assert len(peer["commands_per_s_runs"]) == len(peer["per_command_commands_per_s_runs"]) == 1
    assert "AGGREGATE_CACHE_FASTFORWARD=n" in peer["settings"]
    assert summary["ratio_min"] == min(summary["ratio_batched"], summary["ratio_per_command"])


def test_the_peer_times_the_order_heavy_part_of_the_workload() -> None:
    """After the funding deposits (applied before the peer's clock), most commands are orders."""
    count, accounts = 20_000, 500
    commands = workload(count, accounts, seed=1)
    funding = funding_count(count, accounts)
    assert all(isinstance(c, Deposit) for c in commands[:funding])
    timed = commands[funding:]
    assert sum(isinstance(c, PlaceOrder) for c in timed) / len(timed) > 0.8


def test_peer_env_is_the_single_writer_configuration() -> None:
    from tradex.bench.ledger_peer import peer_env
    from tradex.infra import settings as settings_module

    env = peer_env(settings_module.load(), "db")
    assert env["AGGREGATE_CACHE_FASTFORWARD"] == "n"
    assert env["DEEPCOPY_FROM_AGGREGATE_CACHE"] == "n"
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "y"
    assert int(env["AGGREGATE_CACHE_MAXSIZE"]) > 0


@pytest.mark.heavy  # a benchmark run: `./dev test --heavy`
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


@pytest.mark.heavy  # a benchmark run: `./dev test --heavy`
def test_quick_micro_of_order_trips_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    """Fills and order ends too: both paths, the same bytes, figures per order."""
    code = main(["--micro", "--trip", "--quick", "--repeats", "1"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ok"] is True, summary
    assert code == 0
    assert {"cpu_us_per_order_min", "python_cpu_us_per_order_min"} <= set(summary["figures"])
