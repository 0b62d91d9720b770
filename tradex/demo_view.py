"""The demo's live terminal view: one frame a second of the exchange as its parts see it.

Figures come from where they live, not recomputed: order and trade rates and ack
latency from the market simulation's per-second snapshot, projector lag from the read
models' stored positions against the log's ends (:func:`tradex.projections.admin.status`,
on a thread of its own: it reads four stores), the top of each book from the Redis read
model. :func:`frame` is pure (tested); :class:`Screen` redraws it in place on a
terminal, and prints one line per frame elsewhere (CI logs).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from typing import Any, TextIO

from tradex.infra.settings import Settings

lag_refresh_s = 1.0
instruments_shown_max = 8


@dataclasses.dataclass(frozen=True)
class Top:
    """One instrument's best bid and ask, as decimal text (empty: that side is empty)."""

    symbol: str
    bid: str
    bid_qty: str
    ask: str
    ask_qty: str


@dataclasses.dataclass
class Figures:
    elapsed_s: float = 0.0
    duration_s: float = 0.0
    orders_per_s: float = 0.0
    trades_per_s: float = 0.0
    ack_p99_ms: float | None = None
    commands: int = 0
    trades: int = 0
    lag: dict[str, tuple[int, float]] = dataclasses.field(default_factory=dict)  # records, s
    lag_age_s: float | None = None  # how old the lag figures are
    lag_error: str | None = None  # why there are none yet
    tops: list[Top] = dataclasses.field(default_factory=list)
    phase: str = "sending"  # then "draining": the last outcomes, fills and settlements


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def frame(f: Figures) -> list[str]:
    """The view's lines for one second."""
    lines = [
        f"tradex demo  {f.elapsed_s:5.0f} / {f.duration_s:.0f} s {f.phase:<8}  "
        f"orders {f.orders_per_s:7,.0f}/s   trades {f.trades_per_s:7,.0f}/s   "
        f"ack p99 {_ms(f.ack_p99_ms):>9}   totals {f.commands:,} commands, {f.trades:,} trades",
    ]
    if f.lag:
        age = "" if f.lag_age_s is None else f"  (as of {f.lag_age_s:.0f} s ago)"
        lines.append("projector lag  " + "   ".join(
            f"{name} {records:,} rec {seconds:.1f} s" for name, (records, seconds) in sorted(f.lag.items())
        ) + age)  # fmt: skip
    else:
        lines.append(f"projector lag  ({f.lag_error or 'first reading under way'})")
    for top in f.tops[:instruments_shown_max]:
        bid = f"{top.bid_qty} @ {top.bid}" if top.bid else "(no bids)"
        ask = f"{top.ask_qty} @ {top.ask}" if top.ask else "(no asks)"
        lines.append(f"  {top.symbol:<10} bid {bid:>26}   ask {ask:<26}")
    return lines


def one_line(f: Figures) -> str:
    """The frame squeezed into one line (not a terminal)."""
    lag = ", ".join(f"{n} {r}" for n, (r, _s) in sorted(f.lag.items())) or "not read yet"
    if f.lag and f.lag_age_s is not None:
        lag += f" ({f.lag_age_s:.0f} s ago)"
    tops = "; ".join(f"{t.symbol} {t.bid or '-'}/{t.ask or '-'}" for t in f.tops[:3])
    return (f"[{f.elapsed_s:4.0f}s] orders {f.orders_per_s:,.0f}/s trades {f.trades_per_s:,.0f}/s "
            f"ack p99 {_ms(f.ack_p99_ms)} | lag (records) {lag} | {tops}")  # fmt: skip


class Screen:
    """Redraws frames in place on a terminal; one line per frame otherwise."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.drawn = 0

    def show(self, figures: Figures) -> None:
        if not self.tty:
            self.stream.write(one_line(figures) + "\n")
            self.stream.flush()
            return
        lines = frame(figures)
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J")
        self.stream.flush()
        self.drawn = len(lines)

    def done(self) -> None:
        self.drawn = 0


class LagWatch:
    """Projector lag per read model, each refreshed on its own thread (``status`` reads
    the read model's store and the log's ends, and takes seconds on a loaded machine)."""

    def __init__(self, settings: Settings, names: list[str]) -> None:
        self.settings = settings
        self.lag: dict[str, tuple[int, float]] = {}
        self.at: dict[str, float] = {}
        self.error: str | None = None
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(name,), name=f"demo-lag-{name}", daemon=True)
            for name in names
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, name: str) -> None:
        from tradex.projections.admin import status

        while not self.stop.is_set():
            try:
                (entry,) = status(self.settings, [name])
            except Exception as exc:  # a store busy or restarting: show the last figures
                self.error = f"{name}: {str(exc)[:200]}"
            else:
                self.lag[name] = _lag_of(entry)
                self.at[name] = time.monotonic()
            self.stop.wait(lag_refresh_s)

    def age_s(self) -> float | None:
        """How old the oldest read model's figures are."""
        return time.monotonic() - min(self.at.values()) if self.at else None

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def _lag_of(entry: dict[str, Any]) -> tuple[int, float]:
    parts = entry["partitions"]
    return sum(p["lag_records"] for p in parts), max((p["lag_s"] for p in parts), default=0.0)


class Tops:
    """Best bid and ask of every instrument, from the Redis read model."""

    def __init__(self, settings: Settings) -> None:
        from tradex.projections.redis_read import MarketReader

        self.reader = MarketReader(settings)
        self.markets: dict[int, Any] = {}

    def read(self) -> list[Top]:
        from tradex.queries.markets import market_of

        try:
            if not self.markets:
                self.markets = {i: market_of(row) for i, row in self.reader.instruments().items()}
            tops = []
            for instrument_id, market in list(self.markets.items())[:instruments_shown_max]:
                bbo = self.reader.bbo(instrument_id)
                tops.append(Top(
                    market.binance,
                    market.fmt_price(bbo.bid) if bbo.bid else "", market.fmt_qty(bbo.bid_qty),
                    market.fmt_price(bbo.ask) if bbo.ask else "", market.fmt_qty(bbo.ask_qty),
                ))  # fmt: skip
            return tops
        except Exception:  # the read model not live yet (no version): nothing to show
            self.markets = {}
            return []

    def close(self) -> None:
        self.reader.conn.close()
