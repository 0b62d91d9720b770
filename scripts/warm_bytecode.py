"""Write the byte code of what TradeX's processes import, once, at bootstrap.

pip installs with ``--no-compile`` (byte-compiling all ~9,000 installed files, most never
imported, was half of the bootstrap), counting on Python to write each module's ``.pyc`` on
first import. Where ``PYTHONDONTWRITEBYTECODE`` is set (as on some of these machines) it never
does, and every process compiled pandas, numba, pyarrow and the rest from source again:
~3.4 s of CPU before a service or a test worker did anything. This script, run with writing
allowed, imports every TradeX module and the libraries the tests use, so their ``.pyc`` files
exist; a process reads them even when it may not write any. It also runs one small Numba
function: Numba imports ~90 more of its own modules lazily, on a process's first compile or
cache load (its typing and lowering registries), and compiling those from source cost the
audit's matching re-run ~0.6 s at its first batch.

Usage: ``PYTHONDONTWRITEBYTECODE= .venv/bin/python scripts/warm_bytecode.py`` (bootstrap.sh).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

# libraries the test suite and tools import beyond what ``tradex`` itself imports
TEST_LIBRARIES = (
    "pytest", "xdist", "hypothesis", "schemathesis", "ccxt", "playwright.sync_api",
    "httpx", "websockets", "aiohttp", "jwt", "yaml", "jsonschema", "PIL", "pglast",
    "psycopg", "clickhouse_connect", "eventsourcing.postgres", "liquibook",
)  # fmt: skip


def main() -> int:
    sys.dont_write_bytecode = False
    started = time.perf_counter()
    import tradex

    names = [tradex.__name__] + [
        module.name
        for module in pkgutil.walk_packages(tradex.__path__, prefix="tradex.")
        if not module.name.endswith("__main__")
    ]
    failed: list[str] = []
    for name in (*names, *TEST_LIBRARIES):
        try:
            importlib.import_module(name)
        except Exception as error:  # a module that cannot import here: report, go on
            failed.append(f"{name} ({type(error).__name__}: {error})")
    try:
        _numba_first_use()
    except Exception as error:
        failed.append(f"numba first use ({type(error).__name__}: {error})")
    seconds = time.perf_counter() - started
    print(f"warm_bytecode: {len(sys.modules):,} modules imported in {seconds:.1f} s"
          + (f"; not importable: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return 0


def _numba_first_use() -> None:
    """What Numba imports on a process's first compile or cache load (not at import)."""
    import numba
    import numpy as np

    @numba.njit(cache=False)
    def total(values: np.ndarray) -> int:
        return int(values.sum())

    assert total(np.arange(4, dtype=np.int64)) == 6


if __name__ == "__main__":
    sys.exit(main())
