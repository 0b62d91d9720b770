"""The fair-value path: seeded, integer, bounded, and moving like a random walk with jumps."""

from __future__ import annotations

import random

from tradex.sim.fair_value import MICRO, FairValue, PathParams

STEPS = 20_000


def path(seed: int, params: PathParams | None = None, start: int = 60_000) -> list[int]:
    fair = FairValue(start, random.Random(seed), params or PathParams())
    return [fair.advance() for _ in range(STEPS)]


def test_same_seed_same_path_and_another_seed_another() -> None:
    assert path(3) == path(3)
    assert path(3) != path(4)


def test_stays_within_its_floor_and_ceiling() -> None:
    wild = PathParams(vol_ppm=5_000, jump_ppm=50_000, jump_bps=500)
    values = path(1, wild, start=1_000)
    assert min(values) >= 500
    assert max(values) <= 2_000
    assert min(values) < 700 and max(values) > 1_500, "a wild walk should reach near its bounds"


def test_steps_are_small_and_centred_and_jumps_happen() -> None:
    params = PathParams()
    fair = FairValue(60_000, random.Random(9), params)
    moves_ppm = []
    for _ in range(STEPS):
        before = fair.micro
        fair.advance()
        moves_ppm.append((fair.micro - before) * 1_000_000 // before)
    big = [m for m in moves_ppm if abs(m) > 4 * params.vol_ppm]
    # jumps are the only moves beyond 4 * vol_ppm (the sum of 4 uniforms cannot reach it)
    assert fair.jumps == len(big) > 0
    assert abs(sum(m for m in moves_ppm if abs(m) <= 4 * params.vol_ppm)) / STEPS < params.vol_ppm
    assert fair.micro % 1 == 0 and fair.ticks == (fair.micro + MICRO // 2) // MICRO
