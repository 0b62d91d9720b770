"""A seeded ``order-requests`` backlog for ``tradex bench matcher-service``.

Records as the account and reference processors write them (Avro, Confluent wire format,
key = the instrument id): one ``InstrumentRules`` per instrument first, then new orders
(about half of them crossing the touch when they arrive), cancels and amends of live orders,
spread over the instruments. Times advance 20 µs per record. Pure function of its arguments.

Mix per request after the rules: 70 % new orders (GTC 80 %, IOC 10 %, MARKET 5 %, FOK and
POST_ONLY 2.5 % each; half priced through the touch, half behind it), 25 % cancels of a
random live order (some already filled: those are rejected), 5 % amends (a new price
behind the touch or a smaller quantity). 1,000 accounts; 5 % of new orders ask for
self-trade prevention.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from tradex.domain.ids import event_id
from tradex.domain.orders import AmendOrder, CancelOrderRequest, InstrumentRules, NewOrder
from tradex.domain.types import InstrumentKind, InstrumentStatus, OrderKind, Side, StpMode
from tradex.log.keys import instrument_key
from tradex.schemas.codec import Codec, EnvelopeFields

T0_NS = 1_767_225_600_000_000_000  # 2026-01-01
STEP_NS = 20_000  # request time advances 20 µs per record
MID_TICKS = 10_000  # every instrument starts around this price
ACCOUNTS = 1_000
LIVE_MAX = 20_000  # live orders remembered per instrument for cancels and amends
PRODUCER = "accounts/0"

Record = tuple[bytes | None, bytes]


class _Book:
    """What the generator remembers of one instrument: a drifting mid and live ids."""

    __slots__ = ("live", "mid")

    def __init__(self) -> None:
        self.mid = MID_TICKS
        self.live: list[tuple[int, int]] = []  # (order_id, account_id) that may still rest


def bench_feed(seed: int, requests: int, instruments: int) -> Iterator[Record]:
    """``requests`` order requests (after ``instruments`` rules records), seeded."""
    assert requests > 0
    assert 0 < instruments <= 4_096
    codec = Codec.offline()
    rng = random.Random(seed)
    books = {i: _Book() for i in range(1, instruments + 1)}
    n = 0

    def record(obj: object, instrument_id: int) -> Record:
        nonlocal n
        time_ns = T0_NS + n * STEP_NS
        command = f"cmd-{seed}-{n}"
        fields = EnvelopeFields(event_id(time_ns, 0, 0, n, 1), command, command, PRODUCER, 0)
        n += 1
        return instrument_key(instrument_id), codec.encode_domain(obj, fields).data

    for instrument_id in books:
        rules = InstrumentRules(instrument_id, f"I{instrument_id}", InstrumentKind.SPOT,
                                InstrumentStatus.TRADING, 1, 1, 0, 0, 1_000, 2_000,
                                T0_NS + n * STEP_NS)  # fmt: skip
        yield record(rules, instrument_id)
    next_order = 1
    for _ in range(requests):
        instrument_id = rng.randrange(1, instruments + 1)
        book = books[instrument_id]
        time_ns = T0_NS + n * STEP_NS
        r = rng.random()
        if r < 0.25 and book.live:
            order_id, account_id = book.live.pop(rng.randrange(len(book.live)))
            yield record(CancelOrderRequest(order_id, account_id, instrument_id, time_ns),
                         instrument_id)  # fmt: skip
            continue
        if r < 0.30 and book.live:
            order_id, account_id = book.live[rng.randrange(len(book.live))]
            if rng.random() < 0.5:
                amend = AmendOrder(order_id, account_id, instrument_id, 0, rng.randrange(1, 6),
                                   time_ns)  # fmt: skip
            else:
                price = book.mid + rng.choice((-1, 1)) * rng.randrange(3, 20)
                amend = AmendOrder(order_id, account_id, instrument_id, price, 0, time_ns)
            yield record(amend, instrument_id)
            continue
        book.mid += rng.choice((-1, 0, 0, 1))
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        sign = 1 if side == Side.BUY else -1
        crossing = rng.random() < 0.5
        offset = rng.randrange(1, 4) if crossing else -rng.randrange(1, 30)
        price = book.mid + sign * offset
        u = rng.random()
        kind = (
            OrderKind.GTC if u < 0.80 else OrderKind.IOC if u < 0.90
            else OrderKind.MARKET if u < 0.95 else OrderKind.FOK if u < 0.975
            else OrderKind.POST_ONLY
        )  # fmt: skip
        protection = 0
        if kind == OrderKind.MARKET:
            price = book.mid + sign * 50  # the protection price
            protection = rng.choice((0, 0, 5))
        stp = StpMode.CANCEL_TAKER if rng.random() < 0.05 else StpMode.NONE
        account_id = rng.randrange(1, ACCOUNTS + 1)
        order = NewOrder(next_order, account_id, instrument_id, side, kind, price,
                         rng.randrange(1, 10), protection, stp, 1_000, 2_000, time_ns)  # fmt: skip
        yield record(order, instrument_id)
        if kind in (OrderKind.GTC, OrderKind.POST_ONLY):
            book.live.append((next_order, account_id))
            if len(book.live) > LIVE_MAX:
                book.live.pop(0)
        next_order += 1
