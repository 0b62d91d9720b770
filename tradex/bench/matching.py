"""`tradex bench matching [--quick] [--ops N] [--reps R] [--peer-reps P]`: TradeX vs peers.

In one run: shallow and deep streams on tradex, on liquibook's C++ engine itself (a native
replay harness built with g++ against the headers the liquibook wheel ships:
:mod:`tradex.bench.native_liquibook`) and on the liquibook package's Python binding
(checksums of all three must agree; ops/s and the ratios per mix), moves and full on tradex
and the pure-Python reference book (checksums must agree). The engines' runs alternate
(tradex, native, binding, tradex, ...); TradeX figures are medians of ``--reps`` runs (5),
the peers' of ``--peer-reps`` runs (3). Headline: ``native_shallow_ratio`` and
``native_deep_ratio`` (TradeX over the native engine); ``ratio_min`` is the least of every
peer ratio. Progress lines, then one JSON line (../shared/bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from tradex.bench import native_liquibook
from tradex.bench.gen_stream import generate
from tradex.bench.native_liquibook import NativePeerError
from tradex.bench.replay import BATCH_COMMANDS, ReplayResult, replay
from tradex.bench.streams import StreamError, read_stream, write_stream

SEED = 20240607
PEER_MIXES = ("shallow", "deep")
REFERENCE_MIXES = ("moves", "full")
QUICK_OPS = 20_000


def cached_stream(mix: str, ops: int, cache_dir: Path) -> tuple[Any, str, Path]:
    """The (mix, ops, SEED) stream and its file, from the cache directory when it is there
    (generation is deterministic, so a cached file is the same bytes; it is validated on
    read)."""
    path = cache_dir / f"{mix}-{ops}-{SEED}.bin"
    if path.is_file():
        try:
            return read_stream(path), f"read from {path}", path
        except StreamError:
            path.unlink()
    stream = generate(mix, ops, SEED)
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_stream(path, stream)
    return stream, f"generated, cached in {path}", path


def alternate(
    runners: dict[str, Callable[[], ReplayResult]], reps: dict[str, int]
) -> dict[str, list[ReplayResult]]:
    """Each engine's repetitions, alternated (one of each in turn) so that the machine's
    drift falls on all of them alike."""
    results: dict[str, list[ReplayResult]] = {engine: [] for engine in runners}
    for rep in range(max(reps.values())):
        for engine, runner in runners.items():
            if rep < reps[engine]:
                results[engine].append(runner())
    return results


def summarize(engine: str, results: list[ReplayResult]) -> tuple[ReplayResult, float, float]:
    """The first result, the median wall-clock ops/s and the median ops per CPU second
    (checksums of every repetition must be identical, else the engine is not
    deterministic)."""
    for r in results[1:]:
        if r.checksums != results[0].checksums:
            raise AssertionError(f"{engine} is not deterministic: checksums differ between reps")
    wall = statistics.median(r.ops_per_s for r in results)
    cpu = statistics.median(r.cpu_ops_per_s for r in results)
    return results[0], wall, cpu


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench matching", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_OPS} ops per mix, one rep")
    parser.add_argument("--ops", type=int, default=None, help="ops per stream (default 1,000,000)")
    parser.add_argument(
        "--reps", type=int, default=None, help="tradex repetitions per mix (default 5)"
    )
    parser.add_argument(
        "--peer-reps",
        type=int,
        default=None,
        help="liquibook repetitions per mix (default 3; the reference runs once)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tradex-bench-streams",
        help="where generated streams are kept between runs",
    )
    parser.add_argument("--no-cache", action="store_true", help="always generate the streams")
    args = parser.parse_args(argv)
    ops = args.ops or (QUICK_OPS if args.quick else 1_000_000)
    reps = args.reps or (1 if args.quick else 5)
    peer_reps = args.peer_reps or (1 if args.quick else 3)
    if ops <= 0 or reps <= 0 or peer_reps <= 0:
        parser.error("--ops, --reps and --peer-reps must be positive")

    try:
        binary = native_liquibook.harness()
    except NativePeerError as exc:
        print(f"tradex bench matching: the native liquibook peer: {exc}", file=sys.stderr)
        return 1
    ok = True
    figures: dict[str, float] = {}
    peer: dict[str, Any] = {"name": "liquibook 2.0.1 (native C++ engine; Python binding)"}
    ratios: list[float] = []
    mismatches: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tradex-bench-streams-") as scratch:
        stream_dir = Path(scratch) if args.no_cache else args.cache_dir
        for mix in PEER_MIXES + REFERENCE_MIXES:
            t0 = time.perf_counter()
            stream, how, path = cached_stream(mix, ops, stream_dir)
            print(
                f"[{mix}] {len(stream):,} ops (seed {SEED}) {how} in "
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            runners: dict[str, Callable[[], ReplayResult]] = {
                "tradex": partial(replay, stream, "tradex")
            }
            reps_of = {"tradex": reps}
            if mix in PEER_MIXES:
                runners["native"] = partial(native_liquibook.replay_native, binary, path)
                runners["liquibook"] = partial(replay, stream, "liquibook")
                reps_of.update(native=peer_reps, liquibook=peer_reps)
            else:
                runners["reference"] = partial(replay, stream, "reference")
                reps_of["reference"] = 1
            results = alternate(runners, reps_of)
            summary = {engine: summarize(engine, each) for engine, each in results.items()}
            ours, ours_ops, ours_cpu = summary["tradex"]
            figures[f"{mix}_ops_per_s"] = round(ours_ops)
            figures[f"{mix}_cpu_ops_per_s"] = round(ours_cpu)
            line = (
                f"[{mix}] tradex {ours_ops:,.0f} ops/s ({ours_cpu:,.0f} per CPU second; "
                f"median of {reps}) (trades {ours.checksums['trades']:,}, resting "
                f"{ours.checksums['resting']:,})"
            )
            for engine, (theirs, theirs_ops, theirs_cpu) in summary.items():
                if engine == "tradex":
                    continue
                same = ours.checksums == theirs.checksums
                ok = ok and same
                if not same:
                    mismatches.append(f"{mix}/{engine}")
                    print(f"[{mix}] CHECKSUMS DIFFER\n  tradex   {ours.checksums}\n"
                          f"  {engine} {theirs.checksums}")  # fmt: skip
                line += (
                    f"\n[{mix}]   {engine} {theirs_ops:,.0f} ops/s ({theirs_cpu:,.0f} per CPU "
                    f"second), checksums {'agree' if same else 'DIFFER'}"
                )
                if engine == "reference":
                    figures[f"reference_{mix}_ops_per_s"] = round(theirs_ops)
                    continue
                ratio = ours_ops / theirs_ops
                ratios.append(ratio)
                name = f"native_{mix}" if engine == "native" else mix
                peer[f"{name}_ops_per_s"] = round(theirs_ops)
                peer[f"{name}_cpu_ops_per_s"] = round(theirs_cpu)
                figures[f"{name}_ratio"] = round(ratio, 2)
                figures[f"{name}_cpu_ratio"] = round(ours_cpu / theirs_cpu, 2)
                line += f", ratio {ratio:.1f}x (CPU {ours_cpu / theirs_cpu:.1f}x)"
            print(line, flush=True)
    notes = (
        f"{ops:,} ops per stream, seed {SEED}; ops_per_s = wall clock on one core of a shared "
        "machine, cpu_ops_per_s = per CPU second of the process (load of others excluded); "
        "engines' runs alternated; "
        f"tradex: median of {reps}, Book.process in {BATCH_COMMANDS:,}-command batches incl. "
        "copying trade records out, default book capacities, JIT warmed; "
        f"liquibook native: median of {peer_reps}, liquibook::book::OrderBook from the "
        f"wheel's headers, g++ {' '.join(native_liquibook.CXX_FLAGS)}, one add/cancel per "
        "record on prebuilt orders, fills appended to a preallocated log by its on_fill; "
        f"liquibook binding: median of {peer_reps}, one add/cancel call per record on prebuilt "
        "SimpleOrders with a Python listener; checksums compared per mix and engine"
        + (f"; MISMATCH in {', '.join(mismatches)}" if mismatches else "")
    )
    summary_line = {
        "bench": "matching",
        "ok": ok,
        "figures": figures,
        "peer": peer,
        "ratio_min": round(min(ratios), 2) if ratios else None,
        "cores": len(os.sched_getaffinity(0)),
        "notes": notes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary_line))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
