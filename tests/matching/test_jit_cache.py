"""The engine's Numba cache is stamped with every jitted source, not just the kernel's file."""

from __future__ import annotations

import shutil
from pathlib import Path

from numba.core.dispatcher import Dispatcher

from tradex.matching import bitmap, book_ops, hashtable, jit_cache, kernel, state_kernels


def test_every_cached_function_uses_an_engine_locator() -> None:
    found = 0
    for module in (bitmap, book_ops, hashtable, kernel, state_kernels):
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value.__module__ == module.__name__:
                locator = getattr(value, "_cache")._impl.locator  # noqa: B009
                assert isinstance(locator, jit_cache.ENGINE_LOCATORS), (value, locator)
                assert locator.get_source_stamp() == jit_cache.sources_stamp()
                found += 1
    assert found >= 10


def test_jit_sources_cover_every_module_with_jitted_code() -> None:
    users = {
        path.name
        for path in jit_cache.PACKAGE_DIR.glob("*.py")
        if "@engine_njit" in path.read_text() or "@intrinsic" in path.read_text()
    }
    assert users
    assert users <= set(jit_cache.JIT_SOURCES)


def test_stamp_changes_when_a_helper_changes(tmp_path: Path) -> None:
    for name in jit_cache.JIT_SOURCES:
        shutil.copy(jit_cache.PACKAGE_DIR / name, tmp_path / name)
    stamp = jit_cache.sources_stamp.__wrapped__(tmp_path)
    assert stamp == jit_cache.sources_stamp()
    helper = tmp_path / "hashtable.py"
    helper.write_text(helper.read_text() + "\n# edited\n")
    assert jit_cache.sources_stamp.__wrapped__(tmp_path) != stamp
