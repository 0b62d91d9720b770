"""Order trips for ``tradex bench ledger --micro --trip``: what the account processor decides
for each order end to end — its PlaceOrder, the FillLegs the matcher settles it with and its
OrderEnded — as the records a consumer would hand out (no Kafka).

Every account is funded first; then orders (half buys, half sells, GTC limits) are placed and
each is settled later, interleaved with other orders: one to ``FILLS_MAX`` fills (maker or
taker, at the limit or better) covering all or part of the order, then its end (FILLED or
CANCELLED). The processor's CPU per order is the run's CPU over ``orders``.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from confluent_kafka import Message

from tradex.commands.client import encode_command
from tradex.domain import Deposit, EndReason, FillLeg, OrderEnded, OrderKind, PlaceOrder, Side
from tradex.domain.ids import order_id
from tradex.domain.types import Liquidity
from tradex.log.ids import EventSource, matcher_event_id
from tradex.log.keys import account_key, account_partition
from tradex.schemas.codec import Codec, EnvelopeFields

T0 = 1_700_000_000_000_000_000
FILLS_MAX = 3
OPEN_TRIPS_MAX = 2_000  # orders placed and not yet ended at any moment
FUNDS = 10**12  # per account and asset: every order is affordable


def trip_messages(
    codec: Codec, commands_topic: str, settlements_topic: str, instrument: int, orders: int,
    accounts: int, partitions: int, seed: int,
) -> list[Message]:  # fmt: skip
    """The funding deposits, then ``orders`` trips interleaved (see the module doc)."""
    assert orders > 0, orders
    assert accounts > 0, accounts
    rng = random.Random(seed)
    offsets: dict[tuple[str, int], int] = {}
    messages: list[Message] = []
    clock = [T0]

    def add(topic: str, account: int, value: bytes) -> int:
        partition = account_partition(account, partitions)
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        key = account_key(account)
        messages.append(
            Message(topic=topic, partition=partition, offset=offset, value=value, key=key)
        )
        clock[0] += 1_000
        return order_id(partition, offset)

    def settle(record: Any) -> None:
        fields = EnvelopeFields(
            matcher_event_id(clock[0], EventSource.MATCHER_SETTLEMENTS, 0, len(messages), 0),
            f"engine-{len(messages)}", f"order-{record.order_id}", "matcher/0", 0,
        )  # fmt: skip
        add(settlements_topic, record.account_id, codec.encode_domain(record, fields).data)

    for account in range(1, accounts + 1):
        for asset in ("USD", "BTC"):
            deposit = Deposit(f"fund-{account}-{asset}", account, clock[0], asset, FUNDS)
            add(commands_topic, account, encode_command(codec, deposit))
    open_trips: deque[list[Any]] = deque()  # [account, order id, side, price, qty left, fills]
    placed = trade = 0
    records_max = orders * (FILLS_MAX + 2)  # every loop step writes one record
    for _ in range(records_max):
        if placed == orders and not open_trips:
            break
        if placed < orders and (len(open_trips) < OPEN_TRIPS_MAX and rng.random() < 0.4):
            account = rng.randint(1, accounts)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            price, qty = rng.randint(95, 105), rng.randint(2, 30)
            command = PlaceOrder(
                f"o{placed}", account, clock[0], instrument, side, OrderKind.GTC, price, qty
            )
            oid = add(commands_topic, account, encode_command(codec, command))
            open_trips.append([account, oid, side, price, qty, rng.randint(1, FILLS_MAX)])
            placed += 1
            continue
        if not open_trips:
            continue
        trip = open_trips[0]
        account, oid, side, price, left, fills = trip
        if fills > 0 and left > 0:
            qty = left if fills == 1 else rng.randint(1, left)
            better = rng.randint(0, 2)
            fill_price = price - better if side == Side.BUY else price + better
            trade += 1
            liquidity = Liquidity.MAKER if rng.random() < 0.5 else Liquidity.TAKER
            settle(FillLeg(account, oid, trade, instrument, side, fill_price, qty, liquidity,
                           clock[0]))  # fmt: skip
            trip[4], trip[5] = left - qty, fills - 1
            open_trips.rotate(-1)  # other orders' settlements come in between
            continue
        reason = EndReason.FILLED if left == 0 else EndReason.CANCELLED
        settle(OrderEnded(account, oid, instrument, reason, clock[0]))
        open_trips.popleft()
    assert placed == orders and not open_trips, "records_max too small for the trips"
    return messages
