"""The exchange's supervisor on small stand-in services (Python's own modules): start,
readiness, status, a service that dies, clean stop, and an exchange left running stopped
from its run file — no stack needed."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from tradex.infra import exchange
from tradex.infra import settings as settings_module
from tradex.infra.exchange import Exchange, Ready, Service
from tradex.infra.local_process import StackError, pid_alive

pytestmark = pytest.mark.timeout(120)


def _settings(tmp_path: Path) -> settings_module.Settings:
    return dataclasses.replace(settings_module.load(), stack_dir=tmp_path / "stack",
                               topic_prefix="t-exchange-")  # fmt: skip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _web(name: str, port: int) -> Service:
    return Service(name, (str(port), "--bind", "127.0.0.1"),
                   Ready("http", f"http://127.0.0.1:{port}/"), module="http.server")  # fmt: skip


def test_services_start_become_ready_show_in_status_and_stop_cleanly(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ex = Exchange(settings, tmp_path / "logs", env={"PYTHONUNBUFFERED": "1"}, stop_timeout_s=10)
    ex.start([_web("web", _port())])
    try:
        ex.wait_ready(60)
        assert [s.state for s in ex.states() if s.name == "web"] == ["up"]
        assert exchange.run_file(settings).exists()
        lines = [h for h in exchange.healths(settings) if h.service == "web"]
        assert len(lines) == 1 and "t-exchange-" in lines[0].detail
    finally:
        codes = ex.stop()
    assert list(codes) == ["web"]
    assert not exchange.run_file(settings).exists()
    assert exchange.healths(settings)[0].state == "off"  # nothing running: one "off" line


def test_a_service_that_exits_is_named_with_the_end_of_its_log(tmp_path: Path) -> None:
    ex = Exchange(_settings(tmp_path), tmp_path / "logs", stop_timeout_s=10)
    ex.start([Service("broken", (str(tmp_path / "missing.json"),), Ready("log", "never said"),
                      module="json.tool")])  # fmt: skip
    try:
        with pytest.raises(StackError) as raised:
            ex.wait_ready(60)
    finally:
        ex.stop()
    text = str(raised.value)
    assert text.startswith("broken (") and "exited with status" in text
    assert "missing.json" in text  # the log's last lines say why


def test_an_exchange_left_running_is_listed_and_stopped_from_its_run_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ex = Exchange(settings, tmp_path / "logs", stop_timeout_s=10)
    port = _port()
    ex.start([_web("web", port)])
    ex.wait_ready(60)
    pid = ex.processes["web"].pid
    ex.detach()  # what `tradex demo --keep` does
    ((_path, prefix, states),) = exchange.recorded(settings)
    assert prefix == "t-exchange-" and [(s.name, s.pid, s.state) for s in states] == [
        ("web", pid, "up")
    ]
    assert exchange.stop_recorded(settings, "another-prefix-") == []
    assert exchange.stop_recorded(settings, "t-exchange-") == ["t-exchange-web"]
    assert not pid_alive(pid)
    assert exchange.recorded(settings) == []
