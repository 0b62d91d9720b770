"""``tradex backtest`` on streams the real matcher ran: an unchanged window reproduces
history byte for byte; a band, an STP mode, a halt and fee rates change a hand-checked
small stream as worked out below; outputs are deterministic; bad input writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.backtest.conftest import BOOK_ARGS, CONFIG, engine_events, record_history
from tests.matching.order_requests import T0_NS, Feed, random_feed
from tradex.audit.export import export
from tradex.audit.timetravel import AsOf
from tradex.backtest import cli
from tradex.backtest.metrics import Fees
from tradex.backtest.plan import Plan, Result, backtest
from tradex.backtest.report import GENERATED_PREFIX
from tradex.backtest.rewrite import Changes, Halt
from tradex.backtest.run import Window
from tradex.backtest.strategy import STRATEGY_ORDER_ID_BASE, Action, Place, Schedule, View
from tradex.domain.engine import Cancelled, Rejected, Trade
from tradex.domain.types import StpMode
from tradex.infra.clickhouse import ClickHouse
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.schemas.codec import Codec

pytestmark = pytest.mark.integration
CODEC = Codec.offline()
P = 10_000  # ticks


def small_feed() -> Feed:
    """offset 0: rules; 1: account 1 sells 10 @ P; 2: account 2 buys 4 @ P (trade 4);
    3: account 1 buys 3 @ P (a self-trade: trade 3 with STP NONE); 4: account 3 buys 2 at
    P + 20 % (trade 2 at P, the maker's price; outside a 5 % band)."""
    feed = Feed(CODEC)
    feed.rules(1)
    feed.new(1, 1, 1, "SELL", P, 10)
    feed.new(2, 2, 1, "BUY", P, 4)
    feed.new(3, 1, 1, "BUY", P, 3)
    feed.new(4, 3, 1, "BUY", P * 12 // 10, 2)
    return feed


def run(settings: Settings, plan: Plan) -> Result:
    with KafkaLog(settings) as source:
        return backtest(source, CODEC, plan)


def trades(result: Result) -> list[tuple[int, int, int, int]]:
    """(position, qty, maker order, taker order) of the backtest's trades."""
    return [(p, e.qty, e.maker_order_id, e.taker_order_id)
            for r in result.runs for p, e in r.backtest.events if isinstance(e, Trade)]  # fmt: skip


def test_unchanged_backtest_reproduces_history_and_changes_give_the_worked_out_differences(
    settings: Settings,
) -> None:
    record_history(settings, small_feed().records)
    plan = Plan(config=CONFIG)
    same = run(settings, plan)
    assert same.identical
    assert same.runs[0].backtest.values == engine_events(settings)  # every record the matcher wrote
    assert trades(same) == [(2, 4, 1, 2), (3, 3, 1, 3), (4, 2, 1, 4)]
    h = same.history.instruments[1]
    assert (h.trades, h.volume_lots, h.notional, h.vwap_ticks) == (3, 9, 9 * P, P)
    # Fees (maker 100 ppm, taker 200 ppm, cumulative per order): maker order 1 pays
    # ceil(40000e-4) = 4, then ceil(70000e-4) - 4 = 3, then ceil(90000e-4) - 7 = 2; the takers
    # 40000 * 2e-4 = 8, 30000 * 2e-4 = 6, 20000 * 2e-4 = 4: 27 in all.
    assert h.fees == 27
    assert same.history.accounts[2].pnl == -8  # bought 4 at P, marked at P: its fee
    assert same.history.accounts[1].fees == 4 + 3 + 2 + 6

    band = run(settings, Plan(changes=Changes(band={1: 500}), config=CONFIG))
    assert not band.identical
    assert trades(band) == [(2, 4, 1, 2), (3, 3, 1, 3)]  # 20 % away from the last trade
    rejected = [e for _p, e in band.runs[0].backtest.events if isinstance(e, Rejected)]
    assert [(e.order_id, e.detail) for e in rejected] == [(4, "price_band")]
    assert band.runs[0].rewritten == 1  # the rules record

    stp = run(settings, Plan(changes=Changes(stp=StpMode.CANCEL_TAKER), config=CONFIG))
    assert trades(stp) == [(2, 4, 1, 2), (4, 2, 1, 4)]
    cancelled = [e for _p, e in stp.runs[0].backtest.events if isinstance(e, Cancelled)]
    assert [(e.order_id, e.remaining_qty, e.detail) for e in cancelled] == [(3, 3, "self_trade")]
    assert stp.backtest.accounts[1].bought_lots == 0

    halt = Halt(1, AsOf(offset=3), AsOf(offset=4))  # halted for order 3 only
    halted = run(settings, Plan(changes=Changes(halts=(halt,)), config=CONFIG))
    assert trades(halted) == [(2, 4, 1, 2), (4, 2, 1, 4)]
    assert halted.runs[0].added == 2  # a halted copy of the rules, then a trading one

    fees = run(settings, Plan(config=CONFIG, fees=Fees(maker_ppm=0, taker_ppm=1_000)))
    assert fees.identical  # fees change the figures, not the engine's output
    assert fees.backtest.instruments[1].fees == 40 + 30 + 20
    assert fees.backtest.accounts[1].fees == 30  # its taker fill only

    # A strategy buying 1 lot IOC at the last price after each input that traded: after
    # offset 2 it lifts order 1 (6 lots left -> 5), after offset 3 again (2 left -> 1), so
    # order 4 gets 1 lot and rests; after offset 4 nothing is left to lift (expired).
    def lift(view: View) -> list[Action]:
        return [Place("BUY", view.last_price, 1, "IOC")] if view.last_price else []

    schedule = Schedule(1, 9, every=0, on_trade=True)
    with KafkaLog(settings) as source:
        lifted = backtest(source, CODEC, Plan(config=CONFIG, strategy="lift", schedule=schedule),
                          lift)  # fmt: skip
    s1, s2 = STRATEGY_ORDER_ID_BASE + 1, STRATEGY_ORDER_ID_BASE + 2
    assert trades(lifted) == [(2, 4, 1, 2), (2, 1, 1, s1), (3, 3, 1, 3), (3, 1, 1, s2),
                              (4, 1, 1, 4)]  # fmt: skip
    assert (lifted.strategy_calls, lifted.strategy_orders, lifted.runs[0].added) == (3, 3, 3)
    mine = lifted.backtest.accounts[9]
    assert (mine.bought_lots, mine.fees) == (2, 2 * 2)  # taker 200 ppm of 10,000: 2 each
    assert lifted.backtest.pnl_curves[9] == [(2, -2), (3, -4)]

    window = run(settings, Plan(window=Window(AsOf(offset=3), AsOf(offset=4)), config=CONFIG))
    assert window.identical
    assert [r.inputs for r in window.runs] == [1]
    assert trades(window) == [(3, 3, 1, 3)]  # the book at offset 3 is history's
    by_time = Window(AsOf(time_ns=T0_NS + 3_000_000), AsOf(time_ns=T0_NS + 4_000_000))
    timed = run(settings, Plan(window=by_time, config=CONFIG))  # record n: T0 + n ms
    assert trades(timed) == trades(window)


def outputs(out: Path) -> dict[str, bytes]:
    found = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    lines = found["report.html"].split(b"\n")
    found["report.html"] = b"\n".join(
        x for x in lines if not x.startswith(GENERATED_PREFIX.encode())
    )
    return found


def test_cli_outputs_are_deterministic_and_the_example_strategy_runs(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_history(settings, random_feed(5, 400, instruments=(1, 2)).records)
    base = ["--prefix", settings.topic_prefix, *BOOK_ARGS]
    assert cli.main([*base, "--out", str(tmp_path / "same")]) == 0
    assert "identical to history" in capsys.readouterr().out
    same = pq.read_table(tmp_path / "same" / "trades.parquet").to_pydict()
    history = [t for t, r in zip(same["trade_id"], same["run"], strict=True) if r == "history"]
    assert history == [
        t for t, r in zip(same["trade_id"], same["run"], strict=True) if r == "backtest"
    ]
    assert len(history) > 20

    example = Path(__file__).parents[2] / "examples" / "market_maker.py"
    args = [*base, "--strategy", f"{example}:MarketMaker", "--strategy-instrument", "1",
            "--every", "5", "--band", "2=300"]  # fmt: skip
    assert cli.main([*args, "--out", str(tmp_path / "a")]) == 0
    assert cli.main([*args, "--out", str(tmp_path / "b")]) == 0
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    report = (tmp_path / "a" / "report.html").read_text()
    assert "<svg" in report and "Strategy (account 999000001)" in report
    orders = pq.read_table(tmp_path / "a" / "orders.parquet").to_pydict()
    mine = {o for o, a, r in zip(orders["order_id"], orders["account_id"], orders["run"], strict=True)
            if a == cli.STRATEGY_ACCOUNT_DEFAULT and r == "backtest"}  # fmt: skip
    assert len(mine) > 10
    trades_a = pq.read_table(tmp_path / "a" / "trades.parquet").to_pydict()
    assert cli.STRATEGY_ACCOUNT_DEFAULT in trades_a["maker_account_id"]  # its quotes were hit


def test_from_an_archive_into_clickhouse_and_bad_input_writes_nothing(
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clickhouse: ClickHouse,
    ch_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEX_CLICKHOUSE_PATH", str(settings.clickhouse_path))  # the tests' chdb
    record_history(settings, small_feed().records)
    archive = tmp_path / "archive"
    export(settings, archive, show_progress=False)
    done = tmp_path / "done"
    args = ["--archive", str(archive), *BOOK_ARGS, "--stp", "CANCEL_TAKER", "--out", str(done)]
    assert cli.main([*args, "--clickhouse", ch_database]) == 0
    assert "trades history 3 / backtest 2; differs from history" in capsys.readouterr().out
    counts = clickhouse.query_rows(
        f"SELECT run, count(), sum(qty) FROM {ch_database}.backtest_trades GROUP BY run ORDER BY run"
    )
    assert counts == [("backtest", 2, 6), ("history", 3, 9)]
    shutil.rmtree(archive)
    shutil.rmtree(done)

    out = tmp_path / "out"
    base = ["--prefix", settings.topic_prefix, *BOOK_ARGS, "--out", str(out)]
    assert cli.main([*base, "--from", "offset:1000"]) == 2
    assert "no order request in the window" in capsys.readouterr().err
    assert cli.main(["--prefix", f"{settings.topic_prefix}none-", "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    for bad in (["--band", "1=x"], ["--halt", "1@"], ["--stp", "SOMETIMES"],
                ["--strategy", "no_such_module:f", "--strategy-instrument", "1"],
                ["--every", "3"], ["--from", "yesterday"]):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            cli.main([*base, *bad])
        assert exit_.value.code == 2, bad
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--archive", str(tmp_path / "nowhere"), "--out", str(out)])
    assert exit_.value.code == 2
    assert "no such directory" in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging left behind either
