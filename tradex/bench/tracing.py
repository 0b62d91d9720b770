"""``tradex bench tracing``: what tracing costs a stage per input record, in CPU time.

    tradex bench tracing                       # 40,000 records, 0.1 % sampled, best of 9 passes
    tradex bench tracing --sampled-every 100   # 1 % sampled
    tradex bench tracing --quick

Real consumed records: ``--records`` records written to two fresh topics of the local Kafka
(one with no headers; one where every ``--sampled-every``-th record carries a sampled
``traceparent``, as an edge sampling at that ratio writes them; default 1 in 1,000, the
default ratio) and read back as confluent-kafka ``Message`` s. Then, in
batches of 5,000 (the stages' ``batch_records_max``), the CPU time (``process_time``) of
what :class:`~tradex.infra.stage.TransactionalStage` does around its processor (the modes
take turns pass after pass; each one's fastest pass counts):

- **off**: ``processor.process(batch)`` (tracing off: the stage holds no StageTracing);
- **on, none sampled**: ``StageTracing.sampled(batch)`` (one ``headers()`` per record,
  ``None``), then ``process``;
- **on, sampled**: ``sampled``, then ``decide`` (the batch cut around each sampled
  record, a span each, their outputs with the header) and ``finish`` (spans ended, to the
  SDK's in-memory exporter: no network);

with a pass-through processor writing two outputs per input (the raw chain's shape,
:mod:`.raw_chain`): the floor of a stage's own per-record work. Reported: µs of CPU per
input record and the added share. Wall-clock benchmarks of the whole pipeline
(``tradex bench e2e`` with ``OTEL_*`` set) vary more with a shared machine's load than
tracing changes them; this measures the hot path alone.

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import time
import uuid
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.kafka import (
    TopicSpec,
    admin_config,
    admin_timeout_s,
    consumer_config,
    ensure_topics,
    produce_sync,
    producer_config,
)
from tradex.infra.settings import Settings
from tradex.infra.stage import Output, batch_records_max
from tradex.observability import tracing
from tradex.observability.tracing import StageTracing

PARTITIONS = 4
SAMPLED_EVERY_DEFAULT = 1_000  # 0.1 %: the default ratio (tracing.SAMPLER_RATIO_DEFAULT)
VALUE_BYTES = 180  # a command's size in tradex bench e2e
READ_S_MAX = 120.0


class PassThrough:
    """Two outputs per input record, nothing decoded (the floor of a stage's work)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def process(self, messages: Sequence[Message]) -> list[Output]:
        outputs: list[Output] = []
        append, topic = outputs.append, self.topic
        for message in messages:
            value, key = message.value() or b"", message.key()
            append(Output(topic, value, key, message.partition() or 0))
            append(Output(topic, value, key))
        return outputs

    def process_segments(self, segments: list[Sequence[Message]]) -> list[list[Output]]:
        return [self.process(segment) for segment in segments]


def write(
    settings: Settings, topic: str, records: int, provider: TracerProvider | None, every: int
) -> None:
    """``records`` records; with a provider, every ``every``-th carries a sampled
    traceparent (an edge's span)."""
    tracer = None if provider is None else provider.get_tracer("bench")
    rows: list[tuple[bytes | None, bytes]] = []
    for i in range(records):
        value = i.to_bytes(8, "little") * (VALUE_BYTES // 8)
        rows.append((f"k{i}".encode(), value))
    if tracer is None:
        produce_sync(settings, topic, rows)
        return
    producer = Producer(producer_config(settings))
    for i, (key, value) in enumerate(rows):
        headers: tracing.Headers | None = None
        if i % every == 0:
            span = tracer.start_span("PlaceOrder")
            headers = [(tracing.HEADER, tracing.traceparent(span))]
            span.end()
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(admin_timeout_s) == 0, "records not acknowledged"


def read(settings: Settings, topic: str, records: int) -> list[Message]:
    consumer = Consumer(consumer_config(settings, f"bench-tracing-{uuid.uuid4().hex[:8]}"))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    found: list[Message] = []
    deadline = time.monotonic() + READ_S_MAX
    while len(found) < records:
        assert time.monotonic() < deadline, f"{len(found)} of {records} records read"
        for message in consumer.consume(10_000, 0.5):
            if message.error() is None:
                found.append(message)
    consumer.close()
    return found


def cpu_us_per_record(batches: list[list[Message]], step: Callable[..., None]) -> float:
    """CPU µs per record of one pass of ``step`` over the batches."""
    records = sum(len(batch) for batch in batches)
    gc.collect()  # each pass from the same heap (the collector's passes are noise here)
    started = time.process_time()
    for batch in batches:
        step(batch)
    return (time.process_time() - started) * 1e6 / records


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench tracing", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--records", type=positive_int, default=40_000)
    parser.add_argument("--passes", type=positive_int, default=9)
    parser.add_argument(
        "--sampled-every", type=positive_int, default=SAMPLED_EVERY_DEFAULT, metavar="N",
        help=f"one record in N sampled (default {SAMPLED_EVERY_DEFAULT}: the default ratio)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="10,000 records, 3 passes")
    args = parser.parse_args(argv)
    records, passes = (10_000, 3) if args.quick else (args.records, args.passes)
    base = settings_module.load()
    settings = dataclasses.replace(base, topic_prefix=f"bench-tracing-{uuid.uuid4().hex[:8]}-")
    ensure_topics(settings, {"plain": TopicSpec(PARTITIONS), "traced": TopicSpec(PARTITIONS)})
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        write(settings, settings.topic("plain"), records, None, args.sampled_every)
        write(settings, settings.topic("traced"), records, provider, args.sampled_every)
        plain = read(settings, settings.topic("plain"), records)
        traced = read(settings, settings.topic("traced"), records)
        print(f"  {records:,} records read back per topic", flush=True)
        figures = measure(settings, provider, exporter, plain, traced, passes)
    finally:
        admin = AdminClient(admin_config(settings))
        topics = [settings.topic("plain"), settings.topic("traced")]
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()
    print(json.dumps({"bench": "tracing", "ok": True, "figures": figures, "records": records,
                      "passes": passes, "batch_records": batch_records_max,
                      "sampled_share": 1 / args.sampled_every}))  # fmt: skip
    return 0


def measure(
    settings: Settings, provider: TracerProvider, exporter: InMemorySpanExporter,
    plain: list[Message], traced: list[Message], passes: int,
) -> dict[str, float]:  # fmt: skip
    processor = PassThrough(settings.topic("out"))
    tracing.install(provider)
    try:
        stage = StageTracing.of("bench", "bench")
    finally:
        tracing.install(None)
    assert stage is not None

    def chunks(messages: list[Message]) -> list[list[Message]]:
        size = batch_records_max
        return [messages[i : i + size] for i in range(0, len(messages), size)]

    def off(batch: list[Message]) -> None:
        processor.process(batch)

    def on(batch: list[Message]) -> None:
        sampled = stage.sampled(batch)
        if not sampled:
            processor.process(batch)
            return
        _outputs, spans = stage.decide(processor, batch, sampled)
        StageTracing.finish(spans)
        exporter.clear()

    plain_batches, traced_batches = chunks(plain), chunks(traced)
    cpu_us_per_record(plain_batches, on)  # warm up
    modes = {
        "off_us_per_record": (traced_batches, off),
        "on_unsampled_us_per_record": (plain_batches, on),
        "on_sampled_us_per_record": (traced_batches, on),
    }
    # The modes take turns, pass after pass; each one's best pass counts (a loaded machine
    # only ever adds time).
    results = dict.fromkeys(modes, float("inf"))
    for _ in range(passes):
        for name, (batches, step) in modes.items():
            results[name] = min(results[name], cpu_us_per_record(batches, step))
    floor = results["off_us_per_record"]
    results["unsampled_added_us"] = results["on_unsampled_us_per_record"] - floor
    results["sampled_added_us"] = results["on_sampled_us_per_record"] - floor
    for name, value in list(results.items()):
        results[name] = round(value, 3)
        print(f"  {name}: {value:.3f}", flush=True)
    return results
