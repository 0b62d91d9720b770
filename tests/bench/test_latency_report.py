"""tradex.bench.latency_report: orders followed into the stages' batches (no Kafka)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradex.bench import latency_report


def _write(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _stamps(start_ms: int) -> dict[str, int]:
    """Every stamp, 1 ms apart from ``start_ms`` on, in BatchClock's order."""
    return {
        name: (start_ms + i) * 1_000_000 for i, name in enumerate(latency_report.BatchClock.NAMES)
    }


def test_an_order_is_followed_through_both_stages(tmp_path: Path) -> None:
    accounts = {"stamps": _stamps(10), "ranges": {"p-account-commands:1": [5, 9]}, "records": 5}
    other = {"stamps": _stamps(50), "ranges": {"p-account-commands:1": [10, 12]}, "records": 3}
    matcher = {"stamps": _stamps(30), "ranges": {"p-order-requests:2": [0, 3]}, "records": 4}
    _write(tmp_path / "p-accounts-1.jsonl", [accounts, other])
    _write(tmp_path / "p-matcher-2.jsonl", [matcher])
    order = {"command": [1, 7], "request": [2, 3], "sent": 8_000_000,
             "acked": 21_000_000, "traded": 45_000_000}  # fmt: skip
    unmatched = {"command": [0, 7], "request": None, "sent": 0, "acked": 1, "traded": None}
    _write(tmp_path / "orders-9.jsonl", [order, unmatched])

    rows = latency_report.segments(tmp_path)

    assert rows["order->ack"] == [13.0]
    assert rows["order->trade"] == [37.0]
    assert rows["A.sent->first"] == [2.0]  # first stamp at 10 ms, sent at 8
    assert rows["A.first->gathered"] == [1.0]
    assert rows["A.committed->acked (watcher)"] == [21.0 - 18.0]  # committed = 10 + 8
    assert rows["M.A.committed->first"] == [30.0 - 18.0]
    assert rows["M.committed->traded (watcher)"] == [45.0 - 38.0]
    assert all(len(values) == 1 for values in rows.values()), "the unmatched order counted"


def test_the_report_refuses_a_directory_without_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert latency_report.main([str(tmp_path)]) == 1
    assert "no order" in capsys.readouterr().err
    assert latency_report.main([str(tmp_path / "missing")]) == 2
