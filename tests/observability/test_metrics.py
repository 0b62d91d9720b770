"""The metrics' pure parts: port settings, target files, per-batch hooks, the rule and
dashboard files (promtool; every metric they name is one TradeX defines)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import REGISTRY

from tradex.infra import metrics_targets
from tradex.infra.settings import REPO_ROOT, load, metrics_port
from tradex.observability import metrics, metrics_server

DASHBOARDS = sorted((REPO_ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
# Series Prometheus itself or prometheus-client's default collectors give every target.
OUTSIDE = {"up", "process_cpu_seconds_total", "process_resident_memory_bytes",
           "python_gc_collections_total"}  # fmt: skip
PROMQL_WORDS = {"sum", "by", "rate", "increase", "max", "histogram_quantile", "time", "or", "le"}


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL) of every panel target."""
    found = []
    for path in DASHBOARDS:
        document = json.loads(path.read_text())
        for panel in document["panels"]:
            for target in panel["targets"]:
                found.append((path.stem, panel["title"], target["expr"]))
    return found


def alert_rules() -> list[dict[str, Any]]:
    import yaml

    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (identifiers not followed by '(' and not
    label names, keywords or durations)."""
    bare = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    bare = re.sub(r"\bby \([^)]*\)", "", bare)  # grouping labels
    bare = re.sub(r'"[^"]*"', "", bare)
    names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", bare))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]", n)}


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def defined_names() -> set[str]:
    """Every sample name the registry's families define (labelled ones without samples
    yet included), with the scrape-time families."""
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def test_the_port_setting_takes_a_port_zero_or_off() -> None:
    assert metrics_port("0") == 0
    assert metrics_port(" 9464 ") == 9464
    assert metrics_port("OFF") is None
    for bad in ("", "-1", "65536", "http"):
        with pytest.raises(ValueError, match="TRADEX_METRICS_PORT"):
            metrics_port(bad)


def test_a_bad_metrics_port_is_a_usage_error(tmp_path: Path) -> None:
    env = dict(os.environ, TRADEX_STACK_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "tradex.cli", "run", "matcher", "--metrics-port", "nope"], env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--metrics-port must be a port" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_target_files_list_live_processes_and_prune_dead_ones(tmp_path: Path) -> None:
    settings = dataclasses.replace(load(), stack_dir=tmp_path, topic_prefix="t1-")
    file = metrics_targets.write_target(settings, "accounts", "a", 9999)
    assert file.name == "t1-accounts-a.json"
    (target,) = metrics_targets.targets(settings)
    assert (target.service, target.instance, target.prefix) == ("accounts", "a", "t1-")
    assert target.url == "http://127.0.0.1:9999/metrics"
    assert target.pid == os.getpid()
    group = json.loads(file.read_text())[0]  # Prometheus' file_sd format
    assert group["targets"] == ["127.0.0.1:9999"]
    assert group["labels"]["service"] == "accounts"
    # a process that is gone (pid 2**22 + 1 is above Linux's pid_max)
    document = json.loads(file.read_text())
    document[0]["labels"]["__tradex_pid"] = str(2**22 + 1)
    gone = file.with_name("t1-matcher-a.json")
    gone.write_text(json.dumps(document))
    assert [t.service for t in metrics_targets.targets(settings)] == ["accounts"]
    assert len(metrics_targets.targets(settings, alive_only=False)) == 2
    assert metrics_targets.prune(settings) == [gone]
    assert not gone.exists()
    assert file.exists()


def test_listening_on_every_address_lists_the_loopback_one(tmp_path: Path) -> None:
    settings = dataclasses.replace(load(), stack_dir=tmp_path, metrics_host="0.0.0.0")
    file = metrics_targets.write_target(settings, "api", "8080", 8080)
    assert json.loads(file.read_text())[0]["targets"] == ["127.0.0.1:8080"]


class _Message:
    """What the stage hands the observer: confluent-kafka Messages' accessors."""

    def __init__(self, topic: str, timestamp_ms: int) -> None:
        self._topic, self._timestamp_ms = topic, timestamp_ms

    def topic(self) -> str:
        return self._topic

    def timestamp(self) -> tuple[int, int]:
        return 1, self._timestamp_ms

    def value(self) -> bytes:
        return b"\x00\x00\x00\x00\x07rest"


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    found = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if found is None else found


def test_a_committed_batch_counts_once_and_samples_its_latencies() -> None:
    import time

    stage = metrics.StageMetrics("accounts", "p1-")
    labels = {"stage": "accounts"}
    before = {
        name: _value(name, labels)
        for name in ("tradex_stage_batches_total", "tradex_stage_records_consumed_total",
                     "tradex_stage_records_produced_total")
    }  # fmt: skip
    acks_before = _value("tradex_command_ack_seconds_count")
    fills_before = _value("tradex_fill_settled_seconds_count")
    now_ms = int(time.time() * 1000)
    messages = [_Message("p1-account-commands", now_ms - 2_000)] + [
        _Message("p1-settlements", now_ms - 10) for _ in range(999)
    ]
    lags = [("p1-account-commands", 0, 12), ("p1-settlements", 1, 0)]
    stage.committed(messages, 1_700, 0.004, lags)
    assert _value("tradex_stage_batches_total", labels) == before["tradex_stage_batches_total"] + 1
    assert _value("tradex_stage_records_consumed_total", labels) == (
        before["tradex_stage_records_consumed_total"] + 1_000
    )
    assert _value("tradex_stage_records_produced_total", labels) == (
        before["tradex_stage_records_produced_total"] + 1_700
    )
    lag = {"stage": "accounts", "topic": "account-commands", "partition": "0"}
    assert _value("tradex_consumer_lag_records", lag) == 12  # the logical topic name
    assert 2.0 <= _value("tradex_consumer_lag_seconds", labels) < 5.0  # the oldest record
    # at most latency_samples_max observations per batch, by the hop their topic is
    acks = _value("tradex_command_ack_seconds_count") - acks_before
    fills = _value("tradex_fill_settled_seconds_count") - fills_before
    assert acks == 1
    assert 1 <= fills <= metrics.latency_samples_max
    assert acks + fills <= metrics.latency_samples_max + 1


def test_account_decisions_by_type_outcome_and_the_domains_reasons() -> None:
    from collections import Counter

    from tradex.domain.commands import Deposit, PlaceOrder
    from tradex.domain.types import REASONS, Reason

    account = metrics.AccountMetrics(
        frozenset(map(str, REASONS)), Reason.BELOW_MIN_NOTIONAL, Reason.INSUFFICIENT_FUNDS
    )
    reason = next(
        r for r in Reason if r not in (Reason.BELOW_MIN_NOTIONAL, Reason.INSUFFICIENT_FUNDS)
    )
    rejected = {"type": "PlaceOrder", "outcome": "rejected", "reason": reason.value}
    orders = {"type": "PlaceOrder", "outcome": "accepted", "reason": ""}
    other = {"type": metrics.COMPILED_OTHER, "outcome": "accepted", "reason": ""}
    before = [_value("tradex_commands_total", x) for x in (rejected, orders, other)]
    account.decisions(Counter({(PlaceOrder, "rejected", reason): 2, (Deposit, "accepted", ""): 1}))
    account.compiled(10, 4, 0, 1)
    after = [_value("tradex_commands_total", x) for x in (rejected, orders, other)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 4, 5]
    with pytest.raises(AssertionError):
        account.decisions(Counter({(PlaceOrder, "rejected", "made up"): 1}))
    with pytest.raises(AssertionError):
        account.compiled(2, 1, 1, 1)


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_the_rules_cover_what_operators_are_paged_for() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert 'up{job="tradex"} == 0' in exprs["TradexStageDown"]
    assert "tradex_consumer_lag_records" in exprs["TradexConsumerLagHigh"]
    assert "tradex_dead_letters_total" in exprs["TradexDeadLetters"]
    assert "tradex_stage_transaction_aborts_total" in exprs["TradexTransactionAborts"]
    assert "tradex_audit_violations" in exprs["TradexAuditViolations"]


def test_every_metric_a_panel_or_alert_names_is_defined(tmp_path: Path) -> None:
    # the scrape-time families appear once there is something to read
    fanout = _Fanout()  # held: the registry keeps a weak reference
    metrics.register_fanout(fanout)
    settings = dataclasses.replace(load(), stack_dir=tmp_path)
    metrics_server.record_audit(settings, 0)
    metrics_server.report_audit(settings)
    defined = defined_names() | OUTSIDE
    queries = [expr for _d, _t, expr in dashboard_queries()]
    queries += [rule["expr"] for rule in alert_rules()]
    assert len(DASHBOARDS) == 5
    named = set().union(*(metric_names(q) for q in queries))
    missing = {n for n in named if n not in defined and f"{n}_bucket" not in defined}
    assert not missing, missing


class _Fanout:
    def __init__(self) -> None:
        self.clients = self.dropped = self.sent_closed = 0
        self.open: set[Any] = set()


def test_the_api_records_the_route_template_not_the_path() -> None:
    """Requests through the metrics middleware (a bare Starlette app: no services)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def item(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def limited(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("slow down", status_code=429)

    app = Starlette(routes=[Route("/items/{id}", item), Route("/limited", limited)])
    app.add_middleware(metrics.ApiMetrics)
    labels = {"method": "GET", "route": "/items/{id}", "status": "200"}
    before = _value("tradex_api_requests_total", labels)
    limited_before = _value("tradex_api_rate_limited_total")
    with TestClient(app) as client:
        for i in range(3):
            assert client.get(f"/items/{i}").status_code == 200
        assert client.get("/limited").status_code == 429
        assert client.get("/nowhere").status_code == 404
    assert _value("tradex_api_requests_total", labels) == before + 3
    assert _value("tradex_api_rate_limited_total") == limited_before + 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert _value("tradex_api_requests_total", unmatched) >= 1
    assert (
        _value("tradex_api_request_seconds_count", {"method": "GET", "route": "/items/{id}"}) >= 3
    )


def test_book_depth_is_read_from_the_live_books_when_scraped() -> None:
    from tradex.matching.book import Book
    from tradex.matching.constants import PRICE_LEVELS_MAX_DEFAULT

    book = Book(orders_max=64, price_levels_max=PRICE_LEVELS_MAX_DEFAULT)
    metrics.register_books(lambda: iter([(987_654, book)]))
    assert _value("tradex_book_orders", {"instrument": "987654"}) == book.live == 0
    text = generate_latest(REGISTRY).decode()  # what /metrics answers
    assert 'tradex_book_orders{instrument="987654"} 0.0' in text


def test_the_audit_result_follows_the_latest_settings_of_the_process(tmp_path: Path) -> None:
    """A process that reported one stack's audit (e.g. an API app built earlier) reports
    the stack it is pointed at later, not the first one's (absent) result."""
    first = dataclasses.replace(load(), stack_dir=tmp_path / "first")
    second = dataclasses.replace(load(), stack_dir=tmp_path / "second")
    metrics_server.report_audit(first)
    metrics_server.record_audit(second, 3)
    metrics_server.report_audit(second)
    assert REGISTRY.get_sample_value("tradex_audit_violations") == 3
