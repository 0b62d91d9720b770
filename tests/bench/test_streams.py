"""Order stream files: validation per rule 7, round trip, deterministic generation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tradex.bench.gen_stream import generate
from tradex.bench.streams import (
    STREAM_DTYPE,
    StreamError,
    read_stream,
    validate_stream,
    write_stream,
)


def stream(*rows: tuple[int, int, int, int, int]) -> np.ndarray:
    return np.array(list(rows), dtype=STREAM_DTYPE)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(9, 0, 1, 100, 1)], "unknown op"),
        ([(1, 0, 1, 100, 1), (2, 1, 1, 100, 1)], "reuses id 1"),
        ([(1, 0, 0, 100, 1)], "id <= 0"),
        ([(1, 0, 1, 100, 0)], "qty <= 0"),
        ([(1, 2, 1, 100, 1)], "side not 0/1"),
        ([(4, 0, 1, 0, 1)], "price <= 0"),
        ([(5, 0, 1, 7, 1)], "market order with price != 0"),
        ([(6, 0, 1, 0, 3)], "cancel with price or qty"),
        ([(7, 0, 1, 100, 0)], "amend with qty <= 0"),
    ],
)
def test_malformed_streams_are_refused(rows: list, message: str) -> None:
    with pytest.raises(StreamError, match=message):
        validate_stream(stream(*rows))


def test_round_trip_and_truncated_file(tmp_path: Path) -> None:
    s = stream((1, 0, 1, 100, 2), (6, 1, 1, 0, 0), (5, 1, 2, 0, 3), (7, 0, 1, 101, 4))
    path = tmp_path / "s.bin"
    write_stream(path, s)
    assert np.array_equal(read_stream(path), s)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(StreamError, match="multiple of 40"):
        read_stream(path)


@pytest.mark.parametrize("mix", ["shallow", "deep", "moves", "full"])
def test_generator_is_deterministic_and_valid(mix: str) -> None:
    a = generate(mix, 3000, seed=4)
    b = generate(mix, 3000, seed=4)
    assert np.array_equal(a, b)
    validate_stream(a)
    assert not np.array_equal(a, generate(mix, 3000, seed=5))
    ops = set(np.unique(a["op"]).tolist())
    expected = {
        "shallow": {1, 2, 6},
        "deep": {1},
        "moves": {1, 2, 6, 7},
        "full": {1, 2, 3, 4, 5, 6, 7},
    }
    assert ops == expected[mix]
