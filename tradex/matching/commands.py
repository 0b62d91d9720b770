"""Builders for COMMAND_DTYPE rows: readable tests and callers, no magic tuples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tradex.matching.constants import (
    OP_AMEND,
    OP_CANCEL,
    OP_LIMIT_GTC,
    OP_MARKET,
    OP_RULES,
    PROTECTION_NONE,
    STP_NONE,
)
from tradex.matching.dtypes import COMMAND_DTYPE

Command = tuple[int, int, int, int, int, int, int, int, int, int, int]


def order(
    op: int,
    side: int,
    order_id: int,
    price: int,
    qty: int,
    owner: int = 0,
    stp_mode: int = STP_NONE,
    protection_ticks: int = PROTECTION_NONE,
    timestamp_ns: int = 0,
) -> Command:
    """A new order (ops 1-5). ``owner`` defaults to the order id (no self-trades)."""
    owner = order_id if owner == 0 else owner
    return (op, side, order_id, owner, price, qty, stp_mode, protection_ticks, 0, 0, timestamp_ns)


def gtc(
    side: int, order_id: int, price: int, qty: int, owner: int = 0, stp_mode: int = STP_NONE
) -> Command:
    return order(OP_LIMIT_GTC, side, order_id, price, qty, owner, stp_mode)


def market(
    side: int,
    order_id: int,
    qty: int,
    protection_ticks: int = PROTECTION_NONE,
    owner: int = 0,
    limit: int = 0,
) -> Command:
    """A market order; ``limit`` > 0: its hard price limit (a buy never above, a sell never
    below), 0: none."""
    return order(OP_MARKET, side, order_id, limit, qty, owner, STP_NONE, protection_ticks)


def cancel(order_id: int, owner: int = 0, timestamp_ns: int = 0) -> Command:
    owner = order_id if owner == 0 else owner
    return (OP_CANCEL, 0, order_id, owner, 0, 0, STP_NONE, 0, 0, 0, timestamp_ns)


def amend(
    side: int, order_id: int, price: int, qty: int, owner: int = 0, stp_mode: int = STP_NONE
) -> Command:
    """Amend to ``price`` with new total quantity ``qty``."""
    owner = order_id if owner == 0 else owner
    return (OP_AMEND, side, order_id, owner, price, qty, stp_mode, 0, 0, 0, 0)


def rules(band_bps: int, halted: int, timestamp_ns: int = 0) -> Command:
    return (OP_RULES, 0, 0, 0, 0, 0, STP_NONE, 0, band_bps, halted, timestamp_ns)


def batch(rows: Sequence[Command]) -> np.ndarray:
    """A COMMAND_DTYPE array from builder tuples."""
    out = np.zeros(len(rows), COMMAND_DTYPE)
    for i, row in enumerate(rows):
        assert len(row) == len(COMMAND_DTYPE.names or ())
        out[i] = row
    return out
