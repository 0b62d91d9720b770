"""Follows the simulated instruments' ``engine-events`` partitions on a thread: trades
(kept for the hash) and the engine's refusals by reason (``Rejected``, and a FOK that
``Expired`` unfilled).

The trades hash (:class:`TradesDigest`) is SHA-256 over the instruments' own
SHA-256s, in instrument id order; an instrument's is over its Trade bodies in trade id
order (its partition's order), each event time taken relative to the run's start. Kept as
running digests: any number of trades in fixed memory. On a fresh topic prefix the same
seed gives the same hash (docs/sim.md).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from tradex.domain.engine import Expired, Rejected, Trade
from tradex.domain.types import Reason
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, Place
from tradex.log.topics import ENGINE_EVENTS
from tradex.schemas.codec import Codec

POLL_S = 0.05
POLL_RECORDS_MAX = 50_000
REFUSING_EXPIRIES = frozenset((Reason.FOK_NOT_FILLABLE,))  # an IOC's remainder is no refusal


class TradesDigest:
    """The trades hash, fed one trade at a time (each instrument's in trade id order)."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.digests: dict[int, Any] = {}  # instrument id -> running sha256 of its trades
        self.last_trade_ids: dict[int, int] = {}

    def add(self, t: Trade) -> None:
        last = self.last_trade_ids.get(t.instrument_id, -1)
        assert t.trade_id > last, ("trades out of order", t.instrument_id, t.trade_id, last)
        self.last_trade_ids[t.instrument_id] = t.trade_id
        digest = self.digests.get(t.instrument_id)
        if digest is None:
            digest = self.digests[t.instrument_id] = hashlib.sha256()
        digest.update(
            f"{t.instrument_id},{t.trade_id},{t.price},{t.qty},{t.taker_side},"
            f"{t.maker_order_id},{t.maker_account_id},{t.taker_order_id},"
            f"{t.taker_account_id},{t.event_time_ns - self.start_ns}\n".encode()
        )

    def hexdigest(self) -> str:
        outer = hashlib.sha256()
        for instrument in sorted(self.digests):
            outer.update(f"{instrument}:{self.digests[instrument].hexdigest()}\n".encode())
        return outer.hexdigest()


class EngineWatcher:
    """Reads ``engine-events`` of ``starts``' partitions from those offsets as they come."""

    def __init__(
        self, settings: Settings, codec: Codec, starts: Mapping[Place, int], start_ns: int
    ) -> None:
        assert all(topic == ENGINE_EVENTS for topic, _p in starts), starts
        self.codec = codec
        self.places = list(starts)
        self.digest = TradesDigest(start_ns)
        self.trades = 0
        self.rejects: Counter[str] = Counter()
        self.volume_lots = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.log = KafkaLog(settings, bulk=False)
        self.tail = self.log.follow(starts)
        self.thread = threading.Thread(target=self._run, name="sim-engine-watch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                for record in self.tail.poll(POLL_S, POLL_RECORDS_MAX):
                    _envelope, event = self.codec.decode_domain(record.value or b"")
                    if isinstance(event, Trade):
                        with self.lock:
                            self._add(event)
                    elif isinstance(event, Rejected) or (
                        isinstance(event, Expired) and event.reason in REFUSING_EXPIRIES
                    ):
                        with self.lock:
                            self.rejects[str(event.reason)] += 1
        except BaseException as exc:  # reported by the runner
            self.error = exc

    def _add(self, trade: Trade) -> None:
        self.digest.add(trade)
        self.trades += 1
        self.volume_lots += trade.qty

    def snapshot(self) -> tuple[int, dict[str, int]]:
        """(trades so far, engine rejections by reason)."""
        with self.lock:
            return self.trades, dict(self.rejects)

    def trades_hash(self) -> str:
        with self.lock:
            return self.digest.hexdigest()

    def reached(self, ends: Mapping[Place, int]) -> bool:
        """Whether every partition is read up to ``ends``."""
        if self.error is not None:
            raise RuntimeError("the engine-events watcher failed") from self.error
        return all(self.tail.reached(place) >= end for place, end in ends.items())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.tail.close()
        self.log.close()
