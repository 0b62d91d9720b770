"""Kafka's default key partitioner (murmur2), so every client agrees where a key lives.

librdkafka's ``murmur2_random`` and the Java clients both use it; TradeX computes it
itself where a stage must know a key's partition (rebuilding one partition's accounts).
"""

from __future__ import annotations

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data`` (as an unsigned 32-bit int)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    full = length - (length % 4)
    for i in range(0, full, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = length % 4
    if tail == 3:
        h ^= data[full + 2] << 16
    if tail >= 2:
        h ^= data[full + 1] << 8
    if tail >= 1:
        h ^= data[full]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``."""
    assert partitions > 0, partitions
    partition = (murmur2(key) & 0x7FFFFFFF) % partitions
    assert 0 <= partition < partitions
    return partition
