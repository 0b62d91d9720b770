"""Numba's on-disk cache for the engine, keyed on every source file the kernels compile.

Numba keys a cached function on its own source file only (content hash of that file plus
the function's bytecode): an edit to a helper module that a kernel inlines (hashtable.py,
book_ops.py, bitmap.py, ...) would leave the kernel's stale machine code in the cache.
Every jitted function of this package is declared with :func:`engine_njit`, whose cache
locators stamp the cache with a hash of all of :data:`JIT_SOURCES` instead, so an edit to
any of them recompiles everything (once) and old and new code never mix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from numba import njit
from numba.core import caching

PACKAGE_DIR = Path(__file__).resolve().parent
# Every module whose code or constants end up in a cached kernel.
JIT_SOURCES = (
    "bitmap.py",
    "book_ops.py",
    "constants.py",
    "dtypes.py",
    "hashtable.py",
    "jit_cache.py",
    "kernel.py",
    "prefetch.py",
    "state_kernels.py",
)


@lru_cache(maxsize=1)
def sources_stamp(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the names and contents of the engine's jitted sources."""
    digest = hashlib.sha256()
    for name in JIT_SOURCES:
        digest.update(name.encode())
        digest.update((package_dir / name).read_bytes())
    return digest.hexdigest()


def _in_package(py_file: str) -> bool:
    return Path(py_file).resolve().parent == PACKAGE_DIR


class _EngineStamp:
    """Mixin: only this package's files, and the cache index is stamped with all the
    engine's sources."""

    def get_source_stamp(self) -> str:
        return sources_stamp()

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        if not _in_package(py_file):
            return None
        return super().from_function(py_func, py_file)  # type: ignore[misc]


class EngineUserProvidedLocator(_EngineStamp, caching.UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR set: cache there (as Numba would), with the package-wide stamp."""


class EngineInTreeLocator(_EngineStamp, caching.InTreeCacheLocator):
    """Default: the package's __pycache__, with the package-wide stamp."""


class EngineUserWideLocator(_EngineStamp, caching.UserWideCacheLocator):
    """Read-only package directory: the user's cache directory, same stamp."""


ENGINE_LOCATORS = (EngineUserProvidedLocator, EngineInTreeLocator, EngineUserWideLocator)


def install() -> None:
    """Put the engine's locators first in Numba's list (idempotent); Numba picks the first
    locator that accepts a function, and ours accept only this package's files."""
    classes = caching.CacheImpl._locator_classes
    for cls in reversed(ENGINE_LOCATORS):
        if cls not in classes:
            classes.insert(0, cls)


def engine_njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)`` with the package-wide cache stamp."""
    install()
    return njit(cache=True, **options)
