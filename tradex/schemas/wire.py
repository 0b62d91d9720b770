"""Avro binary primitives used by the generated encoders and decoders (:mod:`.compiler`).

Avro ``int`` and ``long`` are zig-zag varints: ``z = (v << 1) ^ (v >> 63)``, then 7 bits a
byte, low group first, high bit set on every byte but the last. Strings and bytes are a
``long`` length then the bytes. The generated code inlines the common case (a value whose
encoding is in a precomputed table, a one-byte varint when reading) and calls these
functions for the rest.

Everything here raises ``ValueError`` / ``OverflowError`` / ``IndexError`` on bad input;
the codec turns those into ``CodecError``.
"""

from __future__ import annotations

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
INT_MIN = -(1 << 31)
INT_MAX = (1 << 31) - 1
VARINT_BYTES_MAX = 10  # a 64-bit zig-zag value needs at most 10 varint bytes
ZIGZAG_TABLE_SIZE = 1 << 14  # zig-zag values with a precomputed encoding (1 or 2 bytes)
LENGTH_TABLE_SIZE = ZIGZAG_TABLE_SIZE // 2  # lengths 0 .. 8191 (zig-zag 2n)


def _encode_zigzag(z: int) -> bytes:
    """The varint bytes of a zig-zag value (the obvious loop; the tables are built from it)."""
    assert 0 <= z < 1 << 64
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# ZIGZAG[z]: encoding of zig-zag value z; LENGTH[n]: encoding of a length n (z = 2n)
ZIGZAG: tuple[bytes, ...] = tuple(_encode_zigzag(z) for z in range(ZIGZAG_TABLE_SIZE))
LENGTH: tuple[bytes, ...] = ZIGZAG[0::2]
# GROUP[g]: the 14 bits g as two varint bytes that both continue (a long's low groups)
GROUP: tuple[bytes, ...] = tuple(
    bytes(((g & 0x7F) | 0x80, (g >> 7) | 0x80)) for g in range(ZIGZAG_TABLE_SIZE)
)
TWO_GROUPS_MAX = 1 << 28  # zig-zag values below this: GROUP[z & 0x3FFF] + ZIGZAG[z >> 14]
assert len(LENGTH) == LENGTH_TABLE_SIZE

# Reading: ONE_BYTE[b] is the value of the one-byte varint b (None: b continues). LENGTH_OF[b]
# is the length in one byte b (None: continues, or negative -> the slow path raises).
ONE_BYTE: tuple[int | None, ...] = tuple(
    (b >> 1) ^ -(b & 1) if b < 0x80 else None for b in range(256)
)
LENGTH_OF: tuple[int | None, ...] = tuple(
    b >> 1 if b < 0x80 and not b & 1 else None for b in range(256)
)


def write_long(value: int) -> bytes:
    """Varint of an Avro long; OverflowError outside int64 (TypeError for a non-int)."""
    if not LONG_MIN <= value <= LONG_MAX:
        raise OverflowError(f"{value} does not fit an Avro long (int64)")
    z = (value << 1) ^ (value >> 63)
    if z < ZIGZAG_TABLE_SIZE:
        return ZIGZAG[z]
    out = GROUP[z & 0x3FFF]
    z >>= 14
    for _ in range(VARINT_BYTES_MAX // 2):  # 14 bits a step: at most 4 more steps
        if z < ZIGZAG_TABLE_SIZE:
            break
        out += GROUP[z & 0x3FFF]
        z >>= 14
    return out + ZIGZAG[z]


def write_int(value: int) -> bytes:
    """Varint of an Avro int; OverflowError outside int32."""
    if not INT_MIN <= value <= INT_MAX:
        raise OverflowError(f"{value} does not fit an Avro int (int32)")
    return write_long(value)


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the varint at ``pos``; ValueError if longer than 10
    bytes or outside 64 bits, IndexError if the data ends inside it.

    Unrolled, in two 28-bit halves so that every step works on a one-digit Python int."""
    byte = data[pos]
    z = byte & 0x7F
    if byte < 0x80:
        return (z >> 1) ^ -(z & 1), pos + 1
    byte = data[pos + 1]
    z |= (byte & 0x7F) << 7
    if byte < 0x80:
        return (z >> 1) ^ -(z & 1), pos + 2
    byte = data[pos + 2]
    z |= (byte & 0x7F) << 14
    if byte < 0x80:
        return (z >> 1) ^ -(z & 1), pos + 3
    byte = data[pos + 3]
    z |= (byte & 0x7F) << 21
    if byte < 0x80:
        return (z >> 1) ^ -(z & 1), pos + 4
    byte = data[pos + 4]
    high = byte & 0x7F
    size = 5
    if byte >= 0x80:
        byte = data[pos + 5]
        high |= (byte & 0x7F) << 7
        size = 6
        if byte >= 0x80:
            byte = data[pos + 6]
            high |= (byte & 0x7F) << 14
            size = 7
            if byte >= 0x80:
                byte = data[pos + 7]
                high |= (byte & 0x7F) << 21
                size = 8
                if byte >= 0x80:
                    byte = data[pos + 8]
                    z |= (byte & 0x7F) << 56
                    size = 9
                    if byte >= 0x80:
                        byte = data[pos + 9]
                        if byte > 1:
                            raise ValueError("varint longer than 10 bytes or beyond 64 bits")
                        z |= byte << 63
                        size = 10
    z |= high << 28
    return (z >> 1) ^ -(z & 1), pos + size


def read_int(data: bytes, pos: int) -> tuple[int, int]:
    value, pos = read_long(data, pos)
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(f"{value} does not fit an Avro int (int32)")
    return value, pos


def read_length(data: bytes, pos: int) -> tuple[int, int]:
    """A string/bytes length: a long that must be >= 0."""
    value, pos = read_long(data, pos)
    if value < 0:
        raise ValueError(f"negative length {value}")
    return value, pos


def read_count(data: bytes, pos: int) -> tuple[int, int]:
    """An array/map block count: a negative count is followed by the block's byte size
    (skipped); returns the item count (0 ends the array)."""
    value, pos = read_long(data, pos)
    if value < 0:
        value = -value
        _size, pos = read_long(data, pos)
    return value, pos
