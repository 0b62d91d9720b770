"""The native liquibook peer: a C++ replay harness (``native/liquibook_replay.cpp``) compiled
with ``g++`` against liquibook's own headers, the ones the PyPI ``liquibook`` wheel ships under
``include/liquibook/`` (the ``bench`` extra). It reads the same stream file as the other
engines, matches it with ``liquibook::book::OrderBook`` and prints the same six checksums.

The binary is built once per (source, headers, compiler, flags) and kept under the cache dir
(``$TRADEX_CACHE_DIR/bench/``, default ``.cache/bench/``), named by the hash of those inputs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tradex.bench.replay import ReplayResult
from tradex.bench.streams import CHECKSUM_KEYS
from tradex.infra.local_kafka import cache_dir

SOURCE = Path(__file__).with_name("native") / "liquibook_replay.cpp"
CXX_FLAGS = ("-O3", "-march=native", "-DNDEBUG", "-std=c++17")
EXIT_REFUSED = 2  # the harness's exit status for a stream it cannot replay (post-only, amend)


class NativePeerError(RuntimeError):
    """The harness cannot be built or failed to run."""


class NativeRefused(NativePeerError):
    """The stream has ops liquibook has no equivalent for (post-only, amend)."""


def liquibook_include_dir() -> Path:
    """The directory holding ``liquibook/book/order_book.h`` from the installed wheel."""
    try:
        dist = importlib.metadata.distribution("liquibook")
    except importlib.metadata.PackageNotFoundError as exc:
        raise NativePeerError(
            "the liquibook package is not installed (pip install -e '.[bench]')"
        ) from exc
    for file in dist.files or ():
        if file.as_posix().endswith("include/liquibook/book/order_book.h"):
            header = Path(str(dist.locate_file(file)))
            if header.is_file():
                return header.parents[2]
    raise NativePeerError("the liquibook wheel ships no include/liquibook/book/order_book.h")


def _compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++")
    if not cxx:
        raise NativePeerError("no C++ compiler: install g++ (apt-get install g++) or set CXX")
    return cxx


def harness(cache: Path | None = None) -> Path:
    """The compiled harness, built now if no binary for these inputs is cached."""
    include = liquibook_include_dir()
    cxx = _compiler()
    digest = hashlib.sha256()
    digest.update(SOURCE.read_bytes())
    for header in sorted((include / "liquibook").rglob("*.h")):
        digest.update(header.relative_to(include).as_posix().encode())
        digest.update(header.read_bytes())
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    digest.update(f"{cxx}|{version.stdout}|{' '.join(CXX_FLAGS)}".encode())
    where = (cache or cache_dir()) / "bench"
    binary = where / f"liquibook_replay-{digest.hexdigest()[:16]}"
    if binary.is_file():
        return binary
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        built = Path(tmp) / binary.name
        argv = [cxx, *CXX_FLAGS, f"-I{include}", "-o", str(built), str(SOURCE)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NativePeerError(f"building the liquibook harness failed:\n{done.stderr[-3000:]}")
        os.replace(built, binary)  # atomic: a concurrent build leaves one complete binary
    return binary


def replay_native(binary: Path, stream_path: Path) -> ReplayResult:
    """Replay the stream file through the harness (one process per replay)."""
    done = subprocess.run(
        [str(binary), str(stream_path)], capture_output=True, text=True, check=False
    )
    if done.returncode == EXIT_REFUSED:
        raise NativeRefused(done.stderr.strip())
    if done.returncode != 0:
        raise NativePeerError(f"liquibook harness exited {done.returncode}: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    checksums = {key: out[key] for key in CHECKSUM_KEYS}
    return ReplayResult(checksums, out["seconds"], out["ops"], out["cpu_seconds"])
