"""The fair-value path every agent of one instrument sees: a seeded random walk with jumps.

Integer arithmetic only (micro-ticks, parts per million), driven by ``random.Random``'s
integer draws, so the path is the same bits on every machine and Python 3.11+ build — no
``math.exp`` or ``gauss`` whose last bit may differ between C libraries.

Each step the value moves by ``sum of 4 uniforms in [-vol_ppm, vol_ppm]`` parts per million
(a bell-shaped step, standard deviation ~1.15 · vol_ppm), plus, with probability
``jump_ppm`` per million steps, a jump of ``jump_bps`` basis points up or down. It is kept
within ``[floor, ceiling]`` of its start (a step that would leave is reflected), so it stays
inside the book's price window and the accounts' funding.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MICRO = 1_000_000  # micro-ticks per tick
PPM = 1_000_000
UNIFORMS_PER_STEP = 4


@dataclass(frozen=True)
class PathParams:
    vol_ppm: int = 60  # per step, per uniform
    jump_ppm: int = 400  # probability of a jump per step, per million
    jump_bps: int = 40
    floor_pct: int = 50  # of the start value
    ceiling_pct: int = 200


class FairValue:
    """One instrument's fair value in micro-ticks; :meth:`advance` moves it one step."""

    def __init__(self, start_ticks: int, rng: random.Random, params: PathParams) -> None:
        assert start_ticks > 0, start_ticks
        assert 0 < params.floor_pct < 100 < params.ceiling_pct, params
        self.rng = rng
        self.params = params
        self.micro = start_ticks * MICRO
        self.floor = start_ticks * MICRO * params.floor_pct // 100
        self.ceiling = start_ticks * MICRO * params.ceiling_pct // 100
        self.jumps = 0

    @property
    def ticks(self) -> int:
        """The fair value rounded to whole ticks (>= 1)."""
        return max(1, (self.micro + MICRO // 2) // MICRO)

    def advance(self) -> int:
        """One step; the new value in ticks."""
        p, rng = self.params, self.rng
        move_ppm = sum(rng.randint(-p.vol_ppm, p.vol_ppm) for _ in range(UNIFORMS_PER_STEP))
        if rng.randrange(PPM) < p.jump_ppm:
            self.jumps += 1
            move_ppm += (p.jump_bps * 100) * (1 if rng.randrange(2) else -1)
        moved = self.micro + self.micro * move_ppm // PPM
        if not self.floor <= moved <= self.ceiling:
            moved = self.micro - self.micro * move_ppm // PPM  # reflect
        self.micro = min(self.ceiling, max(self.floor, moved))
        assert self.floor <= self.micro <= self.ceiling
        return self.ticks
