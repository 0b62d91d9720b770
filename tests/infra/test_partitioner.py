from hypothesis import given
from hypothesis import strategies as st

from tradex.infra.partitioner import murmur2, partition_for


def test_murmur2_matches_kafka_reference_vectors() -> None:
    # Vectors from Kafka's own UtilsTest.testMurmur2 (signed ints there).
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for data, signed in cases.items():
        assert murmur2(data) == signed & 0xFFFFFFFF, data


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=512))
def test_partition_is_in_range(key: bytes, partitions: int) -> None:
    assert 0 <= partition_for(key, partitions) < partitions
