"""The C batch reader of Kafka (tradex.log.native_tail, librdkafka 2.0.2) on the real
broker, against the confluent-kafka tail: same records, same positions past transaction
markers, no aborted record, same ends; and RecordBatch itself."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from confluent_kafka import Producer

from tradex.infra.kafka import TopicSpec, ensure_topics, produce_sync, producer_config
from tradex.infra.settings import Settings
from tradex.log import _native_kafka
from tradex.log.batch import FLAG_KEY_NULL, FLAG_VALUE_NULL, RecordBatch
from tradex.log.native_tail import NATIVE_BULK_READ_CONFIG, NativeKafkaTail
from tradex.log.records import LogRecord
from tradex.log.source import KafkaLog, Place

pytestmark = pytest.mark.integration


def _write(settings: Settings, topic: str, partition: int, values: list[bytes | None]) -> None:
    """Each value in its own committed transaction, then an aborted one (two records)."""
    producer = Producer(producer_config(settings, transactional_id=f"{topic}-{partition}-tx"))
    producer.init_transactions(30)
    for value in values:
        producer.begin_transaction()
        producer.produce(settings.topic(topic), value, b"k" if value else None, partition)
        producer.commit_transaction(30)
    producer.begin_transaction()
    for _ in range(2):
        producer.produce(settings.topic(topic), b"aborted", b"k", partition)
    producer.flush(30)
    producer.abort_transaction(30)


def _read_all(tail: NativeKafkaTail, places: list[Place], records_max: int) -> list[LogRecord]:
    got: list[LogRecord] = []
    for _ in range(100):
        batch = tail.poll_batch(0.2, records_max)
        assert len(batch) <= records_max
        got += batch.records()
        if all(tail.at_end(place) for place in places):
            break
    return got


def test_the_c_reader_reads_what_the_confluent_tail_reads(settings: Settings) -> None:
    ensure_topics(settings, {"src": TopicSpec(partitions=2)})
    _write(settings, "src", 0, [b"a0", b"a1", None, b"a3"])
    _write(settings, "src", 1, [b"b0"])
    places = [("src", 0), ("src", 1)]
    with KafkaLog(settings) as log:
        ends = {place: log.watermarks(*place)[1] for place in places}
        with log.follow(dict.fromkeys(places, 0)) as python_tail:
            expected: list[LogRecord] = []
            for _ in range(100):
                expected += python_tail.poll(0.2)
                if all(python_tail.at_end(p) for p in places):
                    break
            python_reached = {p: python_tail.reached(p) for p in places}
        tail = log.follow_batches(dict.fromkeys(places, 0))
        assert isinstance(tail, NativeKafkaTail)
        with tail:
            got = _read_all(tail, places, 2)
            reached = {p: tail.reached(p) for p in places}
    assert sorted(got) == sorted(expected)
    assert b"aborted" not in [r.value for r in got]
    assert [r.value for r in got if r.partition == 0] == [b"a0", b"a1", None, b"a3"]
    assert [r.key for r in got if r.partition == 0] == [b"k", b"k", None, b"k"]
    assert reached == python_reached == ends  # past the last record, its marker and the abort
    offsets = [r.offset for r in got if r.partition == 0]
    assert offsets == sorted(offsets) and offsets[-1] > 3, "markers take offsets"
    assert all(r.timestamp_ms > 0 for r in got)


def test_read_columns_stops_at_the_ends_and_from_the_starts(settings: Settings) -> None:
    ensure_topics(settings, {"rng": TopicSpec(partitions=1)})
    values = [f"v{i}".encode() for i in range(6)]
    _write(settings, "rng", 0, list(values))
    place = ("rng", 0)
    with KafkaLog(settings) as log:
        offsets = [r.offset for r in log.read("rng", 0)]
        whole = list(log.read_columns({place: 0}, records_max=4))
        assert all(0 < len(b) <= 4 for b in whole)
        assert [b.value(i) for b in whole for i in range(len(b))] == values
        middle = list(log.read_columns({place: offsets[1]}, {place: offsets[4]}))
        assert [b.value(i) for b in middle for i in range(len(b))] == values[1:4]
        assert list(log.read_columns({place: log.watermarks("rng", 0)[1]})) == []


def test_a_native_tail_follows_new_records_and_says_where_it_ends(settings: Settings) -> None:
    ensure_topics(settings, {"live": TopicSpec(partitions=2)})
    places = [("live", 0), ("live", 1)]
    with (
        KafkaLog(settings, bulk=False) as log,
        log.follow_batches(dict.fromkeys(places, 0)) as tail,
    ):
        assert not tail.at_end(places[0])  # nothing polled yet
        for _ in range(50):  # the partition EOF of an empty partition
            if all(tail.at_end(p) for p in places):
                break
            assert len(tail.poll_batch(0.1)) == 0
        assert tail.reached(places[0]) == 0
        produce_sync(settings, settings.topic("live"), [(b"k", f"r{i}".encode()) for i in range(7)])
        seen: list[bytes | None] = []
        for _ in range(100):
            batch = tail.poll_batch(0.3, 3)
            assert len(batch) <= 3
            seen += [batch.value(i) for i in range(len(batch))]
            if len(seen) >= 7 and all(tail.at_end(p) for p in places):
                break
        assert sorted(v or b"" for v in seen) == sorted(f"r{i}".encode() for i in range(7))
        assert sum(tail.reached(p) for p in places) == 7  # no transactions: dense offsets


def test_a_parked_tail_gets_records_at_once_and_sees_the_end_after_its_wait(
    settings: Settings,
) -> None:
    """A live projector's tail parks its idle fetch at the broker (``fetch_wait_ms``): a
    record that comes is answered at once, not after the wait; only the end of the log
    (the partition EOF after it) waits for an empty answer."""
    ensure_topics(settings, {"parked": TopicSpec(partitions=1)})
    place = ("parked", 0)
    with (
        KafkaLog(settings, fetch_wait_ms=2_000) as log,
        log.follow_batches({place: 0}) as tail,
    ):
        assert len(tail.poll_batch(0.3)) == 0  # the fetch is parked at the broker now
        produce_sync(settings, settings.topic("parked"), [(b"k", b"came")])
        sent = time.monotonic()
        seen: list[bytes | None] = []
        while not seen and time.monotonic() - sent < 1.5:
            batch = tail.poll_batch(0.05)
            seen += [batch.value(i) for i in range(len(batch))]
        assert seen == [b"came"], "the parked fetch was not answered by the record"
        arrived = time.monotonic()
        while not tail.at_end(place) and time.monotonic() - arrived < 5.0:
            tail.poll_batch(0.05)
        assert tail.at_end(place) and tail.reached(place) == 1
        assert time.monotonic() - arrived > 0.5, "the end came before the fetch's wait"


def test_an_error_event_is_raised(settings: Settings) -> None:
    """A consumer error (here: a start past the end with auto.offset.reset=error) stops
    the poll with ReadError, as the confluent tail raises KafkaException."""
    ensure_topics(settings, {"one": TopicSpec(partitions=1)})
    config = {
        "bootstrap.servers": settings.kafka_bootstrap, "group.id": "g",
        "auto.offset.reset": "error", "enable.partition.eof": "true",
    }  # fmt: skip
    reader = _native_kafka.Reader(config, [settings.topic("one")], [(0, 0, 100)])
    with pytest.raises(_native_kafka.ReadError) as info:
        for _ in range(100):
            reader.poll(100, 10)
    code, name, text = info.value.args
    assert name == "_AUTO_OFFSET_RESET" and code < 0, info.value.args
    assert "one" in text
    reader.close()


def test_the_reader_refuses_bad_arguments(settings: Settings) -> None:
    config = {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "g"}
    with pytest.raises(ValueError, match="No such configuration property"):
        _native_kafka.Reader({**config, "no.such.thing": "1"}, ["t"], [(0, 0, 0)])
    with pytest.raises(ValueError, match="place"):
        _native_kafka.Reader(config, ["t"], [(1, 0, 0)])  # no topic 1
    with pytest.raises(ValueError, match="twice"):
        _native_kafka.Reader(config, ["t"], [(0, 0, 0), (0, 0, 5)])
    reader = _native_kafka.Reader(config, ["t"], [(0, 0, 0)])
    with pytest.raises(ValueError, match="records_max"):
        reader.poll(0, 0)
    reader.close()
    with pytest.raises(RuntimeError, match="closed"):
        reader.poll(0, 1)
    assert "fetch.queue.backoff.ms" not in NATIVE_BULK_READ_CONFIG  # not in librdkafka 2.0.2


def test_a_record_batch_from_records_and_back() -> None:
    records = [
        LogRecord("a", 0, 5, 100, b"k1", b"v1"),
        LogRecord("b", 2, 7, 101, None, b""),
        LogRecord("a", 0, 9, 102, b"", None),
    ]
    batch = RecordBatch.from_records(records, ["b"])
    assert batch.topics == ("b", "a")
    assert batch.records() == records
    assert batch.flags.tolist() == [0, FLAG_KEY_NULL, FLAG_VALUE_NULL]
    assert batch.bounds({("a", 0): 8}, -1).tolist() == [8, -1, 8]
    kept = batch.select(np.array([True, False, True]))
    assert kept.records() == [records[0], records[2]]
    assert batch.select(np.ones(3, np.bool_)) is batch
    assert len(RecordBatch.empty()) == 0
    with pytest.raises(AssertionError):
        RecordBatch(("a",), b"xy", np.array([0, 1]), b"", np.array([0, 0]),
                    np.zeros(1, np.uint8), np.zeros(1, np.int32), np.zeros(1, np.int32),
                    np.zeros(1, np.int64), np.zeros(1, np.int64))  # fmt: skip


def test_a_reader_is_not_closed_under_a_poll(settings: Settings) -> None:
    ensure_topics(settings, {"idle": TopicSpec(partitions=1)})
    config = {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "g"}
    reader = _native_kafka.Reader(config, [settings.topic("idle")], [(0, 0, 0)])
    polling = threading.Thread(target=reader.poll, args=(3_000, 10))  # nothing comes: waits
    polling.start()
    time.sleep(0.5)
    with pytest.raises(RuntimeError, match="another thread polls"):
        reader.close()
    polling.join()
    reader.close()
