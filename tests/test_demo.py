"""`tradex demo` in its short mode: a live exchange of separate processes, a market on it,
and an audit that passes — the ledger and every read model against a rebuild.

Its own topic prefix, PostgreSQL database, Redis logical database and chdb folder; the
view's parts are unit-tested apart (no terminal here).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from tradex import demo, demo_view, exchange_services
from tradex.audit import cli as audit_cli
from tradex.infra import exchange
from tradex.infra.settings import Settings
from tradex.projections.catalog import PROJECTORS


@pytest.mark.integration
def test_the_quick_demo_trades_and_its_audit_passes_with_every_read_model(
    pg_settings: Settings,
    redis_settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = dataclasses.replace(pg_settings, redis_url=redis_settings.redis_url,
                                   clickhouse_path=tmp_path / "chdb")  # fmt: skip
    options = demo.Options(duration_s=demo.QUICK_DURATION_S, rate=demo.QUICK_RATE, seed=1,
                           keep=False, api_port=exchange.free_port(), live=False)  # fmt: skip

    outcome = demo.run(settings, tmp_path / "logs", options)

    report = outcome.report
    assert report.ok, report.text()
    assert report.violations == []
    assert report.trades is not None and report.trades.trades > 0
    assert outcome.market.trades > 0
    checked = sorted(n.split()[2].rstrip(":") for n in report.notes if n.startswith("read model "))
    assert checked == sorted(PROJECTORS)  # every read model equal to a rebuild
    assert "balances" in outcome.account_probe  # the summary's curl works with its credentials
    assert {s.name for s in exchange_services.pipeline_services("demo")} <= set(outcome.services)
    assert not exchange.run_file(settings).exists()  # everything it started is stopped
    for service in outcome.services:
        assert (tmp_path / "logs" / f"{service}.log").exists()
    text = demo.summary(outcome, options)
    assert "== tradex demo: OK" in text
    assert f"{outcome.api_url}/docs" in text
    assert f"{outcome.api_url}/console/" in text
    # the auditor's next step it suggests works on the demo's log as printed
    (book,) = [line for line in text.splitlines() if "tradex audit book" in line]
    words = book.split("tradex audit book", 1)[1].split("[", 1)[0].split()
    capsys.readouterr()
    assert audit_cli.main(["book", *words]) == 0
    assert "resting orders; state " in capsys.readouterr().out


def test_a_frame_shows_rates_lag_per_read_model_and_the_top_of_each_book() -> None:
    figures = demo_view.Figures(
        elapsed_s=3, duration_s=60, orders_per_s=180.4, trades_per_s=41, ack_p99_ms=52.6,
        commands=601, trades=97, lag={"redis": (0, 0.0), "postgres": (1_250, 2.4)},
        tops=[demo_view.Top("BTCUSD", "60000.00", "0.010", "60010.00", "0.250"),
              demo_view.Top("ETHUSD", "", "", "3000.50", "1.000")],
    )  # fmt: skip
    lines = demo_view.frame(figures)
    assert "orders     180/s" in lines[0] and "trades      41/s" in lines[0]
    assert "ack p99     53 ms" in lines[0]
    assert "postgres 1,250 rec 2.4 s" in lines[1] and "redis 0 rec 0.0 s" in lines[1]
    assert (
        "BTCUSD" in lines[2] and "0.010 @ 60000.00" in lines[2] and "0.250 @ 60010.00" in lines[2]
    )
    assert "(no bids)" in lines[3]
    no_lag = demo_view.frame(dataclasses.replace(figures, lag={}, lag_error="store busy"))
    assert no_lag[1] == "projector lag  (store busy)"


def test_the_screen_redraws_in_place_on_a_terminal_and_prints_lines_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    figures = demo_view.Figures(elapsed_s=1, duration_s=10)
    tty = Tty()
    screen = demo_view.Screen(tty)
    screen.show(figures)
    screen.show(figures)
    drawn = len(demo_view.frame(figures))
    assert tty.getvalue().count(f"\x1b[{drawn}F") == 1  # the second frame moved up over the first
    plain = io.StringIO()
    demo_view.Screen(plain).show(figures)
    assert plain.getvalue().count("\n") == 1 and "\x1b" not in plain.getvalue()


def test_bad_arguments_are_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["--duration", "0"], ["--rate", "-5"], ["--seed", "-1"], ["--api-port", "70000"]):
        with pytest.raises(SystemExit) as exited:
            demo.parse(argv)
        assert exited.value.code == 2
    assert "--duration must be" in capsys.readouterr().err
    quick = demo.parse(["--quick"])
    assert (quick.duration, quick.rate) == (demo.QUICK_DURATION_S, demo.QUICK_RATE)
