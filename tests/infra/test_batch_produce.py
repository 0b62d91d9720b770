"""``produce_run`` (runs of records handed to librdkafka from C) against
``Producer.produce`` on the real broker: the same records, partitions and transaction
semantics; what it cannot take it leaves, at the right index, to ``produce``."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from tradex.infra.batch_produce import produce_run
from tradex.infra.kafka import TopicSpec, ensure_topics, producer_config
from tradex.infra.settings import Settings
from tradex.infra.stage import Output
from tradex.log.source import KafkaLog

pytestmark = pytest.mark.integration

PARTITIONS = 4


def _records(settings: Settings, name: str) -> list[tuple[int, bytes | None, bytes | None]]:
    """(partition, key, value) of every committed record, partition by partition."""
    with KafkaLog(settings) as log:
        return [(p, r.key, r.value) for p in range(PARTITIONS) for r in log.read(name, p)]


def _outputs(topic: str, tag: bytes) -> list[Output]:
    """Keyed records (the partitioner decides), explicit partitions and a null key."""
    outputs = [Output(topic, tag + b"-%d" % i, b"account-%d" % (i % 37)) for i in range(300)]
    outputs += [Output(topic, tag + b"-p%d" % i, b"k", i % PARTITIONS) for i in range(40)]
    outputs.append(Output(topic, tag + b"-nokey", None, 2))
    return outputs


def test_a_run_writes_what_produce_writes(settings: Settings) -> None:
    ensure_topics(settings, {"native": TopicSpec(PARTITIONS), "python": TopicSpec(PARTITIONS)})
    native, python = settings.topic("native"), settings.topic("python")
    producer = Producer(producer_config(settings, transactional_id=f"{native}-tx"))
    producer.init_transactions(30)
    producer.begin_transaction()
    outputs = _outputs(native, b"v")
    assert produce_run(producer, outputs, 0, len(outputs)) == len(outputs)
    for output in _outputs(python, b"v"):
        producer.produce(*output)
    producer.commit_transaction(30)

    written = _records(settings, "native")
    assert len(written) == len(outputs)
    assert written == _records(settings, "python")  # same partition, key and value each


def test_an_aborted_transaction_drops_the_run(settings: Settings) -> None:
    ensure_topics(settings, {"runs": TopicSpec(PARTITIONS)})
    topic = settings.topic("runs")
    producer = Producer(producer_config(settings, transactional_id=f"{topic}-tx"))
    producer.init_transactions(30)
    producer.begin_transaction()
    aborted = _outputs(topic, b"aborted")
    assert produce_run(producer, aborted, 0, len(aborted)) == len(aborted)
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    kept = _outputs(topic, b"kept")
    assert produce_run(producer, kept, 10, 20) == 20  # a slice: only these
    producer.commit_transaction(30)

    values = sorted(value or b"" for _p, _k, value in _records(settings, "runs"))
    assert values == sorted(output.value for output in kept[10:20])


def test_it_stops_at_what_it_cannot_take(settings: Settings) -> None:
    ensure_topics(settings, {"shapes": TopicSpec(PARTITIONS)})
    topic = settings.topic("shapes")
    producer = Producer(producer_config(settings))
    ok = Output(topic, b"v", b"k")
    traced = (topic, b"v", b"k", -1, None, None, 0, [("traceparent", b"00-...")])
    odd: list[object] = [
        traced,  # longer: produce() takes its headers
        (topic, "text", b"k", -1),  # a str value: produce() encodes it
        (topic, b"v", "key", -1),  # a str key
        (topic, b"v", b"k", 2**40),  # a partition no int32 holds: produce() raises
        (topic, b"v", b"k", -5),
        [topic, b"v", b"k", -1],  # not a tuple
    ]
    for record in odd:
        outputs = [ok, ok, record, ok]
        assert produce_run(producer, outputs, 0, len(outputs)) == 2, record
    assert produce_run(producer, [ok, ok], 1, 2) == 2
    assert produce_run(producer, [ok], 0, 0) == 0
    with pytest.raises(IndexError):
        produce_run(producer, [ok], 0, 2)
    with pytest.raises(IndexError):
        produce_run(producer, [ok], 1, 0)
    assert producer.flush(30) == 0


def test_a_full_queue_stops_the_run_and_produce_reports_it(settings: Settings) -> None:
    ensure_topics(settings, {"full": TopicSpec(PARTITIONS)})
    topic = settings.topic("full")
    config = producer_config(settings)
    # lingering a second: nothing leaves the queue while the run fills it
    config |= {"queue.buffering.max.messages": 5, "linger.ms": 1_000}
    producer = Producer(config)
    outputs = [Output(topic, b"v-%d" % i, b"k") for i in range(8)]
    stopped = produce_run(producer, outputs, 0, len(outputs))
    assert stopped == 5
    with pytest.raises(BufferError):
        producer.produce(*outputs[stopped])
    assert producer.flush(30) == 0
    assert produce_run(producer, outputs, stopped, len(outputs)) == len(outputs)
    assert producer.flush(30) == 0
    assert sorted(v or b"" for _p, _k, v in _records(settings, "full")) == sorted(
        o.value for o in outputs
    )


def test_only_a_live_producer(settings: Settings) -> None:
    with pytest.raises(TypeError, match=r"confluent_kafka\.Producer"):
        produce_run(object(), [], 0, 0)  # type: ignore[arg-type]
    producer = Producer(producer_config(settings))
    producer.close()
    with pytest.raises(RuntimeError, match="closed"):
        produce_run(producer, [], 0, 0)
