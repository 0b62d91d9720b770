"""What a run reports: :class:`SimStats` every second, :class:`SimResult` at the end, and
the latency histogram behind their percentiles."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np

LATENCY_BUCKET_MS = 0.1
LATENCY_MS_MAX = 60_000.0  # slower acks count in the last bucket


class LatencyHistogram:
    """Ack latencies in 0.1 ms buckets up to a minute: percentiles of any number of samples
    in fixed memory."""

    def __init__(self) -> None:
        self.buckets = np.zeros(int(LATENCY_MS_MAX / LATENCY_BUCKET_MS) + 1, np.int64)
        self.count = 0

    def add(self, latency_ms: float) -> None:
        assert latency_ms >= 0, latency_ms
        index = min(len(self.buckets) - 1, int(latency_ms / LATENCY_BUCKET_MS))
        self.buckets[index] += 1
        self.count += 1

    def percentile_ms(self, fraction: float) -> float | None:
        """The upper edge of the bucket holding the ``fraction`` quantile (None: no sample)."""
        assert 0 < fraction <= 1, fraction
        if not self.count:
            return None
        rank = max(1, int(np.ceil(self.count * fraction)))
        index = int(np.searchsorted(np.cumsum(self.buckets), rank))
        return round((index + 1) * LATENCY_BUCKET_MS, 1)


def percentile_ms(samples: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of a window's samples (None: no sample)."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, int(np.ceil(len(ordered) * fraction)))
    return round(ordered[rank - 1], 1)


@dataclasses.dataclass(frozen=True)
class SimStats:
    """A snapshot, taken every second while the run goes on (rates over the last second)."""

    elapsed_s: float
    commands_planned: int
    sent: int  # commands submitted so far
    answered: int  # ... whose outcome came back
    in_flight: int
    commands_per_s: float
    orders_per_s: float  # PlaceOrder commands submitted
    trades_per_s: float
    ack_p50_ms: float | None  # of the outcomes read in the last second
    ack_p99_ms: float | None
    trades: int
    rejects: dict[str, int]  # totals by reason: the account processor's and the engine's
    phase: str  # "sending" | "draining"


@dataclasses.dataclass(frozen=True)
class SimResult:
    seed: int
    instruments: int
    accounts: int
    rate: float
    start_ns: int
    commands: int  # submitted
    orders: int  # PlaceOrder among them
    skipped: int  # cancels/amends not sent: their order is too old to be remembered
    timeouts: int  # commands with no outcome in time (the run is then not reproducible)
    misplaced: int  # commands not at their predicted log position (another writer: ditto)
    trades: int
    volume_lots: int
    rejects: dict[str, int]
    send_s: float  # first command to last command submitted
    elapsed_s: float  # to the last outcome, fill and settlement processed
    commands_per_s: float  # achieved while sending
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    trades_hash: str  # sha256 of the trades (docs/sim.md): equal for equal seeds

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        rejects = ", ".join(f"{k} {v:,}" for k, v in Counter(self.rejects).most_common())
        return "\n".join([
            f"commands  {self.commands:,} sent ({self.orders:,} orders) in {self.send_s:.1f} s "
            f"= {self.commands_per_s:,.0f}/s (asked {self.rate:,.0f}/s); "
            f"{self.skipped:,} skipped, {self.timeouts:,} timed out, {self.misplaced:,} misplaced",
            f"trades    {self.trades:,} ({self.volume_lots:,} lots)",
            f"ack       p50 {_ms(self.ack_p50_ms)}  p99 {_ms(self.ack_p99_ms)}",
            f"rejects   {rejects or 'none'}",
            f"elapsed   {self.elapsed_s:.1f} s (to the last settlement)",
            f"trades hash {self.trades_hash} (seed {self.seed})",
        ])  # fmt: skip


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def stats_line(s: SimStats) -> str:
    rejects = ", ".join(f"{k} {v:,}" for k, v in Counter(s.rejects).most_common(4))
    return (
        f"{s.elapsed_s:6.1f}s {s.phase:<8} sent {s.sent:,}/{s.commands_planned:,}  "
        f"{s.commands_per_s:,.0f} cmd/s  {s.orders_per_s:,.0f} orders/s  "
        f"{s.trades_per_s:,.0f} trades/s  ack p50 {_ms(s.ack_p50_ms)} p99 {_ms(s.ack_p99_ms)}  "
        f"in flight {s.in_flight:,}  trades {s.trades:,}  rejects: {rejects or 'none'}"
    )
