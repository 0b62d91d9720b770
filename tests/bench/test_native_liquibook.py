"""The native liquibook peer: the C++ harness builds against the wheel's headers and its six
checksums equal TradeX's on the bench's own streams; streams it cannot replay are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradex.bench import native_liquibook
from tradex.bench.gen_stream import generate
from tradex.bench.replay import replay
from tradex.bench.streams import write_stream


@pytest.fixture(scope="module")
def binary() -> Path:
    return native_liquibook.harness()


@pytest.mark.parametrize(("mix", "ops"), [("shallow", 6_000), ("deep", 30_000)])
def test_harness_checksums_equal_tradex(binary: Path, tmp_path: Path, mix: str, ops: int) -> None:
    stream = generate(mix, ops, seed=11)
    path = tmp_path / f"{mix}.bin"
    write_stream(path, stream)
    ours = replay(stream, "tradex")
    theirs = native_liquibook.replay_native(binary, path)
    assert theirs.checksums == ours.checksums
    assert theirs.ops == ops
    assert ours.checksums["trades"] > 0  # a stream that matches, not an empty agreement


def test_a_second_build_reuses_the_cached_binary(binary: Path) -> None:
    mtime = binary.stat().st_mtime_ns
    assert native_liquibook.harness() == binary
    assert binary.stat().st_mtime_ns == mtime


def test_post_only_and_amend_are_refused(binary: Path, tmp_path: Path) -> None:
    path = tmp_path / "full.bin"
    write_stream(path, generate("full", 2_000, seed=11))
    with pytest.raises(native_liquibook.NativeRefused, match="post-only or amend"):
        native_liquibook.replay_native(binary, path)


def test_a_truncated_file_is_an_error(binary: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\x01" * 41)
    with pytest.raises(native_liquibook.NativePeerError, match="40-byte records"):
        native_liquibook.replay_native(binary, path)
