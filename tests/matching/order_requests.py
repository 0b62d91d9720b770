"""Building ``order-requests`` records for the matcher's tests (as the account and reference
processors write them: Avro, Confluent wire format, key = instrument id)."""

from __future__ import annotations

import random

from tradex.domain.ids import event_id
from tradex.domain.orders import AmendOrder, CancelOrderRequest, InstrumentRules, NewOrder
from tradex.domain.types import InstrumentKind, InstrumentStatus, OrderKind, Side, StpMode
from tradex.matching.partition import InputRecord
from tradex.schemas.codec import Codec, EnvelopeFields

T0_NS = 1_767_225_600_000_000_000  # 2026-01-01


class Feed:
    """Records in the order they are made; ``time_ns`` advances 1 ms per record, minus up
    to ``jitter_ms`` (seeded) so request times can go backwards, unless ``at`` sets it."""

    def __init__(self, codec: Codec, jitter_ms: int = 0, seed: int = 0) -> None:
        self.codec = codec
        self.records: list[tuple[bytes | None, bytes]] = []
        self.jitter_ms = jitter_ms
        self.rng = random.Random(seed)
        self.at: int | None = None  # the next records' time, when set

    def _add(self, obj: object, instrument_id: int) -> None:
        n = len(self.records)
        fields = EnvelopeFields(event_id(T0_NS + n * 1_000_000, 0, 0, n, 0), f"c{n}", f"r{n}",
                                "test", 0)  # fmt: skip
        sealed = self.codec.encode_domain(obj, fields)
        self.records.append((str(instrument_id).encode(), sealed.data))

    def now(self) -> int:
        if self.at is not None:
            return self.at
        jitter_ms = self.rng.randrange(self.jitter_ms + 1) if self.jitter_ms else 0
        return T0_NS + (len(self.records) - jitter_ms) * 1_000_000

    def rules(self, instrument_id: int, band_bps: int = 0, halted: bool = False) -> None:
        status = InstrumentStatus.HALTED if halted else InstrumentStatus.TRADING
        rules = InstrumentRules(instrument_id, f"I{instrument_id}", InstrumentKind.SPOT, status,
                                1, 1, 0, band_bps, 100, 200, self.now())  # fmt: skip
        self._add(rules, instrument_id)

    def new(
        self,
        order_id: int,
        account_id: int,
        instrument_id: int,
        side: str,
        price: int,
        qty: int,
        kind: str = "GTC",
        stp: str = "NONE",
        protection_ticks: int = 0,
    ) -> None:
        order = NewOrder(order_id, account_id, instrument_id, Side(side), OrderKind(kind), price,
                         qty, protection_ticks, StpMode(stp), 100, 200, self.now())  # fmt: skip
        self._add(order, instrument_id)

    def cancel(self, order_id: int, account_id: int, instrument_id: int) -> None:
        self._add(
            CancelOrderRequest(order_id, account_id, instrument_id, self.now()), instrument_id
        )

    def amend(
        self, order_id: int, account_id: int, instrument_id: int, new_price: int, new_qty: int,
        stp: str = "NONE",
    ) -> None:  # fmt: skip
        amend = AmendOrder(order_id, account_id, instrument_id, new_price, new_qty, self.now(),
                           StpMode(stp))  # fmt: skip
        self._add(amend, instrument_id)

    def raw(self, key: bytes | None, value: bytes) -> None:
        self.records.append((key, value))

    def inputs(self, partition: int = 0, first_offset: int = 0) -> list[InputRecord]:
        return [
            InputRecord(partition, first_offset + i, key, value, 1_767_225_600_000 + i)
            for i, (key, value) in enumerate(self.records)
        ]


def random_feed(
    seed: int,
    records: int,
    instruments: tuple[int, ...] = (1, 2, 3),
    codec: Codec | None = None,
    jitter_ms: int = 0,
) -> Feed:
    """A seeded stream of every request kind (rules, halts, all order kinds, STP modes,
    cancels and amends of live orders) over ``instruments``; ``jitter_ms``: request times
    go back up to that much (see :class:`Feed`)."""
    codec = codec or Codec.offline()
    rng = random.Random(seed)
    feed = Feed(codec, jitter_ms, seed)
    for instrument in instruments:
        feed.rules(instrument, band_bps=rng.choice((0, 0, 2_000)))
    next_id = 1
    live: list[tuple[int, int, int, str]] = []  # (order, account, instrument, its stp mode)
    kinds = ("GTC", "GTC", "GTC", "IOC", "FOK", "POST_ONLY", "MARKET")
    stps = ("NONE", "NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT")
    for _ in range(records):
        instrument = rng.choice(instruments)
        r = rng.random()
        if r < 0.2 and live:
            order_id, account, inst, _ = live.pop(rng.randrange(len(live)))
            feed.cancel(order_id, account, inst)
        elif r < 0.25 and live:
            order_id, account, inst, stp = rng.choice(live)  # the order's mode, as accounts do
            feed.amend(order_id, account, inst, rng.choice((0, 100 + rng.randrange(-4, 5))),
                       rng.choice((0, rng.randrange(1, 12))), stp)  # fmt: skip
        elif r < 0.27:
            feed.rules(instrument, band_bps=rng.choice((0, 2_000)), halted=rng.random() < 0.3)
        else:
            account = rng.randrange(1, 6)
            side = rng.choice(("BUY", "SELL"))
            kind = rng.choice(kinds)
            price = 100 + rng.randrange(-6, 7)
            stp = rng.choice(stps)
            feed.new(next_id, account, instrument, side, price, rng.randrange(1, 10), kind=kind,
                     stp=stp, protection_ticks=rng.choice((0, 0, 2)))  # fmt: skip
            live.append((next_id, account, instrument, stp))
            next_id += 1
    return feed
