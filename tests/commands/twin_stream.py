"""A seeded stream of account-processor inputs that exercises every path of the compiled
kernel and of the Python domain it hands records back to (test_compiled_twin.py).

The stream is a list of steps: a batch of input records (``confluent_kafka.Message``, both
input topics interleaved, as the stage hands them over) or a list of reference commands to
apply between batches (rules change, an instrument halts and resumes, accounts open late,
an asset appears). It mixes, by a seeded roll per record: deposits (also of unknown assets,
of unopened accounts, non-positive and overflowing amounts), orders of every kind on four
instruments (a spot one without fees, a perpetual one, one that halts; prices and quantities
also non-positive or overflowing; some unaffordable, some below the minimum notional),
cancels, withdrawals requested / approved / rejected, fills of earlier orders (partial,
maker and taker, price improvement, and wrong ones: overfills, the other side, another
instrument, beyond the limit, unknown orders), order ends (twice, of unknown orders),
re-sent records and re-used command ids, and records that are dead letters (empty,
garbage, truncated, a flipped byte, trailing bytes, an enum index out of range, invalid
UTF-8, a command id too long, a settlement on the commands topic, an older schema of
another record, misrouted accounts). Non-ASCII command ids, empty and set correlation ids,
and accounts ``<= 0`` are in it too. Issue 11's commands: actors (the system, the owner,
an admin, a user without the role or the ownership, an unknown user), withdrawals decided
by their requester (MAKER_CHECKER), amends (price and/or quantity, up and down, too low,
unaffordable, of unknown or cancelled orders) and the engine's confirmations of them
(``AmendConfirmed``: of pending amends, of amends never made, beyond the bounds), cancel-alls (all instruments or one, and
continuation records), and client command ids that look like settlement ids. ``HOT`` gets a large share of the records, so its
idempotency window overflows (with the bounds the test lowers) and its open orders reach
the bound.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message

from tradex.commands.client import encode_command
from tradex.domain import (
    AmendConfirmed,
    ApproveWithdrawal,
    CancelAllOrders,
    CancelOrder,
    CreateAsset,
    CreateInstrument,
    Deposit,
    EndReason,
    FillLeg,
    HaltInstrument,
    InstrumentKind,
    Liquidity,
    ModifyOrder,
    OpenAccount,
    OrderEnded,
    OrderKind,
    PlaceOrder,
    RegisterUser,
    RejectWithdrawal,
    RequestWithdrawal,
    ResumeInstrument,
    Side,
    StpMode,
    UpdateInstrumentRules,
)
from tradex.domain.ids import order_id
from tradex.domain.types import INT64_MAX
from tradex.log.ids import EventSource, matcher_event_id
from tradex.log.keys import account_key, account_partition
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields

T0 = 1_700_000_000_000_000_000
USER = 1  # owns every account; an admin and a trader (so it can break maker/checker)
ADMIN, OTHER, STRANGER = 2, 3, 404  # an admin; a trader owning nothing; not a user
ACCOUNTS = tuple(range(1, 201))  # opened before the stream
LATE = tuple(range(201, 211))  # opened part-way: UNKNOWN_ACCOUNT before, decided after
NEVER = (990, 991)  # never opened
HOT = 7  # a large share of the records: its window and its open orders reach their bounds
HOT_SHARE = 0.15
BTC_USD, ETH_USD, PERP, HALTING, MISSING = 1, 2, 3, 4, 99
ORDER_KINDS = tuple(OrderKind)
STP_MODES = tuple(StpMode)
END_REASONS = tuple(EndReason)
BATCH_RECORDS_MAX = 300
REFERENCE_EVERY = 40  # batches between two reference steps


# (id, symbol, kind, base, quote, tick_size, lot_size, min_notional, maker ppm, taker ppm)
INSTRUMENTS = (
    (BTC_USD, "BTC-USD", InstrumentKind.SPOT, "BTC", "USD", 1, 1_000, 100, 1_000, 2_000),
    (ETH_USD, "ETH-USD", InstrumentKind.SPOT, "ETH", "USD", 5, 10**15, 0, 0, 0),  # no fees
    (PERP, "BTC-PERP", InstrumentKind.PERPETUAL, "BTC", "USD", 1, 1_000, 0, 0, 0),
    (HALTING, "ETH-BTC", InstrumentKind.SPOT, "ETH", "BTC", 3, 10**14, 10, 250, 777),
)


def reference_commands() -> list[Any]:
    instruments = [
        CreateInstrument(f"i-{i}", T0, i, symbol, kind, base, quote, tick, lot, least, 500, m, t)
        for i, symbol, kind, base, quote, tick, lot, least, m, t in INSTRUMENTS
    ]
    return [
        CreateAsset("a-btc", T0, "BTC", 8),
        CreateAsset("a-usd", T0, "USD", 2),
        CreateAsset("a-eth", T0, "ETH", 18),
        *instruments,
        RegisterUser("u-1", T0, USER, "twin", "admin,trader"),
        RegisterUser("u-2", T0, ADMIN, "checker", "admin"),
        RegisterUser("u-3", T0, OTHER, "other", "trader"),
        *(OpenAccount(f"open-{a}", T0, a, USER) for a in ACCOUNTS),
    ]


# Reference steps, in turn (each a list of commands applied between two batches).
def reference_changes(step: int) -> list[Any]:
    t = T0 + step
    changes: list[list[Any]] = [
        [HaltInstrument(f"halt-{step}", t, HALTING)],
        [UpdateInstrumentRules(f"rules-{step}", t, BTC_USD, 1_000, 500, 3_333, 1)],
        [ResumeInstrument(f"resume-{step}", t, HALTING)],
        [OpenAccount(f"open-late-{a}", t, a, USER) for a in LATE],
        [CreateAsset("a-doge", t, "DOGE", 8)],
        [UpdateInstrumentRules(f"rules-{step}", t, BTC_USD, 100, 500, 0, 999_999)],
    ]
    return changes[step % len(changes)]


@dataclass
class _Order:
    account: int
    order_id: int
    instrument: int
    side: Side
    price: int
    qty: int
    filled: int = 0


@dataclass
class Stream:
    """The generator's state: offsets per input partition, orders and withdrawals so far."""

    seed: int
    partitions: int
    commands_topic: str
    settlements_topic: str
    codec: Codec = field(default_factory=Codec.offline)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.offsets: dict[tuple[str, int], int] = {}
        self.orders: list[_Order] = []
        self.withdrawals: list[tuple[int, str]] = []
        self.amends: list[tuple[_Order, int, int, int]] = []  # (order, time, new price, new qty)
        self.sent: list[tuple[str, int, bytes, bytes]] = []  # (topic, account, key, value)
        self.trade = 0
        self.count = 0
        self.kinds: dict[str, int] = {}

    # -- records -----------------------------------------------------------------------

    def _message(self, topic: str, partition: int, value: bytes, key: bytes | None) -> Message:
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = offset + 1
        return Message(topic=topic, partition=partition, offset=offset, value=value, key=key)

    def _next_offset(self, topic: str, partition: int) -> int:
        return self.offsets.get((topic, partition), 0)

    def _home(self, account: int) -> int:
        return account_partition(account, self.partitions)

    def _command(self, command: Any, correlation: str = "") -> bytes:
        return encode_command(self.codec, command, "client", correlation)

    def _settlement(self, record: Any, t: int) -> bytes:
        correlation = self.rng.choice(("", "", f"corr-{self.count}", "émoji-✓"))
        fields = EnvelopeFields(
            matcher_event_id(t, EventSource.MATCHER_SETTLEMENTS, 0, self.count, 0),
            f"cause-{self.count}", correlation, "matcher/0", self.count,
        )  # fmt: skip
        return self.codec.encode_domain(record, fields, ZERO_HASH).data

    def _emit(self, topic: str, account: int, value: bytes, kind: str) -> Message:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        key = account_key(account)
        self.sent.append((topic, account, key, value))
        return self._message(topic, self._home(account), value, key)

    def _account(self) -> int:
        rng = self.rng
        if rng.random() < HOT_SHARE:
            return HOT
        roll = rng.random()
        if roll < 0.02:
            return rng.choice(NEVER)
        if roll < 0.05:
            return rng.choice(LATE)
        return rng.choice(ACCOUNTS)

    def _actor(self, admin: bool = False) -> int:
        """Mostly the system; else the owner (USER, also an admin), another admin, a trader
        owning nothing, an unknown user."""
        roll = self.rng.random()
        if roll < 0.6:
            return 0
        if roll < 0.85:
            return ADMIN if admin and roll < 0.75 else USER
        return OTHER if roll < 0.95 else STRANGER

    def _command_id(self, i: int) -> str:
        roll = self.rng.random()
        if roll < 0.01 and self.orders:  # a client's id in the settlements' namespace
            order = self.orders[self.rng.randrange(len(self.orders))]
            return (
                f"end/{order.order_id}"
                if roll < 0.005
                else f"fill/{self.trade + 1}/{order.order_id}"
            )
        if roll < 0.03:
            return f"ordre-{i}-é-€-✓"  # non-ASCII: 1..3-byte characters
        if roll < 0.04:  # at the length bound (valid), or one beyond it (a dead letter)
            return "c" * (128 if self.rng.random() < 0.5 else 129)
        return f"c{i}"

    def _deposit(self, i: int, t: int) -> Message:
        rng = self.rng
        account = self._account()
        asset = rng.choice(("USD", "USD", "BTC", "ETH", "DOGE"))
        roll = rng.random()
        if roll < 0.03:
            amount = rng.choice((0, -5))
        elif roll < 0.05:
            amount = INT64_MAX - rng.randint(0, 10)
        else:
            amount = rng.choice((10**9, 10**12, 10**18 if asset == "ETH" else 10**10))
        actor = self._actor(admin=True) if rng.random() < 0.3 else 0
        command = Deposit(self._command_id(i), account, t, asset, amount, actor)
        return self._emit(self.commands_topic, account, self._command(command), "deposit")

    def _place(self, i: int, t: int) -> Message:
        rng = self.rng
        account = self._account()
        instrument = rng.choice((BTC_USD, BTC_USD, BTC_USD, ETH_USD, HALTING, PERP, MISSING))
        side = rng.choice((Side.BUY, Side.SELL))
        roll = rng.random()
        price, qty = rng.randint(90, 110), rng.randint(1, 300)
        if roll < 0.02:
            price = rng.choice((0, -1))
        elif roll < 0.04:
            qty = rng.choice((0, -3))
        elif roll < 0.05:
            price, qty = INT64_MAX // 2, rng.choice((1, 3))
        elif roll < 0.06:
            qty = 10**12  # unaffordable
        command = PlaceOrder(
            self._command_id(i), account, t, instrument, side, rng.choice(ORDER_KINDS), price,
            qty, rng.choice((0, 0, 5)), rng.choice(STP_MODES), self._actor(),
        )  # fmt: skip
        partition = self._home(account)
        oid = order_id(partition, self._next_offset(self.commands_topic, partition))
        # Fills of a ~4.6e18 notional overflow fee_micro (int64) in the domain itself (an
        # OverflowError while encoding FillSettled): such orders are never filled here. Orders
        # the domain always refuses get few settlements (UNKNOWN_ORDER).
        refused = instrument in (PERP, MISSING) and rng.random() < 0.9
        if price < 10**6 and not refused:
            self.orders.append(_Order(account, oid, instrument, side, price, qty))
        correlation = rng.choice(("", f"corr-{i}"))
        return self._emit(
            self.commands_topic, account, self._command(command, correlation), "place"
        )

    def _fill(self, t: int) -> Message:
        rng = self.rng
        if not self.orders:
            return self._deposit(self.count, t)
        order = self.orders[rng.randrange(len(self.orders))]
        left = order.qty - order.filled
        roll = rng.random()
        side, instrument, price = order.side, order.instrument, order.price
        qty = rng.randint(1, max(1, min(left, 200))) if left > 0 else 1
        if roll < 0.03:
            qty = left + rng.randint(1, 5)  # overfill
        elif roll < 0.05:
            side = Side.SELL if side == Side.BUY else Side.BUY
        elif roll < 0.06:
            instrument = ETH_USD if instrument != ETH_USD else BTC_USD
        elif roll < 0.08:
            price = price + 3 if side == Side.BUY else price - 3  # beyond the limit
        elif roll < 0.5:
            price = price - rng.randint(0, 4) if side == Side.BUY else price + rng.randint(0, 4)
        price = max(price, 1)
        if 0 < qty <= left and roll >= 0.08:
            order.filled += qty
        self.trade += 1
        trade = self.trade if rng.random() > 0.02 else max(1, self.trade - 1)  # a re-used trade
        oid = order.order_id if rng.random() > 0.02 else order.order_id + 7_777  # unknown
        leg = FillLeg(
            order.account, oid, trade, instrument, side, price, qty,
            rng.choice((Liquidity.MAKER, Liquidity.TAKER)), t,
        )  # fmt: skip
        return self._emit(self.settlements_topic, order.account, self._settlement(leg, t), "fill")

    def _end(self, t: int) -> Message:
        rng = self.rng
        if not self.orders:
            return self._deposit(self.count, t)
        index = rng.randrange(len(self.orders))
        order = self.orders[index]
        if rng.random() < 0.85:  # most orders end once; the rest end again (a duplicate)
            self.orders[index] = self.orders[-1]
            self.orders.pop()
        oid = order.order_id if rng.random() > 0.03 else order.order_id + 9_999
        ended = OrderEnded(order.account, oid, order.instrument, rng.choice(END_REASONS), t)
        return self._emit(self.settlements_topic, order.account, self._settlement(ended, t), "end")

    def _cancel(self, i: int, t: int) -> Message:
        rng = self.rng
        if not self.orders:
            return self._deposit(i, t)
        order = self.orders[rng.randrange(len(self.orders))]
        oid = order.order_id if rng.random() > 0.05 else order.order_id + 1_234
        command = CancelOrder(f"c{i}", order.account, t, oid, self._actor(admin=True))
        return self._emit(self.commands_topic, order.account, self._command(command), "cancel")

    def _amend(self, i: int, t: int) -> Message:
        rng = self.rng
        if not self.orders:
            return self._deposit(i, t)
        order = self.orders[rng.randrange(len(self.orders))]
        oid = order.order_id if rng.random() > 0.05 else order.order_id + 4_321
        roll = rng.random()
        price = max(1, order.price + rng.randint(-4, 4)) if roll < 0.7 else 0
        qty = max(0, order.qty + rng.randint(-50, 80)) if roll >= 0.4 else 0
        if rng.random() < 0.05:
            qty = max(1, order.filled)  # too low once anything filled
        elif rng.random() < 0.03:
            qty = 10**12  # unaffordable
        elif rng.random() < 0.02:
            price = qty = 0  # changes nothing: invalid
        command = ModifyOrder(f"c{i}", order.account, t, oid, price, qty, self._actor())
        self.amends.append((order, t, price, qty))
        # the fills the stream makes later keep to the order's bounds (a buy's highest limit)
        if price and (price > order.price if order.side == Side.BUY else price < order.price):
            order.price = price
        if qty > order.qty and qty < 10**6:
            order.qty = qty
        return self._emit(self.commands_topic, order.account, self._command(command), "amend")

    def _confirm_amend(self, t: int) -> Message:
        """The engine's AmendConfirmed of an earlier amend (some never made, some beyond the
        order's bounds or at or below its filled quantity)."""
        rng = self.rng
        if not self.amends:
            return self._deposit(self.count, t)
        order, amend_t, price, qty = self.amends.pop(rng.randrange(len(self.amends)))
        price = price or order.price
        qty = qty or order.qty
        roll = rng.random()
        if roll < 0.05:
            amend_t += 1  # no amend at that time
        elif roll < 0.1:
            price = price + 5 if order.side == Side.BUY else max(1, price - 5)
        elif roll < 0.15:
            qty = max(1, order.filled)
        confirmed = AmendConfirmed(order.account, order.order_id, order.instrument,
                                   max(price, 1), max(qty, 1), amend_t, t)  # fmt: skip
        value = self._settlement(confirmed, t)
        return self._emit(self.settlements_topic, order.account, value, "amend_confirmed")

    def _cancel_all(self, i: int, t: int) -> Message:
        rng = self.rng
        account = HOT if rng.random() < 0.5 else self._account()
        instrument = rng.choice((0, 0, BTC_USD, ETH_USD, MISSING))
        after = up_to = 0
        mine = [o.order_id for o in self.orders if o.account == account]
        if mine and rng.random() < 0.3:  # a continuation record, as a first chunk writes it
            after = rng.choice(mine) - 1
            up_to = max(mine) + rng.choice((0, 0, 5))
        command = CancelAllOrders(
            f"c{i}", account, t, instrument, self._actor(admin=True), after, up_to
        )
        return self._emit(self.commands_topic, account, self._command(command), "cancel_all")

    def _withdrawal(self, i: int, t: int) -> Message:
        rng = self.rng
        if self.withdrawals and rng.random() < 0.5:
            account, withdrawal = self.withdrawals.pop(rng.randrange(len(self.withdrawals)))
            if rng.random() < 0.05:
                withdrawal += "-unknown"
            decide = rng.choice((ApproveWithdrawal, RejectWithdrawal))
            command: Any = decide(f"c{i}", account, t, withdrawal, self._actor(admin=True))
        else:
            account = self._account()
            command = RequestWithdrawal(
                f"c{i}", account, t, rng.choice(("USD", "BTC")), rng.choice((10, 10**6, 10**15)),
                self._actor(),
            )  # fmt: skip
            self.withdrawals.append((account, command.command_id))
        return self._emit(self.commands_topic, account, self._command(command), "withdrawal")

    def _resend(self, i: int, t: int) -> Message:
        rng = self.rng
        if not self.sent:
            return self._deposit(i, t)
        topic, account, key, value = self.sent[rng.randrange(len(self.sent))]
        if rng.random() < 0.3 and topic == self.commands_topic:
            # the same command id again, another payload: still the original outcome
            try:
                decoded = self.codec.decode_domain(value)[1]
            except CodecError:  # a dead letter re-sent as it was
                decoded = None
            if isinstance(decoded, Deposit | PlaceOrder):
                value = self._command(decoded._replace(event_time_ns=t))
        self.kinds["resend"] = self.kinds.get("resend", 0) + 1
        return self._message(topic, self._home(account), value, key)

    def _dead(self, i: int, t: int) -> Message:
        rng = self.rng
        account = rng.choice(ACCOUNTS)
        partition = self._home(account)
        good = self._command(Deposit(f"c{i}", account, t, "USD", 100))
        place = self._command(
            PlaceOrder(f"c{i}", account, t, BTC_USD, Side.BUY, OrderKind.GTC, 100, 1)
        )
        kind = rng.randrange(12)
        topic, key = self.commands_topic, account_key(account)
        if kind == 0:
            value = b""
        elif kind == 1:
            value = rng.randbytes(rng.randint(1, 80))
        elif kind == 2:
            value = good[: rng.randint(5, len(good) - 1)]
        elif kind == 3:
            spot = rng.randrange(5, len(good))
            value = good[:spot] + bytes([good[spot] ^ (1 << rng.randrange(8))]) + good[spot + 1 :]
        elif kind == 4:
            value = good + b"\x00"
        elif kind == 5:  # the side's enum index (after the instrument id) out of range
            value = self._with_enum(place, 9)
        elif kind == 6:  # invalid UTF-8 in the command id
            value = good.replace(f"c{i}".encode(), b"\xff" * len(f"c{i}"), 1)
        elif kind == 7:
            value = self._command(Deposit("", account, t, "USD", 100))  # empty command id
        elif kind == 8:  # a settlement on the commands topic
            leg = FillLeg(account, 5, 5, BTC_USD, Side.BUY, 100, 1, Liquidity.MAKER, t)
            value = self._settlement(leg, t)
        elif kind == 9:  # misrouted: the account lives on another partition
            partition = (partition + 1) % self.partitions
            value = good
        elif kind == 10:  # an older schema version of another record (fastavro decodes it)
            value = b"\x00" + (10).to_bytes(4, "big") + good[5:]
        else:  # accounts <= 0: rejected without an account
            bad = rng.choice((0, -3))
            key = account_key(bad)
            value = self._command(Deposit(f"c{i}", bad, t, "USD", 100))
            partition = rng.randrange(self.partitions)
        self.kinds["dead"] = self.kinds.get("dead", 0) + 1
        return self._message(topic, partition, value, key)

    def _with_enum(self, place: bytes, index: int) -> bytes:
        """``place`` (a PlaceOrder of instrument BTC_USD, side BUY, GTC, price 100) with its
        side index replaced by ``index`` (zig-zag, one byte)."""
        decoded = self.codec.decode_domain(place)[1]
        assert (decoded.side, decoded.kind, decoded.price) == (Side.BUY, OrderKind.GTC, 100)
        needle = bytes([BTC_USD * 2, 0, 0, 0xC8, 0x01])  # instrument, side, kind, price
        spot = place.index(needle, 0, len(place) - 32)
        return place[: spot + 1] + bytes([index * 2]) + place[spot + 2 :]

    def record(self, i: int) -> Message:
        t = T0 + i * 1_000 + self.rng.randint(0, 1_500_000)  # times also go back a little
        self.count += 1
        roll = self.rng.random()
        if i < 2 * len(ACCOUNTS):  # everyone funded first
            account = ACCOUNTS[i // 2]
            asset = ("USD", "BTC")[i % 2]
            command = Deposit(f"fund-{i}", account, t, asset, 10**12)
            return self._emit(self.commands_topic, account, self._command(command), "deposit")
        if roll < 0.17:
            return self._deposit(i, t)
        if roll < 0.49:
            return self._place(i, t)
        if roll < 0.68:
            return self._fill(t)
        if roll < 0.80:
            return self._end(t)
        if roll < 0.84:
            return self._cancel(i, t)
        if roll < 0.857:
            return self._amend(i, t)
        if roll < 0.865:
            return self._confirm_amend(t)
        if roll < 0.875:
            return self._cancel_all(i, t)
        if roll < 0.93:
            return self._withdrawal(i, t)
        if roll < 0.97:
            return self._resend(i, t)
        return self._dead(i, t)

    def steps(self, records: int) -> list[tuple[str, Any]]:
        """("batch", [Message, ...]) and ("reference", [command, ...]) steps, ``records``
        input records in all."""
        out: list[tuple[str, Any]] = []
        made = 0
        batches = 0
        while made < records:
            size = min(records - made, self.rng.randint(1, BATCH_RECORDS_MAX))
            out.append(("batch", [self.record(made + j) for j in range(size)]))
            made += size
            batches += 1
            if batches % REFERENCE_EVERY == 0:
                out.append(("reference", reference_changes(batches // REFERENCE_EVERY)))
        return out
