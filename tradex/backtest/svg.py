"""Inline SVG charts for the backtest report: no dependency, byte-stable output (every
coordinate printed with one decimal), readable in any browser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import NamedTuple

WIDTH = 640
HEIGHT = 220
MARGIN_LEFT = 64
MARGIN_RIGHT = 12
MARGIN_TOP = 26
MARGIN_BOTTOM = 30
POINTS_MAX = 2_000  # per series: longer ones are thinned to this many (evenly, last kept)
BARS_MAX = 24


class Series(NamedTuple):
    name: str
    color: str
    xs: Sequence[float]
    ys: Sequence[float]


def _f(v: float) -> str:
    return f"{v:.1f}"


def _thin(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    n = len(xs)
    if n <= POINTS_MAX:
        return list(xs), list(ys)
    step = n / POINTS_MAX
    keep = sorted({int(i * step) for i in range(POINTS_MAX)} | {n - 1})
    return [xs[i] for i in keep], [ys[i] for i in keep]


def _ticks(lo: float, hi: float) -> list[float]:
    """Round values (1, 2 or 5 x 10^k apart) spanning [lo, hi], about five of them."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    count = int((hi - first) / step + 1e-9) + 1
    return [first + i * step for i in range(count)]


def _label(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:.4g}"


def _frame(
    title: str, y_lo: float, y_hi: float, x_lo: float, x_hi: float, x_label: str
) -> list[str]:
    w, h = WIDTH, HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">',
        f'<text x="{MARGIN_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{w - MARGIN_LEFT - MARGIN_RIGHT}" '
        f'height="{h - MARGIN_TOP - MARGIN_BOTTOM}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for v in _ticks(y_lo, y_hi):
        y = _y(v, y_lo, y_hi)
        parts.append(f'<line x1="{MARGIN_LEFT}" x2="{w - MARGIN_RIGHT}" y1="{_f(y)}" '
                     f'y2="{_f(y)}" stroke="#e4e4e4"/>')  # fmt: skip
        parts.append(f'<text x="{MARGIN_LEFT - 4}" y="{_f(y + 4)}" text-anchor="end">'
                     f"{_label(v)}</text>")  # fmt: skip
    for v in _ticks(x_lo, x_hi):
        x = _x(v, x_lo, x_hi)
        parts.append(f'<text x="{_f(x)}" y="{h - MARGIN_BOTTOM + 14}" text-anchor="middle">'
                     f"{_label(v)}</text>")  # fmt: skip
    parts.append(f'<text x="{w - MARGIN_RIGHT}" y="{h - 4}" text-anchor="end" fill="#666">'
                 f"{escape(x_label)}</text>")  # fmt: skip
    return parts


def _x(v: float, lo: float, hi: float) -> float:
    span = hi - lo if hi > lo else 1.0
    return MARGIN_LEFT + (v - lo) / span * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)


def _y(v: float, lo: float, hi: float) -> float:
    span = hi - lo if hi > lo else 1.0
    return HEIGHT - MARGIN_BOTTOM - (v - lo) / span * (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)


def _legend(series: Sequence[Series]) -> list[str]:
    """Series names under the plot, from the left."""
    parts, x = [], MARGIN_LEFT
    for s in series:
        parts.append(f'<text x="{x}" y="{HEIGHT - 4}" fill="{s.color}">■ {escape(s.name)}</text>')
        x += 16 + 7 * len(s.name)
    return parts


def line_chart(title: str, series: Sequence[Series], x_label: str, step: bool = False) -> str:
    """Lines (``step``: a value holds until the next point) sharing both axes."""
    xs_all = [x for s in series for x in s.xs]
    ys_all = [y for s in series for y in s.ys]
    if not xs_all:
        return f'<p class="empty">{escape(title)}: no data</p>'
    x_lo, x_hi, y_lo, y_hi = min(xs_all), max(xs_all), min(ys_all), max(ys_all)
    if y_lo == y_hi:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    parts = _frame(title, y_lo, y_hi, x_lo, x_hi, x_label)
    parts += _legend(series)
    for s in series:
        xs, ys = _thin(s.xs, s.ys)
        coords: list[str] = []
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            if step and i > 0:
                coords.append(f"{_f(_x(x, x_lo, x_hi))},{_f(_y(ys[i - 1], y_lo, y_hi))}")
            coords.append(f"{_f(_x(x, x_lo, x_hi))},{_f(_y(y, y_lo, y_hi))}")
        parts.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="1.5" '
                     f'points="{" ".join(coords)}"/>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(title: str, categories: Sequence[str], series: Sequence[Series]) -> str:
    """Grouped bars: one group per category, one bar per series (``ys`` by category)."""
    categories = list(categories)[:BARS_MAX]
    if not categories:
        return f'<p class="empty">{escape(title)}: no data</p>'
    values = [v for s in series for v in list(s.ys)[: len(categories)]]
    y_lo, y_hi = min(0.0, *values), max(0.0, *values)
    if y_lo == y_hi:
        y_hi = y_lo + 1
    parts = _frame(title, y_lo, y_hi, 0, 0, "")[:-1]
    parts = [p for p in parts if 'text-anchor="middle"' not in p]
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    group_w = plot_w / len(categories)
    bar_w = group_w * 0.8 / max(len(series), 1)
    zero = _y(0.0, y_lo, y_hi)
    parts += _legend(series)
    for c, name in enumerate(categories):
        gx = MARGIN_LEFT + c * group_w
        for k, s in enumerate(series):
            v = float(s.ys[c])
            y = _y(v, y_lo, y_hi)
            top, height = (y, zero - y) if v >= 0 else (zero, y - zero)
            parts.append(f'<rect x="{_f(gx + group_w * 0.1 + k * bar_w)}" y="{_f(top)}" '
                         f'width="{_f(bar_w)}" height="{_f(height)}" fill="{s.color}">'
                         f"<title>{escape(s.name)} {escape(name)}: {v:.0f}</title></rect>")  # fmt: skip
        parts.append(f'<text x="{_f(gx + group_w / 2)}" y="{HEIGHT - MARGIN_BOTTOM + 14}" '
                     f'text-anchor="middle">{escape(name)}</text>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)
