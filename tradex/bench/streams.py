"""Order stream files (../shared/bench/ORDER_STREAM.md): read, validate, convert, checksum."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tradex.matching.constants import PROTECTION_NONE, STP_NONE
from tradex.matching.dtypes import COMMAND_DTYPE

STREAM_DTYPE = np.dtype(
    [("op", "<i8"), ("side", "<i8"), ("order_id", "<i8"), ("price", "<i8"), ("qty", "<i8")]
)
RECORD_BYTES = STREAM_DTYPE.itemsize  # 40

S_GTC, S_IOC, S_FOK, S_POST_ONLY, S_MARKET, S_CANCEL, S_AMEND = 1, 2, 3, 4, 5, 6, 7
STREAM_OP_NAMES = {
    S_GTC: "limit GTC",
    S_IOC: "limit IOC",
    S_FOK: "limit FOK",
    S_POST_ONLY: "post-only",
    S_MARKET: "market",
    S_CANCEL: "cancel",
    S_AMEND: "amend",
}
CHECKSUM_KEYS = ("trades", "traded_qty", "notional", "resting", "resting_qty", "trade_hash")


class StreamError(ValueError):
    """A malformed order stream (rule 7 of ORDER_STREAM.md)."""


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_stream(stream: np.ndarray) -> None:
    """Raise StreamError naming the first bad record of each kind; return if valid."""
    if stream.dtype != STREAM_DTYPE:
        raise StreamError(f"stream dtype must be {STREAM_DTYPE}, got {stream.dtype}")
    op, side, oid, price, qty = (stream[f] for f in ("op", "side", "order_id", "price", "qty"))
    checks: list[tuple[np.ndarray, str]] = []
    is_new = (op >= S_GTC) & (op <= S_MARKET)
    limit_like = (op == S_GTC) | (op == S_IOC) | (op == S_FOK) | (op == S_POST_ONLY)
    checks.append(((op < S_GTC) | (op > S_AMEND), "unknown op"))
    checks.append((is_new & (oid <= 0), "new order with id <= 0"))
    checks.append((is_new & (qty <= 0), "new order with qty <= 0"))
    checks.append((is_new & (side != 0) & (side != 1), "new order with side not 0/1"))
    checks.append(
        ((limit_like | (op == S_AMEND)) & (price <= 0), "limit/post-only/amend with price <= 0")
    )
    checks.append(((op == S_MARKET) & (price != 0), "market order with price != 0"))
    checks.append(((op == S_CANCEL) & ((price != 0) | (qty != 0)), "cancel with price or qty != 0"))
    checks.append(((op == S_AMEND) & (qty <= 0), "amend with qty <= 0"))
    for mask, what in checks:
        if mask.any():
            i = _first(mask)
            raise StreamError(f"malformed stream: record {i}: {what} ({stream[i]})")
    new_ids = oid[is_new]
    if len(np.unique(new_ids)) != len(new_ids):
        order = np.argsort(new_ids, kind="stable")
        sorted_ids = new_ids[order]
        dup = int(sorted_ids[np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])[0]])
        i = _first(is_new & (oid == dup) & (np.cumsum(is_new & (oid == dup)) == 2))
        raise StreamError(f"malformed stream: record {i}: new order reuses id {dup}")


def read_stream(path: Path | str) -> np.ndarray:
    """Read and validate a stream file."""
    p = Path(path)
    if not p.is_file():
        raise StreamError(f"no such stream file: {p}")
    raw = p.read_bytes()
    if len(raw) % RECORD_BYTES != 0:
        raise StreamError(
            f"malformed stream: {len(raw)} bytes is not a multiple of {RECORD_BYTES} (5 x int64)"
        )
    stream = np.frombuffer(raw, dtype=STREAM_DTYPE).copy()
    validate_stream(stream)
    return stream


def write_stream(path: Path | str, stream: np.ndarray) -> None:
    validate_stream(stream)
    Path(path).write_bytes(np.ascontiguousarray(stream, dtype=STREAM_DTYPE).tobytes())


def to_commands(stream: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Engine commands for stream records: every order its own owner (owner = order id; a
    cancel/amend names that id, so it carries the right owner), no STP, market orders
    without protection (the stream's market orders have no limit)."""
    n = stream.shape[0]
    cmds = np.zeros(n, COMMAND_DTYPE) if out is None else out[:n]
    assert cmds.shape[0] == n
    cmds["op"] = stream["op"]
    cmds["side"] = stream["side"]
    cmds["order_id"] = stream["order_id"]
    cmds["owner"] = stream["order_id"]
    cmds["price"] = stream["price"]
    cmds["qty"] = stream["qty"]
    cmds["stp_mode"] = STP_NONE
    cmds["protection_ticks"] = PROTECTION_NONE
    return cmds


@dataclass
class TradeLog:
    """Trades in execution order as columns: maker_id, taker_id, price, qty."""

    columns: np.ndarray  # (n, 4) int64

    def checksums(self, resting: int, resting_qty: int) -> dict[str, int | str]:
        cols = np.ascontiguousarray(self.columns, dtype="<i8")
        assert cols.ndim == 2
        assert cols.shape[1] == 4
        price = cols[:, 2]
        qty = cols[:, 3]
        notional = 0
        if len(cols):
            bound = int(np.abs(price).max()) * int(np.abs(qty).max()) * len(cols)
            if bound < 2**62:
                notional = int(np.dot(price, qty))
            else:  # Python ints: notional is unbounded
                notional = int(np.dot(price.astype(object), qty.astype(object)))
        return {
            "trades": int(cols.shape[0]),
            "traded_qty": int(qty.sum()),
            "notional": notional,
            "resting": int(resting),
            "resting_qty": int(resting_qty),
            "trade_hash": hashlib.sha256(cols.tobytes()).hexdigest(),
        }
