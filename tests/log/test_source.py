"""The Kafka log source on the real broker: ranges, several partitions, tails, markers."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tradex.infra.kafka import (
    TopicSpec,
    consumer_config,
    ensure_topics,
    produce_sync,
    producer_config,
)
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog

pytestmark = pytest.mark.integration


def _write(settings: Settings, topic: str, partition: int, values: list[bytes]) -> None:
    """``values`` to one partition, one committed transaction each (markers in between)."""
    producer = Producer(producer_config(settings, transactional_id=f"{topic}-{partition}-tx"))
    producer.init_transactions(30)
    for value in values:
        producer.begin_transaction()
        producer.produce(settings.topic(topic), value, b"k", partition)
        producer.commit_transaction(30)
    aborted = b"aborted"
    producer.begin_transaction()
    producer.produce(settings.topic(topic), aborted, b"k", partition)
    producer.flush(30)
    producer.abort_transaction(30)


def test_read_a_range_and_to_the_end_over_markers(settings: Settings) -> None:
    ensure_topics(settings, {"src": TopicSpec(partitions=1)})
    values = [f"v{i}".encode() for i in range(5)]
    _write(settings, "src", 0, values)
    log = KafkaLog(settings)
    records = list(log.read("src", 0))
    assert [r.value for r in records] == values  # the aborted record never appears
    assert all(r.topic == "src" and r.partition == 0 and r.key == b"k" for r in records)
    offsets = [r.offset for r in records]
    assert offsets == sorted(offsets) and len(set(offsets)) == 5
    assert offsets[-1] > 5, "markers take offsets: committed offsets are not dense"
    middle = list(log.read("src", 0, start=offsets[1], end=offsets[3]))
    assert [r.value for r in middle] == values[1:3]
    assert list(log.read("src", 0, start=log.watermarks("src", 0)[1])) == []
    log.close()


def test_read_batches_of_several_partitions_keeps_order_per_partition(settings: Settings) -> None:
    ensure_topics(settings, {"two": TopicSpec(partitions=2)})
    _write(settings, "two", 0, [b"a0", b"a1", b"a2"])
    _write(settings, "two", 1, [b"b0", b"b1"])
    log = KafkaLog(settings)
    seen: dict[int, list[bytes | None]] = {0: [], 1: []}
    for batch in log.read_batches({("two", 0): 0, ("two", 1): 0}, records_max=2):
        assert 0 < len(batch) <= 2
        for record in batch:
            seen[record.partition].append(record.value)
    assert seen == {0: [b"a0", b"a1", b"a2"], 1: [b"b0", b"b1"]}
    assert log.ends(["two"]) == {("two", 0): log.watermarks("two", 0)[1],
                                 ("two", 1): log.watermarks("two", 1)[1]}  # fmt: skip
    log.close()


def test_a_tail_sees_new_records_and_reaches_the_end_past_markers(settings: Settings) -> None:
    ensure_topics(settings, {"tail": TopicSpec(partitions=1)})
    _write(settings, "tail", 0, [b"x"])
    log = KafkaLog(settings, bulk=False)
    end = log.watermarks("tail", 0)[1]
    with log.follow({("tail", 0): 0}) as tail:
        got = []
        for _ in range(50):
            got += tail.poll(0.1)
            if tail.reached(("tail", 0)) >= end:
                break
        assert [r.value for r in got] == [b"x"]
        assert tail.reached(("tail", 0)) == end  # past the last record and the markers
        _write(settings, "tail", 0, [b"y"])
        for _ in range(50):
            got += tail.poll(0.1)
            if len(got) == 2:
                break
        assert [r.value for r in got] == [b"x", b"y"]
    log.close()


def test_committed_positions_of_a_group(settings: Settings) -> None:
    ensure_topics(settings, {"grp": TopicSpec(partitions=2)})
    _write(settings, "grp", 0, [b"1", b"2"])
    log = KafkaLog(settings)
    assert log.committed("g", "grp") == {0: -1, 1: -1}
    consumer = Consumer(consumer_config(settings, settings.topic("g")))
    consumer.commit(offsets=[TopicPartition(settings.topic("grp"), 0, 2)], asynchronous=False)
    consumer.close()
    assert log.committed("g", "grp") == {0: 2, 1: -1}
    log.close()


def test_a_tail_says_when_a_partition_is_at_its_end(settings: Settings) -> None:
    ensure_topics(settings, {"ends": TopicSpec(partitions=2)})
    _write(settings, "ends", 0, [b"a", b"b"])
    log = KafkaLog(settings, bulk=False)
    places = [("ends", 0), ("ends", 1)]
    with log.follow(dict.fromkeys(places, 0)) as tail:
        assert not tail.at_end(places[0])  # nothing polled yet
        got = []
        for _ in range(50):
            got += tail.poll(0.1)
            if all(tail.at_end(place) for place in places):
                break
        assert [r.value for r in got] == [b"a", b"b"]
        assert tail.reached(places[0]) == log.watermarks("ends", 0)[1]
        assert tail.at_end(places[1]) and tail.reached(places[1]) == 0  # empty: at its end
        _write(settings, "ends", 0, [b"c"])
        for _ in range(50):
            got += tail.poll(0.1)
            if len(got) == 3 and tail.at_end(places[0]):
                break
        assert [r.value for r in got] == [b"a", b"b", b"c"]
        assert tail.at_end(places[0])
    log.close()


def test_a_tail_returns_what_is_ready_at_most_records_max_and_nothing_when_idle(
    settings: Settings,
) -> None:
    ensure_topics(settings, {"ready": TopicSpec(partitions=1)})
    with KafkaLog(settings, bulk=False) as log, log.follow({("ready", 0): 0}) as tail:
        for _ in range(20):  # the assignment's partition-EOF, then silence
            if tail.at_end(("ready", 0)):
                break
            assert tail.poll(0.1) == []
        assert tail.poll(0.2) == []
        produce_sync(
            settings, settings.topic("ready"), [(b"k", f"r{i}".encode()) for i in range(7)]
        )
        seen: list[bytes | None] = []
        for _ in range(100):
            chunk = tail.poll(0.5, records_max=3)
            assert len(chunk) <= 3
            seen += [r.value for r in chunk]
            if len(seen) >= 7:
                break
        assert seen == [f"r{i}".encode() for i in range(7)]


def test_committed_positions_of_some_partitions_and_close(settings: Settings) -> None:
    ensure_topics(settings, {"some": TopicSpec(partitions=3)})
    consumer = Consumer(consumer_config(settings, settings.topic("g")))
    consumer.commit(offsets=[TopicPartition(settings.topic("some"), 2, 5)], asynchronous=False)
    consumer.close()
    with KafkaLog(settings) as log:
        assert log.committed("g", "some", [2]) == {2: 5}
        assert log.committed("g", "some", [0, 2]) == {0: -1, 2: 5}
        assert log.committed("g", "some") == {0: -1, 1: -1, 2: 5}
        assert log.committed("other", "some", [2]) == {2: -1}
    with pytest.raises(RuntimeError, match="does not exist"):
        KafkaLog(settings).partitions("never-created")
