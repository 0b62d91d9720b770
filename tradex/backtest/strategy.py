"""Strategies a backtest injects into the stream: a Python callable that sees the book and
its own fills and returns orders.

    def quote(view: View) -> list[Action]:         # a function ("module:quote") ...
        return [Place("BUY", view.bids[0][0], 1)] if view.bids else []

    class Maker:                                   # ... or a class ("module:Maker"),
        def __call__(self, view: View) -> list[Action]: ...   # made once per run

When it runs (:class:`Schedule`): after every N inputs of its instrument's partition, and/or
after each input that traded its instrument. Its orders go into the stream right after that
input, as ``NewOrder`` / ``CancelOrderRequest`` records of its account, at the engine time
the input ran at: deterministic, so the same inputs give the same run.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from tradex.domain.engine import Cancelled, Expired, Filled, Rejected, Rested, Trade
from tradex.domain.ids import event_id
from tradex.domain.orders import CancelOrderRequest, NewOrder
from tradex.domain.types import ORDER_KINDS, OrderKind, Side, StpMode
from tradex.log.keys import instrument_key
from tradex.schemas.codec import Codec, EnvelopeFields

from .rewrite import ADDED_INPUT_SOURCE

STRATEGY_ORDER_ID_BASE = 1 << 62  # above every id TradeX assigns ((partition << 40) | offset)
ACTIONS_PER_CALL_MAX = 256  # output indices of one input's added records (event ids: 8 bits)


class StrategyError(ValueError):
    """The strategy returned something that is not an order it can place."""


class Fill(NamedTuple):
    order_id: int
    side: str  # "BUY" / "SELL"
    price: int  # ticks
    qty: int  # lots
    liquidity: str  # "MAKER" / "TAKER"


class OpenOrder(NamedTuple):
    order_id: int
    side: str
    price: int
    remaining: int


class Place(NamedTuple):
    """A new order of the strategy's account (kind GTC, IOC, FOK, POST_ONLY or MARKET)."""

    side: str
    price: int  # ticks (MARKET: the protection price)
    qty: int  # lots
    kind: str = "GTC"


class Cancel(NamedTuple):
    order_id: int


Action = Place | Cancel


@dataclass(frozen=True)
class View:
    """What the strategy sees after an input."""

    instrument_id: int
    account_id: int
    position: int  # offset of the input just run (in the recorded stream)
    time_ns: int  # its engine time
    bids: tuple[tuple[int, int], ...]  # (price ticks, lots), best first
    asks: tuple[tuple[int, int], ...]
    last_price: int  # ticks of the last trade (0: none yet)
    fills: tuple[Fill, ...]  # its fills since the previous call
    open_orders: tuple[OpenOrder, ...]  # its resting orders, by id
    inventory_lots: int  # bought − sold since the window began
    cash: int  # quote minor units: sold − bought notional (fees not included)


StrategyFn = Callable[[View], Iterable[Action]]


def load(spec: str) -> StrategyFn:
    """``module:name`` (or ``path/to/file.py:name``): a function, or a class made with no
    arguments whose instances are called. ValueError with the reason if it cannot be."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"strategy {spec!r}: expected module:function or module:Class")
    try:
        if module_name.endswith(".py"):
            spec_ = importlib.util.spec_from_file_location(f"tradex_strategy_{attr}", module_name)
            if spec_ is None or spec_.loader is None:
                raise ImportError(f"not a Python file: {module_name}")
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except (ImportError, OSError, SyntaxError) as exc:
        raise ValueError(f"strategy {spec!r}: cannot import {module_name}: {exc}") from exc
    found = getattr(module, attr, None)
    if found is None:
        raise ValueError(f"strategy {spec!r}: {module_name} has no {attr}")
    if inspect.isclass(found):
        found = found()
    if not callable(found):
        raise ValueError(f"strategy {spec!r}: {attr} is not callable")
    return found


@dataclass(frozen=True)
class Schedule:
    instrument_id: int
    account_id: int
    every: int = 0  # run after every N inputs of the partition (0: never by count)
    on_trade: bool = False  # run after each input that traded the instrument

    def __post_init__(self) -> None:
        assert self.instrument_id > 0, self.instrument_id
        assert self.account_id > 0, self.account_id
        assert self.every >= 0, self.every
        assert self.every > 0 or self.on_trade, "a strategy that never runs"


@dataclass
class Trader:
    """The strategy's side of a run: its orders and fills as the engine reports them, and
    the records its actions become."""

    fn: StrategyFn
    schedule: Schedule
    codec: Codec
    maker_fee_ppm: int = 0
    taker_fee_ppm: int = 0
    calls: int = 0
    placed: int = 0
    open: dict[int, OpenOrder] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)  # since the last call
    inventory_lots: int = 0
    cash: int = 0
    tick_size: int = 1
    depth: int = 5  # levels per side the view shows

    def observe(self, obj: object) -> None:
        """One engine event of the run, in order."""
        me = self.schedule.account_id
        if isinstance(obj, Rested) and obj.account_id == me:
            self.open[obj.order_id] = OpenOrder(obj.order_id, obj.side, obj.price, obj.qty)
        elif isinstance(obj, Trade):
            for order_id, account, side, liquidity in (
                (obj.maker_order_id, obj.maker_account_id,
                 Side.SELL if obj.taker_side == Side.BUY else Side.BUY, "MAKER"),
                (obj.taker_order_id, obj.taker_account_id, obj.taker_side, "TAKER"),
            ):  # fmt: skip
                if account != me:
                    continue
                self.fills.append(Fill(order_id, str(side), obj.price, obj.qty, liquidity))
                signed = obj.qty if side == Side.BUY else -obj.qty
                self.inventory_lots += signed
                self.cash -= signed * obj.price * self.tick_size
                order = self.open.get(order_id)
                if order is not None:
                    self.open[order_id] = order._replace(remaining=order.remaining - obj.qty)
        elif isinstance(obj, Filled | Cancelled | Expired | Rejected) and obj.account_id == me:
            self.open.pop(obj.order_id, None)

    def view(
        self, position: int, time_ns: int, bids: tuple[tuple[int, int], ...],
        asks: tuple[tuple[int, int], ...], last_price: int,
    ) -> View:  # fmt: skip
        s = self.schedule
        opened = tuple(self.open[k] for k in sorted(self.open))
        return View(s.instrument_id, s.account_id, position, time_ns, bids, asks, last_price,
                    tuple(self.fills), opened, self.inventory_lots, self.cash)  # fmt: skip

    def act(self, view: View, partition: int) -> list[tuple[bytes, bytes]]:
        """Call the strategy; its actions as ``order-requests`` records (key, value)."""
        self.calls += 1
        self.fills = []
        actions = list(self.fn(view))
        if len(actions) > ACTIONS_PER_CALL_MAX:
            raise StrategyError(
                f"the strategy returned {len(actions)} actions in one call (at most "
                f"{ACTIONS_PER_CALL_MAX})"
            )
        s = self.schedule
        key = instrument_key(s.instrument_id)
        out: list[tuple[bytes, bytes]] = []
        for index, action in enumerate(actions):
            obj: NewOrder | CancelOrderRequest
            if isinstance(action, Place):
                if action.side not in ("BUY", "SELL") or action.kind not in ORDER_KINDS:
                    raise StrategyError(f"strategy action {action!r}: bad side or kind")
                if int(action.price) <= 0 or int(action.qty) <= 0:
                    raise StrategyError(f"strategy action {action!r}: price and qty must be > 0")
                self.placed += 1
                obj = NewOrder(STRATEGY_ORDER_ID_BASE + self.placed, s.account_id,
                               s.instrument_id, Side(action.side), OrderKind(action.kind),
                               int(action.price), int(action.qty), 0, StpMode.NONE,
                               self.maker_fee_ppm, self.taker_fee_ppm, view.time_ns)  # fmt: skip
            elif isinstance(action, Cancel):
                obj = CancelOrderRequest(int(action.order_id), s.account_id, s.instrument_id,
                                         view.time_ns)  # fmt: skip
            else:
                raise StrategyError(f"strategy action {action!r}: not a Place or a Cancel")
            eid = event_id(view.time_ns, ADDED_INPUT_SOURCE, partition,
                           view.position, index)  # fmt: skip
            fields = EnvelopeFields(eid, "", f"strategy/{self.calls}", "backtest", 0)
            out.append((key, self.codec.encode_domain(obj, fields).data))
        return out
