"""Canonical book state as bytes: the state hash and the snapshot format.

Payload (all little-endian int64)::

    format_version, price_levels_max, seq, last_trade_price, band_bps, halted,
    price_lo (0 when the book is empty), live, then live rows of
    (order_id, owner, side, price, remaining, filled): bids best first, then asks best
    first, FIFO inside a level.

``state_hash`` is SHA-256 of the payload. A snapshot is ``MAGIC + payload + sha256(payload)``.
Both the engine and the reference book produce the same payload for the same state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tradex.matching.constants import SIDE_BUY, SIDE_SELL

MAGIC = b"TXBOOK\x00\x00"
FORMAT_VERSION = 1
HEADER_FIELDS = 8
ROW_WIDTH = 6
DIGEST_BYTES = 32


class SnapshotError(ValueError):
    """A snapshot that is corrupt, truncated, of another version or does not fit the book."""


@dataclass(frozen=True)
class BookState:
    price_levels_max: int
    seq: int
    last_trade_price: int
    band_bps: int
    halted: int
    price_lo: int
    rows: np.ndarray  # (live, 6) int64, canonical order

    def payload(self) -> bytes:
        rows = np.ascontiguousarray(self.rows, dtype="<i8")
        assert rows.ndim == 2
        assert rows.shape[1] == ROW_WIDTH
        price_lo = self.price_lo if rows.shape[0] > 0 else 0
        header = np.array(
            [
                FORMAT_VERSION,
                self.price_levels_max,
                self.seq,
                self.last_trade_price,
                self.band_bps,
                self.halted,
                price_lo,
                rows.shape[0],
            ],
            dtype="<i8",
        )
        return header.tobytes() + rows.tobytes()

    def hash_hex(self) -> str:
        return hashlib.sha256(self.payload()).hexdigest()

    def snapshot(self) -> bytes:
        payload = self.payload()
        return MAGIC + payload + hashlib.sha256(payload).digest()


def decode_snapshot(blob: bytes) -> BookState:
    """Parse and check a snapshot; raise SnapshotError with the reason if it is not valid."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise SnapshotError(f"snapshot must be bytes, got {type(blob).__name__}")
    data = bytes(blob)
    minimum = len(MAGIC) + HEADER_FIELDS * 8 + DIGEST_BYTES
    if len(data) < minimum:
        raise SnapshotError(f"snapshot truncated: {len(data)} bytes, need at least {minimum}")
    if data[: len(MAGIC)] != MAGIC:
        raise SnapshotError("not a book snapshot (bad magic)")
    payload = data[len(MAGIC) : -DIGEST_BYTES]
    if hashlib.sha256(payload).digest() != data[-DIGEST_BYTES:]:
        raise SnapshotError("snapshot corrupt: checksum mismatch")
    header = np.frombuffer(payload[: HEADER_FIELDS * 8], dtype="<i8")
    version = int(header[0])
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"snapshot format version {version}, this engine reads {FORMAT_VERSION}"
        )
    live = int(header[7])
    body = payload[HEADER_FIELDS * 8 :]
    if live < 0 or len(body) != live * ROW_WIDTH * 8:
        raise SnapshotError(f"snapshot body has {len(body)} bytes for {live} orders")
    rows = np.frombuffer(body, dtype="<i8").reshape(live, ROW_WIDTH).astype(np.int64)
    state = BookState(
        price_levels_max=int(header[1]),
        seq=int(header[2]),
        last_trade_price=int(header[3]),
        band_bps=int(header[4]),
        halted=int(header[5]),
        price_lo=int(header[6]),
        rows=rows,
    )
    check_state(state)
    return state


def check_state(state: BookState) -> None:
    """Semantic checks on decoded state (a valid checksum over nonsense is still nonsense)."""
    rows = state.rows
    if state.seq < 0 or state.last_trade_price < 0 or state.band_bps < 0:
        raise SnapshotError("snapshot has negative counters")
    if state.halted not in (0, 1):
        raise SnapshotError(f"snapshot halted flag {state.halted}")
    if rows.shape[0] == 0:
        return
    ids, sides, prices, remaining, filled = (
        rows[:, 0],
        rows[:, 2],
        rows[:, 3],
        rows[:, 4],
        rows[:, 5],
    )
    if (ids <= 0).any() or len(np.unique(ids)) != len(ids):
        raise SnapshotError("snapshot order ids must be positive and unique")
    if ((sides != SIDE_BUY) & (sides != SIDE_SELL)).any():
        raise SnapshotError("snapshot has an order with a bad side")
    if (remaining <= 0).any() or (filled < 0).any():
        raise SnapshotError("snapshot has an order with bad quantities")
    idx = prices - state.price_lo
    if state.price_lo < 1 or (idx < 0).any() or (idx >= state.price_levels_max).any():
        raise SnapshotError("snapshot has an order outside its price window")
    n_bids = int((sides == SIDE_BUY).sum())
    if (sides[:n_bids] != SIDE_BUY).any():
        raise SnapshotError("snapshot rows are not bids first, then asks")
    bid_prices, ask_prices = prices[:n_bids], prices[n_bids:]
    if (np.diff(bid_prices) > 0).any() or (np.diff(ask_prices) < 0).any():
        raise SnapshotError("snapshot rows are not in price priority")
    if n_bids and len(ask_prices) and bid_prices[0] >= ask_prices[0]:
        raise SnapshotError("snapshot book is crossed")
