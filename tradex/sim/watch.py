"""Follows the simulated instruments' ``engine-events`` partitions on a thread: trades
(kept for the hash) and the engine's rejections by reason.

The trades hash (:func:`trades_hash`) is SHA-256 over every Trade body in (instrument,
trade id) order, with its event time taken relative to the run's start: on a fresh topic
prefix the same seed gives the same hash (docs/sim.md).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterable, Mapping

from tradex.domain.engine import Rejected, Trade
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, Place
from tradex.log.topics import ENGINE_EVENTS
from tradex.schemas.codec import Codec

POLL_S = 0.05
POLL_RECORDS_MAX = 50_000
TRADES_MAX = 20_000_000  # trades kept for the hash (a run that makes more fails loudly)


def trades_hash(trades: Iterable[Trade], start_ns: int) -> str:
    digest = hashlib.sha256()
    for t in sorted(trades, key=lambda t: (t.instrument_id, t.trade_id)):
        digest.update(
            f"{t.instrument_id},{t.trade_id},{t.price},{t.qty},{t.taker_side},"
            f"{t.maker_order_id},{t.maker_account_id},{t.taker_order_id},"
            f"{t.taker_account_id},{t.event_time_ns - start_ns}\n".encode()
        )
    return digest.hexdigest()


class EngineWatcher:
    """Reads ``engine-events`` of ``starts``' partitions from those offsets as they come."""

    def __init__(self, settings: Settings, codec: Codec, starts: Mapping[Place, int]) -> None:
        assert all(topic == ENGINE_EVENTS for topic, _p in starts), starts
        self.codec = codec
        self.places = list(starts)
        self.trades: list[Trade] = []
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
                            assert len(self.trades) < TRADES_MAX, "TRADES_MAX trades"
                            self.trades.append(event)
                            self.volume_lots += event.qty
                    elif isinstance(event, Rejected):
                        with self.lock:
                            self.rejects[str(event.reason)] += 1
        except BaseException as exc:  # reported by the runner
            self.error = exc

    def snapshot(self) -> tuple[int, dict[str, int]]:
        """(trades so far, engine rejections by reason)."""
        with self.lock:
            return len(self.trades), dict(self.rejects)

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
