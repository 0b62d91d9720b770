"""One line when a service is down: the connection helpers' check and the CLI's message.

Each test points a setting at a port nothing listens on (bound, then closed), so no stack
is needed and nothing waits for a client library's retries.
"""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from tradex import cli
from tradex.infra import settings as settings_module
from tradex.infra.reachable import ServiceUnavailable, require, require_kafka

pytestmark = pytest.mark.timeout(60)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_port_nothing_listens_on_names_the_service_where_and_how_to_start_it() -> None:
    port = closed_port()
    with pytest.raises(ServiceUnavailable) as raised:
        require("Redis", [("127.0.0.1", port)])
    assert str(raised.value) == (
        f"Redis is not reachable at 127.0.0.1:{port}: start it with `tradex stack up`"
    )
    assert raised.value.service == "Redis"
    assert not isinstance(raised.value, (RuntimeError, OSError))  # not swallowed as "no topic"


def test_a_listening_port_passes_and_any_broker_of_several_is_enough() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        require("Kafka", [("127.0.0.1", closed_port()), ("127.0.0.1", port)])
        base = settings_module.load()
        require_kafka(dataclasses.replace(base, kafka_bootstrap=f"127.0.0.1:{port}"))


@pytest.mark.parametrize(
    ("words", "variable", "service"),
    [
        (["matching", "verify"], "TRADEX_KAFKA_PORT", "Kafka"),
        (["audit", "verify"], "TRADEX_KAFKA_PORT", "Kafka"),
        (["projections", "status"], "TRADEX_POSTGRES_PORT", "PostgreSQL"),
        (["run", "api"], "TRADEX_REDIS_PORT", "Redis"),
    ],
)
def test_commands_say_in_one_line_which_service_is_down_and_exit_1(
    words: list[str], variable: str, service: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    port = closed_port()
    monkeypatch.setenv(variable, str(port))
    monkeypatch.delenv("TRADEX_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("TRADEX_REDIS_URL", raising=False)
    started = time.monotonic()
    assert cli.main(words) == 1
    assert time.monotonic() - started < 10  # no client library retrying until a timeout
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert f"{service} is not reachable at 127.0.0.1:{port}" in err
    assert "start it with `tradex stack up`" in err
