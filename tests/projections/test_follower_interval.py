"""A live follower's batch interval (``Projector.batch_interval_s``), on the loop alone:
after a batch that moved records the next one begins no sooner than the interval after
it began; an empty step is followed at once (it waited in the read already); a stop ends
the wait. The run is a stand-in for a ProjectorRun: this is the loop's timing rule, the
reads and sinks are tested on the stack elsewhere."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from tradex.projections.service import Follower


class _Run:
    def __init__(self, interval_s: float, moves: list[int], stop: threading.Event) -> None:
        self.projector = SimpleNamespace(batch_interval_s=interval_s)
        self.stats = SimpleNamespace(lag=None)
        self.moves = moves
        self.began: list[float] = []
        self.stop = stop
        self.closed = False

    def step(self, _wait_s: float) -> int:
        self.began.append(time.monotonic())
        if not self.moves:
            self.stop.set()
            return 0
        return self.moves.pop(0)

    def close(self) -> None:
        self.closed = True


def _follow(interval_s: float, moves: list[int]) -> _Run:
    stop = threading.Event()
    run = _Run(interval_s, moves, stop)
    follower = Follower("postgres", None, None, stop)  # type: ignore[arg-type]
    follower._start = lambda: run  # type: ignore[method-assign]
    follower()
    assert follower.error is None and run.closed
    return run


def test_batches_that_moved_records_begin_an_interval_apart() -> None:
    run = _follow(0.05, [3, 1, 0, 2, 0])
    gaps = [b - a for a, b in zip(run.began, run.began[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.05  # after batches of 3 and 1 records
    assert gaps[2] < 0.04  # after an empty step: at once
    assert gaps[3] >= 0.05


def test_without_an_interval_the_next_batch_begins_at_once() -> None:
    run = _follow(0.0, [5, 5, 5])
    assert run.began[-1] - run.began[0] < 0.04


def test_a_stop_ends_the_wait() -> None:
    started = time.monotonic()
    stop = threading.Event()
    run = _Run(30.0, [1, 1], stop)
    follower = Follower("postgres", None, None, stop)  # type: ignore[arg-type]
    follower._start = lambda: run  # type: ignore[method-assign]
    threading.Thread(target=lambda: (time.sleep(0.1), stop.set())).start()
    follower()
    assert time.monotonic() - started < 5 and run.closed and len(run.began) == 1
