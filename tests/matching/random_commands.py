"""Seeded random command streams that exercise every rule of the engine (test helper)."""

from __future__ import annotations

import math
import random

import numpy as np

from tradex.matching import constants as k
from tradex.matching.dtypes import COMMAND_DTYPE

PARTITION_SHIFT = 40


def random_commands(n: int, seed: int, centre: int = 5000) -> np.ndarray:
    """``n`` commands: all order kinds, STP modes, band and halt rules, amends, market
    protection and hard limits, invalid fields, unknown and foreign ids. Ids look like live ones,
    ``(partition << 40) | offset``."""
    rng = random.Random(seed)
    rows: list[dict[str, int]] = []
    issued: list[tuple[int, int, int]] = []  # (order_id, owner, side)
    next_offset = 1
    halted = False
    for i in range(n):
        r = rng.random()
        row: dict[str, int] = {}
        rows.append(row)
        row["timestamp_ns"] = 1_700_000_000_000_000_000 + i * 1000
        row["stp_mode"] = int(rng.randrange(0, 5)) if rng.random() < 0.9 else 7
        if halted and rng.random() < 0.05:
            halted = False
            row["op"], row["band_bps"], row["halted"] = (
                k.OP_RULES,
                int(rng.choice([0, 100, 300])),
                0,
            )
            continue
        if r < 0.01:
            halted = rng.random() < 0.3
            row["op"] = k.OP_RULES
            row["band_bps"] = int(rng.choice([0, 0, 20, 100, 500, -5]))
            row["halted"] = int(halted) if rng.random() < 0.95 else 2
            continue
        if r < 0.012:
            row["op"] = int(rng.choice([0, 9, -1]))
            row["order_id"] = 5
            continue
        if r < 0.62 or not issued:
            op = int(rng.choice([1, 1, 1, 1, 2, 2, 3, 4, 4, 5]))
            side = int(rng.randrange(0, 2))
            owner = int(rng.randrange(1, 6))
            oid = (int(rng.randrange(0, 4)) << PARTITION_SHIFT) | next_offset
            next_offset += 1
            u = rng.random()
            if u < 0.01:
                oid = 0 if rng.random() < 0.5 else -oid
            elif u < 0.02 and issued:
                oid = issued[int(rng.randrange(0, len(issued)))][0]  # duplicate id
            spread = int(rng.randrange(-6, 7))
            price = centre + spread if side == k.SIDE_BUY else centre - spread
            price += int(rng.randrange(-3, 4))
            if rng.random() < 0.01:
                price = centre + int(rng.choice([-3000, 3000, 900, 80]))  # out of window / band
            if rng.random() < 0.005:
                price = int(rng.choice([0, -1]))
            qty = int(rng.randrange(1, 25))
            if rng.random() < 0.005:
                qty = int(rng.choice([0, -3]))
            if rng.random() < 0.003:
                side = 2
            if op == k.OP_MARKET:
                # no hard limit, one near the touch (it often stops the sweep), a bad one
                u = rng.random()
                price = 0 if u < 0.5 else centre + int(rng.randrange(-8, 9)) if u < 0.98 else -7
                prot = int(rng.choice([-1, -1, 0, 1, 2, 5, -4]))
                row["protection_ticks"] = prot
            row["op"], row["side"], row["order_id"], row["owner"] = op, side, oid, owner
            row["price"], row["qty"] = price, qty
            if oid > 0:
                issued.append((oid, owner, side))
            continue
        # cancel or amend an issued order (mostly recent ones, many still live)
        j = (
            len(issued)
            - 1
            - min(int(math.log(1.0 - rng.random()) / math.log(0.97)), len(issued) - 1)
        )
        oid, owner, side = issued[j]
        if rng.random() < 0.03:
            owner = owner % 5 + 1  # someone else's order
        if rng.random() < 0.02:
            oid = (7 << PARTITION_SHIFT) | int(rng.randrange(1, 10**6))  # never existed
        if r < 0.80:
            row["op"], row["order_id"], row["owner"] = k.OP_CANCEL, oid, owner
            row["side"] = int(rng.randrange(0, 2))  # ignored by cancel
        elif rng.random() < 0.6:
            row["op"], row["order_id"], row["owner"] = k.OP_AMEND, oid, owner
            row["side"] = side if rng.random() < 0.97 else 1 - side
            row["price"] = centre + int(rng.randrange(-8, 9)) if rng.random() < 0.99 else 0
            row["qty"] = int(rng.randrange(-1, 40))
        else:  # the kernel keeps what is 0 and takes the side from the order
            row["op"], row["order_id"], row["owner"] = k.OP_AMEND_KEEP, oid, owner
            row["side"] = int(rng.choice([0, 1, 5]))  # ignored
            u = rng.random()
            row["price"] = 0 if u < 0.4 else centre + int(rng.randrange(-8, 9)) if u < 0.99 else -2
            row["qty"] = 0 if rng.random() < 0.4 else int(rng.randrange(-1, 40))
    names = COMMAND_DTYPE.names
    assert names is not None
    out = np.zeros(n, COMMAND_DTYPE)
    for name in names:
        out[name] = [row.get(name, 0) for row in rows]
    return out
