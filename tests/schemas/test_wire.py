from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradex.schemas import wire

LONGS = st.integers(wire.LONG_MIN, wire.LONG_MAX)


def obvious_varint(value: int) -> bytes:
    """The Avro spec, written the slow way: zig-zag, then 7 bits a byte, low group first."""
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


@given(LONGS)
def test_write_long_is_the_spec(value: int) -> None:
    assert wire.write_long(value) == obvious_varint(value)


@given(LONGS, st.binary(max_size=3), st.binary(max_size=3))
def test_read_long_reads_what_was_written(value: int, before: bytes, after: bytes) -> None:
    encoded = obvious_varint(value)
    data = before + encoded + after
    assert wire.read_long(data, len(before)) == (value, len(before) + len(encoded))
    for cut in range(len(encoded)):
        with pytest.raises(IndexError):
            wire.read_long(encoded[:cut], 0)


@given(st.integers(0, (1 << 64) - 1))
def test_zig_zag_tables_and_every_width(z: int) -> None:
    value = (z >> 1) ^ -(z & 1)
    encoded = obvious_varint(value)
    if z < wire.ZIGZAG_TABLE_SIZE:
        assert wire.ZIGZAG[z] == encoded
    if len(encoded) == 1:
        assert wire.ONE_BYTE[encoded[0]] == value
    else:
        assert wire.ONE_BYTE[encoded[0]] is None


def test_boundaries_and_ranges() -> None:
    for value in (0, -1, 63, -64, 64, 8191, -8192, 8192, 1 << 20, 1 << 27, 1 << 55, 1 << 62):
        for v in (value, -value, value - 1):
            assert wire.write_long(v) == obvious_varint(v)
            assert wire.read_long(obvious_varint(v), 0) == (v, len(obvious_varint(v)))
    with pytest.raises(OverflowError):
        wire.write_long(wire.LONG_MAX + 1)
    with pytest.raises(OverflowError):
        wire.write_long(wire.LONG_MIN - 1)
    with pytest.raises(OverflowError):
        wire.write_int(wire.INT_MAX + 1)
    assert wire.write_int(wire.INT_MIN) == obvious_varint(wire.INT_MIN)
    with pytest.raises(TypeError):
        wire.write_long("1")  # type: ignore[arg-type]


def test_bad_varints_raise() -> None:
    assert wire.read_long(b"\x80\x80\x00", 0) == (0, 3)  # padded: valid Avro
    with pytest.raises(ValueError, match="10 bytes"):
        wire.read_long(b"\xff" * 11, 0)
    with pytest.raises(ValueError, match="64 bits"):
        wire.read_long(b"\xff" * 9 + b"\x02", 0)
    with pytest.raises(ValueError, match="does not fit an Avro int"):
        wire.read_int(obvious_varint(1 << 31), 0)
    with pytest.raises(ValueError, match="negative length"):
        wire.read_length(obvious_varint(-1), 0)
    assert wire.read_count(obvious_varint(-3) + obvious_varint(12), 0) == (3, 2)
    assert wire.LENGTH[100] == obvious_varint(100)
    assert wire.LENGTH_OF[obvious_varint(63)[0]] == 63
    assert wire.LENGTH_OF[obvious_varint(-1)[0]] is None
