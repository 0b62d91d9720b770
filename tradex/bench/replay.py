"""`tradex bench replay STREAM [--engine tradex|reference|liquibook]`.

Replays one order stream (../shared/bench/ORDER_STREAM.md) through one engine and prints
the six checksums and ops/s; the last line is one JSON object with exactly the keys
trades, traded_qty, notional, resting, resting_qty, trade_hash, ops_per_s.

What is inside the timed loop, per engine (file reading, validation and conversion of the
records to each engine's input objects are outside it for all three):

- tradex: ``Book.process`` over the command array in batches of ``BATCH_COMMANDS`` (the
  same kernel and batch API the matcher service uses; book state and output buffers are
  allocated once and reused), plus copying each batch's trade records out of the reused
  buffers (one block copy per batch; the checksum columns are taken after the timed loop).
  The book has the default capacities (``orders_max`` 2**18: sizing it and its id table
  to the stream's live orders measured no faster, see docs/matching.md). The JIT is
  warmed up on a tiny stream first (compilation is cached on disk anyway).
- reference: ``ReferenceBook.process`` in batches of ``REFERENCE_BATCH_COMMANDS``.
- liquibook: one ``book.add(order, conditions)`` or ``book.cancel(order)`` call per record
  on prebuilt ``SimpleOrder`` objects, with a Python ``on_fill``/``on_cancel`` listener
  recording fills and cancels (the only way results come out of the package).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tradex.bench.streams import (
    S_CANCEL,
    S_FOK,
    S_GTC,
    S_IOC,
    S_MARKET,
    STREAM_OP_NAMES,
    StreamError,
    TradeLog,
    read_stream,
    to_commands,
)

# Commands per Book.process call. Smaller batches keep the reused output buffers (~300
# bytes written per command) in L2, but measured 2k-16k batches the same in CPU time here
# (streaming writes); 16k keeps the per-call Python overhead negligible.
BATCH_COMMANDS = 16_384
REFERENCE_BATCH_COMMANDS = 16_384
ENGINES = ("tradex", "reference", "liquibook")
WARMUP_RECORDS = 64


class EngineRefused(ValueError):
    """The engine cannot run this stream (e.g. liquibook and amends)."""


@dataclass
class ReplayResult:
    checksums: dict[str, int | str]
    seconds: float  # wall clock of the timed loop
    ops: int
    cpu_seconds: float = 0.0  # CPU time of this process in the timed loop

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else float("inf")

    @property
    def cpu_ops_per_s(self) -> float:
        """Ops per CPU second: what the machine's other load does not distort (much)."""
        return self.ops / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    def summary(self) -> dict[str, Any]:
        return {**self.checksums, "ops_per_s": round(self.ops_per_s)}


# --- tradex ------------------------------------------------------------------------------


def warm_up_tradex() -> None:
    """Compile (or load from the on-disk cache) the kernels outside any timed loop."""
    from tradex.bench.streams import STREAM_DTYPE
    from tradex.matching.book import Book, OutputBuffers

    tiny = np.zeros(4, STREAM_DTYPE)
    tiny[0] = (S_GTC, 0, 1, 100, 5)
    tiny[1] = (S_GTC, 1, 2, 100, 3)
    tiny[2] = (S_CANCEL, 0, 1, 0, 0)
    tiny[3] = (S_IOC, 1, 3, 90, 1)
    book = Book(orders_max=1024, price_levels_max=1 << 12)
    book.process(to_commands(tiny), OutputBuffers(1024))
    book.validate_internal_state()


_OUTPUT_BUFFERS: list[Any] = []  # one OutputBuffers per process, as in the matcher service


def shared_output_buffers(orders_max: int) -> Any:
    """The process's output buffers (allocated once, reused by every replay like the
    service reuses them for every book and batch)."""
    from tradex.matching.book import OutputBuffers

    if not _OUTPUT_BUFFERS or _OUTPUT_BUFFERS[0].orders_max < orders_max:
        _OUTPUT_BUFFERS[:] = [OutputBuffers(orders_max)]
    return _OUTPUT_BUFFERS[0]


def replay_tradex(stream: np.ndarray) -> ReplayResult:
    from tradex.matching.book import Book
    from tradex.matching.dtypes import TRADE_DTYPE

    warm_up_tradex()
    cmds = to_commands(stream)
    book = Book()
    out = shared_output_buffers(book.orders_max)
    # Every trade record is copied out of the reused buffers inside the timed loop (one
    # block copy per batch, as a consumer keeping them would); the checksum columns are
    # taken from the copies afterwards. A taker trades at most once per maker, so there
    # are fewer trades than commands + 1 unless amends re-enter (then the log grows).
    log = np.empty(stream.shape[0] + 1, TRADE_DTYPE)
    log_bytes = log.view(np.uint8)
    log_bytes.fill(0)  # the harness's own storage: paged in before timing
    width = TRADE_DTYPE.itemsize
    n_log = 0
    n = cmds.shape[0]
    done = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    while done < n:
        res = book.process(cmds[done : done + BATCH_COMMANDS], out)
        k = res.trades.shape[0]
        if n_log + k > log.shape[0]:
            log = np.concatenate([log, np.zeros(max(k, log.shape[0]), TRADE_DTYPE)])
            log_bytes = log.view(np.uint8)
        # A block copy of the records' bytes (numpy copies structured records field by
        # field, ~6x slower; the bytes are the same).
        log_bytes[n_log * width : (n_log + k) * width] = res.trades.view(np.uint8)
        n_log += k
        done += res.n_commands
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    book.validate_internal_state()
    rows = book.live_orders()
    kept = log[:n_log]
    columns = np.stack([kept["maker_id"], kept["taker_id"], kept["price"], kept["qty"]], axis=1)
    checks = TradeLog(columns).checksums(rows.shape[0], int(rows[:, 4].sum()))
    return ReplayResult(checks, seconds, n, cpu_seconds)


# --- reference ---------------------------------------------------------------------------


def replay_reference(stream: np.ndarray) -> ReplayResult:
    from tradex.matching.reference import ReferenceBook

    cmds = to_commands(stream)
    book = ReferenceBook()
    parts: list[np.ndarray] = []
    c0 = time.process_time()
    t0 = time.perf_counter()
    for start in range(0, cmds.shape[0], REFERENCE_BATCH_COMMANDS):
        tr = book.process(cmds[start : start + REFERENCE_BATCH_COMMANDS]).trades
        parts.append(np.stack([tr["maker_id"], tr["taker_id"], tr["price"], tr["qty"]], axis=1))
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    book.validate_internal_state()
    rows = book.live_orders()
    log = np.concatenate(parts) if parts else np.empty((0, 4), np.int64)
    checks = TradeLog(log).checksums(rows.shape[0], int(rows[:, 4].sum()))
    return ReplayResult(checks, seconds, cmds.shape[0], cpu_seconds)


# --- liquibook ---------------------------------------------------------------------------

LIQUIBOOK_OPS = (S_GTC, S_IOC, S_FOK, S_MARKET, S_CANCEL)


def replay_liquibook(stream: np.ndarray) -> ReplayResult:
    import liquibook as lb  # the PyPI package, a SWIG wrapper of the C++ engine

    unsupported = sorted(set(np.unique(stream["op"]).tolist()) - set(LIQUIBOOK_OPS))
    if unsupported:
        names = ", ".join(STREAM_OP_NAMES[op] for op in unsupported)
        raise EngineRefused(
            f"liquibook supports GTC, IOC, FOK, market and cancel only; this stream has {names}"
        )

    fills: list[tuple[int, int, int, int]] = []
    cancelled: list[int] = []

    class Listener(lb.OrderListener):
        def on_accept(self, order: Any) -> None:
            pass

        def on_reject(self, order: Any, reason: str) -> None:
            pass

        def on_fill(self, order: Any, matched: Any, qty: int, price: int) -> None:
            fills.append((order.order_id_, matched.order_id_, qty, price))  # taker, maker

        def on_cancel(self, order: Any) -> None:
            cancelled.append(order.order_id_)

        def on_cancel_reject(self, order: Any, reason: str) -> None:
            pass

        def on_replace(self, *args: Any) -> None:
            pass

        def on_replace_reject(self, *args: Any) -> None:
            pass

        def on_trigger_stop(self, *args: Any) -> None:
            pass

    book = lb.liquibook_book_OrderBook()
    listener = Listener()
    book.set_order_listener(listener)
    conditions = {
        S_GTC: lb.oc_no_conditions,
        S_IOC: lb.oc_immediate_or_cancel,
        S_FOK: lb.oc_all_or_none | lb.oc_immediate_or_cancel,
        S_MARKET: lb.oc_immediate_or_cancel,
    }
    # Build the order objects and the per-record calls outside the timed loop.
    by_stream_id: dict[int, Any] = {}
    lb_to_stream: dict[int, int] = {}
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    add, cancel = book.add, book.cancel
    for op, side, oid, price, qty in stream.tolist():
        if op == S_CANCEL:
            order = by_stream_id.get(oid)
            if order is not None:  # never-existing ids: nothing any engine could do
                calls.append((cancel, (order,)))
            continue
        order = lb.SimpleOrder(side == 0, price, qty)
        by_stream_id[oid] = order
        lb_to_stream[order.order_id_] = oid
        calls.append((add, (order, conditions[op])))
    c0 = time.process_time()
    t0 = time.perf_counter()
    for fn, args in calls:
        fn(*args)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0

    to_stream = np.vectorize(lb_to_stream.__getitem__, otypes=[np.int64])
    arr = np.array(fills, dtype=np.int64).reshape(len(fills), 4)
    log = np.empty((arr.shape[0], 4), np.int64)
    if arr.shape[0]:
        log[:, 0] = to_stream(arr[:, 1])
        log[:, 1] = to_stream(arr[:, 0])
        log[:, 2] = arr[:, 3]
        log[:, 3] = arr[:, 2]
    # Resting: GTC orders neither cancelled nor completely filled.
    filled: dict[int, int] = {}
    for maker, taker, _, qty in log.tolist():
        filled[maker] = filled.get(maker, 0) + qty
        filled[taker] = filled.get(taker, 0) + qty
    gone = {lb_to_stream[i] for i in cancelled}
    resting = resting_qty = 0
    for op, _, oid, _, qty in stream.tolist():
        if op == S_GTC and oid not in gone and filled.get(oid, 0) < qty:
            resting += 1
            resting_qty += qty - filled.get(oid, 0)
    checks = TradeLog(log).checksums(resting, resting_qty)
    return ReplayResult(checks, seconds, stream.shape[0], cpu_seconds)


REPLAYERS: dict[str, Callable[[np.ndarray], ReplayResult]] = {
    "tradex": replay_tradex,
    "reference": replay_reference,
    "liquibook": replay_liquibook,
}


def replay(stream: np.ndarray, engine: str) -> ReplayResult:
    if engine not in REPLAYERS:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    return REPLAYERS[engine](stream)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench replay", description=__doc__.splitlines()[0]
    )
    parser.add_argument("stream", type=Path)
    parser.add_argument("--engine", choices=ENGINES, default="tradex")
    args = parser.parse_args(argv)
    try:
        stream = read_stream(args.stream)
        result = replay(stream, args.engine)
    except (StreamError, EngineRefused) as exc:
        print(f"tradex bench replay: {exc}", file=sys.stderr)
        return 1
    for key, value in result.checksums.items():
        print(f"{key:>12}: {value}")
    print(
        f"{'ops/s':>12}: {result.ops_per_s:,.0f} ({result.ops} ops in {result.seconds:.3f} s, {args.engine})"
    )
    print(
        f"{'cpu ops/s':>12}: {result.cpu_ops_per_s:,.0f} ({result.cpu_seconds:.3f} s of CPU time)"
    )
    print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
