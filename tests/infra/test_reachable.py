"""One line when a service is down: the connection helpers' check and the CLI's message.

Each test points a setting at a port nothing listens on (bound, then closed), so no stack
is needed and nothing waits for a client library's retries.
"""

from __future__ import annotations

import dataclasses
import socket

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
    assert cli.main(words) == 1  # at once: a client library's retries would hit the timeout
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert f"{service} is not reachable at 127.0.0.1:{port}" in err
    assert "start it with `tradex stack up`" in err


@pytest.mark.integration
def test_a_command_nobody_decides_names_the_processor_that_is_not_running(
    settings: settings_module.Settings,
) -> None:
    import asyncio

    from tradex.commands.async_client import REFERENCE, AsyncCommandClient, CommandTimeout
    from tradex.domain import CreateAsset
    from tradex.log.topics import ensure_reference_topics

    ensure_reference_topics(settings)  # a fresh exchange whose reference processor never ran

    async def send() -> None:
        client = await AsyncCommandClient.open(settings, REFERENCE)
        try:
            await client.execute(CreateAsset("t-asset", 1, "XYZ", 2), timeout_s=1.0)
        finally:
            await client.aclose()

    with pytest.raises(ServiceUnavailable) as raised:
        asyncio.run(send())
    assert isinstance(raised.value, CommandTimeout)  # the API still answers it as a timeout
    text = str(raised.value)
    assert text.startswith("the reference processor is not running (no member) at consumer "
                           f"group '{settings.topic_prefix}reference'")  # fmt: skip
    assert text.endswith(f"start it with `TRADEX_TOPIC_PREFIX={settings.topic_prefix} tradex "
                         "run reference`")  # fmt: skip
