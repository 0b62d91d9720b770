"""The backtest report: one self-contained HTML page (inline SVG, no script) and the same
figures as JSON. Deterministic: the same result gives the same bytes, but for the one line
that says when it was made (``GENERATED_PREFIX``)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from tradex.domain.engine import Trade
from tradex.matching.partition import BookConfig

from .metrics import AccountFigures, Figures, InstrumentFigures
from .plan import Result
from .svg import Series, bar_chart, line_chart

GENERATED_PREFIX = '<p class="generated">'
INSTRUMENTS_SHOWN_MAX = 8
ACCOUNTS_SHOWN_MAX = 20
HISTORY_COLOR = "#8a8a8a"
BACKTEST_COLOR = "#1f6fd1"
STYLE = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1340px}
table{border-collapse:collapse;margin:8px 0 18px}td,th{padding:3px 10px;text-align:right;
border-bottom:1px solid #e6e6e6}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.up{color:#107a2c}.down{color:#b3261e}.charts{display:flex;flex-wrap:wrap;gap:8px}
.ok{color:#107a2c;font-weight:bold}.diff{color:#b3261e;font-weight:bold}.generated{color:#888}
.empty{color:#888}"""


def summary(result: Result) -> dict[str, Any]:
    """The figures as plain data (summary.json)."""
    plan = result.plan
    return {
        "inputs": result.inputs,
        "added_inputs": sum(r.added for r in result.runs),
        "rewritten_inputs": sum(r.rewritten for r in result.runs),
        "unchanged": plan.unchanged,
        "identical_to_history": result.identical,
        "changes": plan.changes.describe(),
        "fees": {"maker_ppm": plan.fees.maker_ppm, "taker_ppm": plan.fees.taker_ppm},
        "book": {
            "orders_max": plan.config.orders_max,
            "price_levels_max": plan.config.price_levels_max,
        },
        "strategy": {
            "spec": plan.strategy,
            "calls": result.strategy_calls,
            "orders": result.strategy_orders,
        }
        if plan.strategy
        else None,
        "partitions": {
            str(r.partition): {
                "warmup_inputs": r.warmup_inputs,
                "inputs": r.inputs,
                "first_position": r.first_position,
                "last_position": r.last_position,
                "history_records": len(r.history.values),
                "backtest_records": len(r.backtest.values),
                "identical": r.identical,
            }
            for r in result.runs
        },
        "history": _figures(result.history),
        "backtest": _figures(result.backtest),
    }


def _figures(f: Figures) -> dict[str, Any]:
    return {
        "instruments": {str(i): _instrument(v) for i, v in f.instruments.items()},
        "accounts": {
            str(a): {
                "bought_lots": v.bought_lots,
                "sold_lots": v.sold_lots,
                "fees": v.fees,
                "cash": v.cash,
                "pnl": v.pnl,
                "positions": {str(k): p for k, p in sorted(v.positions.items())},
            }
            for a, v in f.accounts.items()
        },
    }


def _instrument(v: InstrumentFigures) -> dict[str, Any]:
    return {"trades": v.trades, "volume_lots": v.volume_lots, "notional": v.notional,
            "vwap_ticks": round(v.vwap_ticks, 6), "last_price": v.last_price, "fees": v.fees,
            "spread_mean_ticks": round(v.spread_mean_ticks, 6),
            "spread_samples": v.spread_samples}  # fmt: skip


def summary_json(result: Result) -> str:
    return json.dumps(summary(result), indent=2, sort_keys=True) + "\n"


def _num(v: float, digits: int = 0) -> str:
    return f"{v:,.{digits}f}"


def _delta(h: float, b: float, digits: int = 0) -> str:
    d = b - h
    if d == 0:
        return "<td>0</td>"
    cls = "up" if d > 0 else "down"
    return f'<td class="{cls}">{"+" if d > 0 else ""}{_num(d, digits)}</td>'


def _row(name: str, h: float, b: float, digits: int = 0) -> str:
    return f"<tr><td>{escape(name)}</td><td>{_num(h, digits)}</td><td>{_num(b, digits)}</td>{_delta(h, b, digits)}</tr>"


def _instrument_table(i: int, h: InstrumentFigures, b: InstrumentFigures) -> str:
    rows = [
        _row("trades", h.trades, b.trades),
        _row("volume (lots)", h.volume_lots, b.volume_lots),
        _row("notional (quote minor units)", h.notional, b.notional),
        _row("VWAP (ticks)", h.vwap_ticks, b.vwap_ticks, 3),
        _row("last price (ticks)", h.last_price, b.last_price),
        _row("mean spread (ticks)", h.spread_mean_ticks, b.spread_mean_ticks, 3),
        _row("fees (quote minor units)", h.fees, b.fees),
    ]
    return (f"<h3>Instrument {i}</h3><table><tr><th></th><th>history</th><th>backtest</th>"
            f"<th>Δ</th></tr>{''.join(rows)}</table>")  # fmt: skip


def _series(result: Result, instrument_id: int) -> dict[str, list[Series]]:
    charts: dict[str, list[Series]] = {"price": [], "volume": [], "spread": []}
    for name, color in (("history", HISTORY_COLOR), ("backtest", BACKTEST_COLOR)):
        px, py, vy = [], [], []
        total = 0
        sx, sy = [], []
        for run in result.runs:
            events = getattr(run, name).events
            for position, obj in events:
                if isinstance(obj, Trade) and obj.instrument_id == instrument_id:
                    total += obj.qty
                    px.append(float(position))
                    py.append(float(obj.price))
                    vy.append(float(total))
        for position, inst, spread in result.spreads[name]:
            if inst == instrument_id:
                sx.append(float(position))
                sy.append(float(spread))
        charts["price"].append(Series(name, color, px, py))
        charts["volume"].append(Series(name, color, px, vy))
        charts["spread"].append(Series(name, color, sx, sy))
    return charts


def _accounts(h: dict[int, AccountFigures], b: dict[int, AccountFigures]) -> tuple[str, str]:
    ids = sorted(h.keys() | b.keys(),
                 key=lambda a: (-abs(_pnl(b, a) - _pnl(h, a)), a))[:ACCOUNTS_SHOWN_MAX]  # fmt: skip
    chart = bar_chart(
        "PnL by account (quote minor units, marked to the last price)",
        [str(a) for a in ids],
        [Series("history", HISTORY_COLOR, [], [float(_pnl(h, a)) for a in ids]),
         Series("backtest", BACKTEST_COLOR, [], [float(_pnl(b, a)) for a in ids])],
    )  # fmt: skip
    rows = []
    for a in ids:
        ha, ba = h.get(a), b.get(a)
        rows.append(
            f"<tr><td>{a}</td><td>{_num(ha.pnl if ha else 0)}</td><td>{_num(ba.pnl if ba else 0)}</td>"
            f"{_delta(ha.pnl if ha else 0, ba.pnl if ba else 0)}"
            f"<td>{_num(ha.fees if ha else 0)}</td><td>{_num(ba.fees if ba else 0)}</td>"
            f"<td>{_num((ha.bought_lots + ha.sold_lots) if ha else 0)}</td>"
            f"<td>{_num((ba.bought_lots + ba.sold_lots) if ba else 0)}</td></tr>"
        )
    table = ("<table><tr><th>account</th><th>PnL history</th><th>PnL backtest</th><th>Δ</th>"
             "<th>fees history</th><th>fees backtest</th><th>lots history</th>"
             f"<th>lots backtest</th></tr>{''.join(rows)}</table>")  # fmt: skip
    return chart, table


def _inventory(result: Result, account: int) -> tuple[list[float], list[float]]:
    """(positions, lots held) after each of the account's fills, over every instrument."""
    xs: list[float] = []
    ys: list[float] = []
    held = 0
    for run in result.runs:
        for position, obj in run.backtest.events:
            if not isinstance(obj, Trade):
                continue
            taker, maker = obj.taker_account_id, obj.maker_account_id
            buyer, seller = (taker, maker) if obj.taker_side == "BUY" else (maker, taker)
            if account in (buyer, seller) and buyer != seller:
                held += obj.qty if buyer == account else -obj.qty
                xs.append(float(position))
                ys.append(float(held))
    return xs, ys


def _pnl(f: dict[int, AccountFigures], a: int) -> int:
    found = f.get(a)
    return found.pnl if found is not None else 0


def html(result: Result, source: str, generated: str) -> str:
    plan = result.plan
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>TradeX backtest</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>TradeX backtest</h1>",
        f"{GENERATED_PREFIX}Generated {escape(generated)}</p>",
        f"<p>Source: {escape(source)}. {result.inputs:,} order requests in the window over "
        f"{len(result.runs)} partition(s); the backtest added {sum(r.added for r in result.runs):,} "
        f"and rewrote {sum(r.rewritten for r in result.runs):,}.</p>",
    ]
    changes = plan.changes.describe()
    if plan.config != BookConfig():
        changes.append(f"books: orders_max {plan.config.orders_max:,}, "
                       f"price_levels_max {plan.config.price_levels_max:,}")  # fmt: skip
    if plan.fees.maker_ppm is not None or plan.fees.taker_ppm is not None:
        changes.append(f"fees recomputed: maker {plan.fees.maker_ppm} ppm, taker "
                       f"{plan.fees.taker_ppm} ppm (None: the order's own)")  # fmt: skip
    if plan.strategy:
        changes.append(f"strategy {plan.strategy}: {result.strategy_calls:,} calls, "
                       f"{result.strategy_orders:,} orders")  # fmt: skip
    parts.append(
        "<h2>Changes</h2><ul>" + "".join(f"<li>{escape(c)}</li>" for c in changes) + "</ul>"
    )
    if result.identical:
        verdict = ('<p class="ok">The backtest wrote exactly the engine events history holds '
                   f"for this window ({sum(len(r.history.values) for r in result.runs):,} records).</p>")  # fmt: skip
    else:
        verdict = ('<p class="diff">The backtest differs from history: '
                   f"{sum(len(r.backtest.values) for r in result.runs):,} engine events against "
                   f"{sum(len(r.history.values) for r in result.runs):,}.</p>")  # fmt: skip
    parts.append(verdict)
    totals = []
    for name, get in (("trades", lambda v: v.trades), ("volume (lots)", lambda v: v.volume_lots),
                      ("notional (quote minor units)", lambda v: v.notional),
                      ("fees (quote minor units)", lambda v: v.fees)):  # fmt: skip
        h = sum(get(v) for v in result.history.instruments.values())
        b = sum(get(v) for v in result.backtest.instruments.values())
        totals.append(_row(name, h, b))
    parts.append("<h2>Totals</h2><table><tr><th></th><th>history</th><th>backtest</th>"
                 f"<th>Δ</th></tr>{''.join(totals)}</table>")  # fmt: skip
    parts.append("<h2>Instruments</h2>")
    instruments = sorted(result.history.instruments.keys() | result.backtest.instruments.keys())
    for i in instruments[:INSTRUMENTS_SHOWN_MAX]:
        empty = InstrumentFigures(i)
        parts.append(_instrument_table(i, result.history.instruments.get(i, empty),
                                       result.backtest.instruments.get(i, empty)))  # fmt: skip
        charts = _series(result, i)
        parts.append('<div class="charts">')
        parts.append(line_chart(f"Trade price (ticks), instrument {i}", charts["price"],
                                "input position", step=True))  # fmt: skip
        parts.append(line_chart(f"Cumulative volume (lots), instrument {i}", charts["volume"],
                                "input position", step=True))  # fmt: skip
        parts.append(line_chart(f"Spread (ticks), instrument {i}", charts["spread"],
                                "input position", step=True))  # fmt: skip
        parts.append("</div>")
    parts.append("<h2>Accounts</h2>")
    chart, table = _accounts(result.history.accounts, result.backtest.accounts)
    parts.append(chart)
    parts.append(table)
    if plan.schedule is not None:
        account = plan.schedule.account_id
        curve = result.backtest.pnl_curves.get(account, [])
        mine = result.backtest.accounts.get(account)
        parts.append(f"<h2>Strategy (account {account})</h2>")
        if mine is not None:
            inventory = sum(mine.positions.values())
            parts.append(f"<p>PnL {_num(mine.pnl)} (marked to the last price), fees "
                         f"{_num(mine.fees)}, bought {_num(mine.bought_lots)} lots, sold "
                         f"{_num(mine.sold_lots)}, inventory {_num(inventory)} lots.</p>")  # fmt: skip
        else:
            parts.append("<p>The strategy did not trade.</p>")
        parts.append('<div class="charts">')
        parts.append(line_chart("Strategy PnL after each of its fills", [Series(
            "strategy", BACKTEST_COLOR, [float(p) for p, _ in curve], [float(v) for _, v in curve]
        )], "input position"))  # fmt: skip
        parts.append(line_chart("Strategy inventory (lots)", [Series(
            "strategy", BACKTEST_COLOR, *_inventory(result, account))], "input position",
            step=True))  # fmt: skip
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
