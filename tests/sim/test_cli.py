"""`tradex sim`'s edges: bad arguments exit 2 and change nothing; a missing service is one
line naming it and the command that starts it."""

from __future__ import annotations

import dataclasses

import pytest

from tradex.infra.settings import Settings
from tradex.sim import cli
from tradex.sim.services import service_down


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "0"], "must be > 0"),
        (["--rate", "fast"], "not a number: 'fast'"),
        (["--duration", "nan"], "must be > 0"),
        (["--duration", "-1"], "must be > 0"),
        (["--instruments", "9"], "instruments must be 1..8"),
        (["--instruments", "3", "--accounts", "20"], "accounts must be 30.."),
        (["--seed", "-4"], "must be >= 0"),
        (["--tag", "a-b"], "tag must be"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.integration
def test_a_stage_not_running_is_one_line_naming_it(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    down = service_down(settings)
    assert down is not None
    assert "reference processor is not running" in down
    assert f"TRADEX_TOPIC_PREFIX={settings.topic_prefix} tradex run reference" in down
    monkeypatch.setattr(cli.settings_module, "load", lambda: dataclasses.replace(settings))
    assert cli.main(["--prefix", settings.topic_prefix, "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tradex sim: the reference processor")


@pytest.mark.integration
def test_kafka_down_is_one_line(settings: Settings) -> None:
    elsewhere = dataclasses.replace(settings, kafka_bootstrap="127.0.0.1:1", kafka_port_base=1)
    down = service_down(elsewhere)
    assert down is not None and "\n" not in down
    assert down.startswith("Kafka is not running at 127.0.0.1:1") and "tradex stack up" in down
