"""`tradex bench gen-stream OUT --mix shallow|deep|moves|full --ops N --seed S`.

Writes an order stream (../shared/bench/ORDER_STREAM.md). The generator drives the
TradeX engine in small chunks to know which orders are live (so cancels and amends mostly
hit live orders, some hit dead ones) and where the touch is. The stream itself is plain
data: any engine can replay it.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import numpy as np

from tradex.bench.streams import (
    S_AMEND,
    S_CANCEL,
    S_FOK,
    S_GTC,
    S_IOC,
    S_MARKET,
    S_POST_ONLY,
    STREAM_DTYPE,
    to_commands,
    validate_stream,
    write_stream,
)
from tradex.matching.book import Book, OutputBuffers
from tradex.matching.constants import (
    EV_AMENDED,
    EV_CANCELLED,
    EV_DECREMENTED,
    EV_FILLED,
    EV_RESTED,
)

MIXES: dict[str, dict[int, float]] = {
    "shallow": {S_GTC: 0.70, S_CANCEL: 0.20, S_IOC: 0.10},
    "deep": {S_GTC: 0.70, S_CANCEL: 0.20, S_IOC: 0.10},
    "moves": {S_AMEND: 0.60, S_GTC: 0.25, S_CANCEL: 0.10, S_IOC: 0.05},
    "full": {
        S_GTC: 0.40,
        S_IOC: 0.08,
        S_FOK: 0.05,
        S_POST_ONLY: 0.12,
        S_MARKET: 0.05,
        S_CANCEL: 0.15,
        S_AMEND: 0.15,
    },
}
TARGET_LIVE = {"shallow": 1_000, "deep": 20_000, "moves": 1_000, "full": 1_000}
DEEP_LEVELS_PER_SIDE = 60
START_PRICE = 100_000
CHUNK_OPS = 64  # commands generated against one view of the book
DEAD_HIT_RATE = 0.05  # share of cancels/amends aimed at a dead order
DEAD_RING_MAX = 4096
AMEND_PASSIVE_RATE = 0.95  # a price move that would cross stays passive this often
OPS_MAX = 100_000_000


class LiveSet:
    """Live orders with O(1) random pick and removal (swap-remove)."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.pos: dict[int, int] = {}
        self.info: dict[int, list[int]] = {}  # id -> [side, price, remaining, filled]

    def add(self, oid: int, side: int, price: int, remaining: int, filled: int) -> None:
        if oid not in self.pos:
            self.pos[oid] = len(self.ids)
            self.ids.append(oid)
        self.info[oid] = [side, price, remaining, filled]

    def remove(self, oid: int) -> bool:
        i = self.pos.pop(oid, None)
        if i is None:
            return False
        last = self.ids.pop()
        if last != oid:
            self.ids[i] = last
            self.pos[last] = i
        del self.info[oid]
        return True

    def pick(self, rng: random.Random) -> int:
        return self.ids[rng.randrange(len(self.ids))]

    def __len__(self) -> int:
        return len(self.ids)


class Generator:
    def __init__(self, mix: str, seed: int) -> None:
        self.mix = mix
        self.rng = random.Random(seed)
        self.book = Book(orders_max=1 << 17)
        self.out = OutputBuffers(1 << 17)
        self.live = LiveSet()
        self.dead: list[int] = []
        self.next_id = 1
        self.kinds = list(MIXES[mix])
        self.weights = list(MIXES[mix].values())
        self.target = TARGET_LIVE[mix]
        self._touch: tuple[int, int] | None = None

    # --- book view --------------------------------------------------------------------

    def touch(self) -> tuple[int, int]:
        """(bid, ask) the records of a chunk are priced against (the book does not change
        while a chunk is generated, so it is read once per chunk)."""
        if self._touch is None:
            self._touch = self._read_touch()
        return self._touch

    def _read_touch(self) -> tuple[int, int]:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        last = int(self.book.meta[1]) or START_PRICE  # M_LAST_TRADE
        if bid == 0 and ask == 0:
            return last - 1, last + 1
        if bid == 0:
            return ask - 2, ask
        if ask == 0:
            return bid, bid + 2
        return bid, ask

    def depth_offset(self) -> int:
        """Ticks away from the own touch for a passive order."""
        if self.mix == "deep":
            return self.rng.randrange(0, DEEP_LEVELS_PER_SIDE)
        return min(int(-math.log(1.0 - self.rng.random()) * 3.0), 30)

    def cross_probability(self) -> float:
        drift = (len(self.live) - self.target) / self.target
        return min(0.9, max(0.02, 0.29 + 0.6 * drift))

    # --- records ----------------------------------------------------------------------

    def new_id(self) -> int:
        oid = self.next_id
        self.next_id += 1
        return oid

    def limit_price(self, side: int, crossing: bool) -> int:
        bid, ask = self.touch()
        if crossing:
            return ask + self.rng.randrange(0, 3) if side == 0 else bid - self.rng.randrange(0, 3)
        off = self.depth_offset()
        price = bid - off if side == 0 else ask + off
        return max(price, 1)

    def target_id(self) -> int:
        if self.dead and (self.rng.random() < DEAD_HIT_RATE or not self.live):
            return self.dead[self.rng.randrange(len(self.dead))]
        if not self.live:
            return self.next_id + 1_000_000_000  # never existed
        return self.live.pick(self.rng)

    def record(self, kind: int) -> tuple[int, int, int, int, int]:
        rng = self.rng
        side = rng.randrange(2)
        qty = rng.randrange(1, 11)
        if kind == S_GTC:
            crossing = rng.random() < self.cross_probability()
            return (S_GTC, side, self.new_id(), self.limit_price(side, crossing), qty)
        if kind == S_POST_ONLY:
            return (
                S_POST_ONLY,
                side,
                self.new_id(),
                self.limit_price(side, rng.random() < 0.1),
                qty,
            )
        if kind in (S_IOC, S_FOK):
            return (kind, side, self.new_id(), self.limit_price(side, True), qty)
        if kind == S_MARKET:
            return (S_MARKET, side, self.new_id(), 0, qty)
        oid = self.target_id()
        if kind == S_CANCEL:
            return (S_CANCEL, rng.randrange(2), oid, 0, 0)
        info = self.live.info.get(oid)
        if info is None:  # dead target: any plausible amend, the engine rejects it
            return (S_AMEND, side, oid, self.touch()[side], qty)
        o_side, o_price, remaining, filled = info
        bid, ask = self.touch()
        u = rng.random()
        if u < 0.85:  # move the price, mostly staying passive
            step = rng.randrange(1, 4)
            toward = rng.random() < 0.5
            if o_side == 0:
                price = o_price + step if toward else o_price - step
                if price >= ask and rng.random() < AMEND_PASSIVE_RATE:
                    price = ask - 1
            else:
                price = o_price - step if toward else o_price + step
                if price <= bid and rng.random() < AMEND_PASSIVE_RATE:
                    price = bid + 1
            new_total = filled + max(1, remaining + rng.randrange(-2, 3))
        else:  # same price: size down (keeps priority) or up (loses it)
            price = o_price
            new_total = filled + max(1, remaining + rng.randrange(-3, 3))
        return (S_AMEND, o_side, oid, max(price, 1), new_total)

    # --- driving the engine -----------------------------------------------------------

    def apply(self, records: list[tuple[int, int, int, int, int]]) -> None:
        self._touch = None  # the book moves
        stream = np.array(records, dtype=STREAM_DTYPE)
        res = self.book.process_all(to_commands(stream), self.out)
        for t in res.trades[["maker_id", "qty"]].tolist():
            info = self.live.info.get(t[0])
            if info is not None:
                info[2] -= t[1]
                info[3] += t[1]
        ev = res.events
        for kind, oid, side, price, qty, filled in ev[
            ["kind", "order_id", "side", "price", "qty", "filled"]
        ].tolist():
            if kind == EV_RESTED:
                self.live.add(oid, side, price, qty, filled)
            elif kind in (EV_FILLED, EV_CANCELLED):
                if self.live.remove(oid):
                    self.dead.append(oid)
                    if len(self.dead) > DEAD_RING_MAX:
                        self.dead[self.rng.randrange(DEAD_RING_MAX)] = self.dead.pop()
            elif kind in (EV_AMENDED, EV_DECREMENTED) and oid in self.live.info:
                info = self.live.info[oid]
                info[1], info[2] = price, qty

    def build_deep(self, n: int) -> list[tuple[int, int, int, int, int]]:
        records = []
        for i in range(n):
            side = i & 1
            off = 1 + self.rng.randrange(DEEP_LEVELS_PER_SIDE)
            price = START_PRICE - off if side == 0 else START_PRICE + off
            records.append((S_GTC, side, self.new_id(), price, self.rng.randrange(1, 11)))
        return records

    def generate(self, ops: int) -> np.ndarray:
        records: list[tuple[int, int, int, int, int]] = []
        if self.mix == "deep":
            build = self.build_deep(min(self.target, ops))
            for i in range(0, len(build), 4096):
                self.apply(build[i : i + 4096])
            records.extend(build)
        while len(records) < ops:
            n = min(CHUNK_OPS, ops - len(records))
            chunk = [self.record(kind) for kind in self.rng.choices(self.kinds, self.weights, k=n)]
            self.apply(chunk)
            records.extend(chunk)
        stream = np.array(records, dtype=STREAM_DTYPE)
        validate_stream(stream)
        return stream


def generate(mix: str, ops: int, seed: int) -> np.ndarray:
    """The stream for (mix, ops, seed): same arguments, same bytes."""
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; choose from {', '.join(MIXES)}")
    if not 0 < ops <= OPS_MAX:
        raise ValueError(f"--ops must be in 1..{OPS_MAX}")
    return Generator(mix, seed).generate(ops)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench gen-stream", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", type=Path, help="stream file to write")
    parser.add_argument("--mix", choices=sorted(MIXES), required=True)
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 0 < args.ops <= OPS_MAX:
        parser.error(f"--ops must be in 1..{OPS_MAX}")
    stream = generate(args.mix, args.ops, args.seed)
    write_stream(args.out, stream)
    counts = {
        int(op): int(n) for op, n in zip(*np.unique(stream["op"], return_counts=True), strict=True)
    }
    print(
        f"wrote {len(stream)} records to {args.out} (mix {args.mix}, seed {args.seed}, ops by code {counts})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
