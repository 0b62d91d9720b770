"""The metrics of a real exchange, scraped by a real Prometheus.

One exchange (every stage, projectors and the API as processes, tests/queries/exchange.py)
trades a little while its own Prometheus (Debian's, as `tradex stack up --monitoring`
starts it) scrapes the processes it discovers from their target files. Then:
``promtool check metrics`` passes on every real ``/metrics``; every dashboard panel's query
returns data; every alert expression evaluates; and alerts fire for real causes — the
matcher SIGKILLed (a stage down) and an audit that found violations. The rules run with
their ``for`` durations cut to 1 s (the conditions are the file's; waiting 30 s is not
what is tested).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import yaml

from tests.observability.test_metrics import ALERTS, alert_rules, dashboard_queries
from tests.queries.exchange import Exchange, start, wait_until
from tradex.infra import metrics_targets
from tradex.infra.exchange import free_port
from tradex.infra.local_prometheus import LocalPrometheus
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.infra.stack import metrics_health
from tradex.observability.metrics_server import record_audit
from tradex.projections.admin import metrics_urls

SERVICES = {"reference", "accounts", "matcher", "projector", "api"}
SCRAPE_S = 1


@pytest.fixture(scope="module")
def exchange(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    yield from start(stack, tmp_path_factory.mktemp("metrics-exchange"))


@pytest.fixture(scope="module")
def prometheus(exchange: Exchange, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("prometheus")
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    (root / "alerts.yml").write_text(yaml.safe_dump(rules))
    settings = exchange.settings
    glob = str(metrics_targets.targets_dir(settings) / f"{settings.topic_prefix}*.json")
    server = LocalPrometheus(
        settings, free_port(), root, glob, interval_s=SCRAPE_S, rules=root / "alerts.yml"
    )
    server.write_config()
    server.start()
    try:
        wait_until(lambda: server.health().ok, 60, "Prometheus ready")
        yield server.url
    finally:
        server.stop()


def trade(exchange: Exchange) -> None:
    """Two traders cross twice; one order is rejected (no funds); one path is unknown."""
    alice, bob = exchange.register("alice"), exchange.register("bob")
    exchange.deposit(alice.account, "USD", "10000")
    exchange.deposit(bob.account, "BTC", "1")
    with alice.http() as a, bob.http() as b:

        def funded() -> bool:
            usd = {x["asset"]: x["free"] for x in a.get("/api/v3/account").json()["balances"]}
            btc = {x["asset"]: x["free"] for x in b.get("/api/v3/account").json()["balances"]}
            return Decimal(usd.get("USD", 0)) > 0 and Decimal(btc.get("BTC", 0)) > 0

        wait_until(funded, 60, "deposits")
        for _ in range(2):
            sell = b.post("/api/v3/order", params={
                "symbol": "BTCUSD", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.01", "price": "60000"})  # fmt: skip
            assert sell.status_code == 200, sell.text
            buy = a.post("/api/v3/order", params={
                "symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.01", "price": "60000"})  # fmt: skip
            assert buy.status_code == 200, buy.text
        broke = a.post("/api/v3/order", params={
            "symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "100", "price": "60000"})  # fmt: skip
        assert broke.status_code == 400, broke.text
        assert a.get("/api/v3/nowhere").status_code == 404
    with exchange.client() as http:
        wait_until(
            lambda: len(http.get("/api/v3/trades", params={"symbol": "BTCUSD"}).json()) >= 2,
            60, "the trades in the read model",
        )  # fmt: skip


def query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def scraped_value(url: str, expr: str) -> float | None:
    found = query(url, expr)
    return float(found[0]["value"][1]) if found else None


def test_live_metrics_dashboards_and_alerts(exchange: Exchange, prometheus: str) -> None:
    settings = exchange.settings

    def listed() -> dict[str, metrics_targets.Target]:
        return {t.service: t for t in metrics_targets.targets(settings)
                if t.prefix == settings.topic_prefix}  # fmt: skip

    targets = wait_until(lambda: set(listed()) == SERVICES and listed(), 60, "the targets")
    # where operators find them
    status = metrics_health(settings).detail
    assert all(t.url in status for t in targets.values()), status
    assert metrics_urls(settings, "postgres") == [targets["projector"].url]

    def all_up() -> bool:
        found = query(prometheus, f'up{{job="tradex", prefix="{settings.topic_prefix}"}}')
        return len(found) == len(SERVICES) and all(r["value"][1] == "1" for r in found)

    try:
        wait_until(all_up, 60, "every process scraped")
    except AssertionError:
        found = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
        raise AssertionError(f"not every process scraped: {found['activeTargets']}") from None
    trade(exchange)
    record_audit(settings, 0)  # an audit that found nothing (the alert must stay quiet)

    # promtool on every real endpoint, each with the counts of what it did
    for service, target in targets.items():
        text = httpx.get(target.url, timeout=10).text
        done = subprocess.run(["promtool", "check", "metrics"], input=text,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, (service, done.stdout + done.stderr)
        assert "process_cpu_seconds_total" in text, service
        assert "tradex_audit_violations 0.0" in text, service
    for expr in (
        'tradex_stage_batches_total{stage="accounts"}', 'tradex_stage_batches_total{stage="matcher"}',
        "tradex_engine_trades_total", 'tradex_commands_total{outcome="rejected"}',
        "tradex_command_ack_seconds_count", "tradex_order_trade_seconds_count",
        'tradex_projector_events_total{projector="postgres"}', "tradex_trade_projection_seconds_count",
        'tradex_api_requests_total{route="/api/v3/order", status="200"}',
    ):  # fmt: skip
        summed = f"sum({expr})"
        wait_until(lambda e=summed: (scraped_value(prometheus, e) or 0) > 0, 30, expr)  # type: ignore[misc]
    assert scraped_value(prometheus, "sum(tradex_book_orders)") is not None

    time.sleep(3 * SCRAPE_S)  # a few samples after the trading, for the rates
    empty = [(d, t, e) for d, t, e in dashboard_queries() if not query(prometheus, e)]
    assert not empty, empty
    for rule in alert_rules():
        query(prometheus, rule["expr"])  # evaluates (empty: not firing)

    # a stage down: the matcher killed (its target file stays), and an audit with violations
    matcher = exchange.services.processes["matcher"]
    os.kill(matcher.pid, signal.SIGKILL)
    matcher.wait()
    record_audit(settings, 3)

    def firing() -> set[tuple[str, str]]:
        alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return {(a["labels"]["alertname"], a["labels"].get("service", "")) for a in alerts
                if a["state"] == "firing"}  # fmt: skip

    wait_until(
        lambda: {("TradexStageDown", "matcher"), ("TradexAuditViolations", "")} <= firing(),
        30, "the stage-down and audit alerts firing",
    )  # fmt: skip
    assert ("TradexStageDown", "accounts") not in firing()


def test_the_audit_reports_its_outcome_where_metrics_read_it(exchange: Exchange) -> None:
    """`tradex audit verify` of the live log records how many violations it found."""
    path = metrics_targets.audit_result_path(exchange.settings)
    path.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "tradex.cli", "audit", "verify", "--json", "--no-progress",
         "--no-rerun"],
        env=exchange.env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    recorded = json.loads(path.read_text())
    assert recorded["violations"] == len(report["violations"])
    assert time.time() - recorded["time_s"] < 120
