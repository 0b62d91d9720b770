"""`tradex bench matching [--quick] [--ops N] [--reps R] [--peer-reps P]`: TradeX vs peers.

In one run: shallow and deep streams on tradex and the liquibook package (checksums must
agree; ops/s and the ratio per mix), moves and full on tradex and the pure-Python
reference book (checksums must agree). TradeX figures are medians of ``--reps`` runs (5),
the peer's of ``--peer-reps`` runs (3). Progress lines, then one JSON line
(../shared/bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tradex.bench.gen_stream import generate
from tradex.bench.replay import BATCH_COMMANDS, ReplayResult, replay
from tradex.bench.streams import StreamError, read_stream, write_stream

SEED = 20240607
PEER_MIXES = ("shallow", "deep")
REFERENCE_MIXES = ("moves", "full")
QUICK_OPS = 20_000


def cached_stream(mix: str, ops: int, cache_dir: Path | None) -> tuple[Any, str]:
    """The (mix, ops, SEED) stream, from the cache directory when it is there (generation
    is deterministic, so a cached file is the same bytes; it is validated on read)."""
    if cache_dir is None:
        return generate(mix, ops, SEED), "generated"
    path = cache_dir / f"{mix}-{ops}-{SEED}.bin"
    if path.is_file():
        try:
            return read_stream(path), f"read from {path}"
        except StreamError:
            path.unlink()
    stream = generate(mix, ops, SEED)
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_stream(path, stream)
    return stream, f"generated, cached in {path}"


def run(stream: Any, engine: str, reps: int) -> tuple[ReplayResult, float, float]:
    """Replay ``reps`` times; return the first result, the median wall-clock ops/s and the
    median ops per CPU second (checksums of every repetition must be identical, else the
    engine is not deterministic)."""
    results = [replay(stream, engine) for _ in range(reps)]
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

    ok = True
    figures: dict[str, float] = {}
    peer: dict[str, Any] = {"name": "liquibook 2.0.1"}
    ratios: list[float] = []
    mismatches: list[str] = []
    started = time.perf_counter()
    for mix in PEER_MIXES + REFERENCE_MIXES:
        t0 = time.perf_counter()
        stream, how = cached_stream(mix, ops, None if args.no_cache else args.cache_dir)
        print(
            f"[{mix}] {len(stream):,} ops (seed {SEED}) {how} in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        ours, ours_ops, ours_cpu = run(stream, "tradex", reps)
        other_engine = "liquibook" if mix in PEER_MIXES else "reference"
        other_reps = peer_reps if mix in PEER_MIXES else 1
        theirs, theirs_ops, theirs_cpu = run(stream, other_engine, other_reps)
        same = ours.checksums == theirs.checksums
        ok = ok and same
        if not same:
            mismatches.append(mix)
            print(
                f"[{mix}] CHECKSUMS DIFFER\n  tradex   {ours.checksums}\n  {other_engine} {theirs.checksums}"
            )
        figures[f"{mix}_ops_per_s"] = round(ours_ops)
        figures[f"{mix}_cpu_ops_per_s"] = round(ours_cpu)
        line = (
            f"[{mix}] tradex {ours_ops:,.0f} ops/s ({ours_cpu:,.0f} per CPU second; median of "
            f"{reps}), {other_engine} {theirs_ops:,.0f} ops/s ({theirs_cpu:,.0f} per CPU "
            f"second), checksums {'agree' if same else 'DIFFER'} "
            f"(trades {ours.checksums['trades']:,}, resting {ours.checksums['resting']:,})"
        )
        if mix in PEER_MIXES:
            ratio = ours_ops / theirs_ops
            ratios.append(ratio)
            peer[f"{mix}_ops_per_s"] = round(theirs_ops)
            peer[f"{mix}_cpu_ops_per_s"] = round(theirs_cpu)
            figures[f"{mix}_ratio"] = round(ratio, 2)
            figures[f"{mix}_cpu_ratio"] = round(ours_cpu / theirs_cpu, 2)
            line += f", ratio {ratio:.1f}x (CPU {ours_cpu / theirs_cpu:.1f}x)"
        else:
            figures[f"reference_{mix}_ops_per_s"] = round(theirs_ops)
        print(line, flush=True)
    notes = (
        f"{ops:,} ops per stream, seed {SEED}; ops_per_s = wall clock on one core of a shared "
        "machine, cpu_ops_per_s = per CPU second of the process (load of others excluded); "
        f"tradex: median of {reps}, Book.process in {BATCH_COMMANDS:,}-command batches incl. "
        "copying trade records out, "
        "default book capacities, JIT warmed; "
        f"liquibook: median of {peer_reps}, one add/cancel call per record on prebuilt "
        "SimpleOrders with a Python "
        "listener; checksums compared per mix"
        + (f"; MISMATCH in {', '.join(mismatches)}" if mismatches else "")
    )
    summary = {
        "bench": "matching",
        "ok": ok,
        "figures": figures,
        "peer": peer,
        "ratio_min": round(min(ratios), 2) if ratios else None,
        "cores": len(os.sched_getaffinity(0)),
        "notes": notes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
