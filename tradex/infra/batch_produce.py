"""Hand a run of records to a confluent-kafka ``Producer`` in one C call.

``Producer.produce(topic, value, key, partition)`` costs ~1 µs of the calling thread per
record (argument parsing, a per-message state for a delivery callback nobody set); a stage
produces 2–5 records per input. :func:`produce_run` gives ``outputs[start:stop]`` to the
producer's own librdkafka (``rd_kafka_producev``, the call ``produce`` makes) from C:
~0.35 µs per record. Same records, same partitioner, same transaction — only the Python
call per record is gone (source and contract: ``_native/native_produce.c``).

    index = produce_run(producer, outputs, start, stop)
    # index == stop: all produced; else outputs[index] was not (another shape, or refused):
    # produce it through producer.produce, which reports why, and go on from index + 1
"""

from __future__ import annotations

from typing import Any

import confluent_kafka.cimpl
from confluent_kafka import Producer

from tradex.infra import _native_produce

_native_produce.bind(confluent_kafka.cimpl.__file__, confluent_kafka.cimpl.Producer)


def produce_run(producer: Producer, outputs: list[Any], start: int, stop: int) -> int:
    """Produce ``outputs[start:stop]`` (each ``(topic, value, key, partition)``; partition
    -1: by key) until one cannot be: its index (``stop`` when all were)."""
    return _native_produce.produce(producer, outputs, start, stop)
