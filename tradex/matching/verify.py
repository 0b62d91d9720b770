"""``tradex matching verify``: the determinism proof of the matching engine.

    tradex matching verify                          # every partition, up to the committed offset
    tradex matching verify --partition 0 --topic-prefix demo-
    tradex matching verify --upto 1000              # only inputs below offset 1000

Re-runs ``order-requests[p]`` from the start through fresh books (no snapshot) with the
service's own code (:class:`~tradex.matching.partition.PartitionEngine`) and compares what
it produces with the log, record by record, per output stream of the partition's single
writer ``matcher/<p>``:

- ``engine-events[p]``;
- for every settlements partition s, the records of ``settlements[s]`` whose envelope
  producer is ``matcher/<p>`` (other partitions' matchers write there too, interleaved).

Per stream: the count, SHA-256 over the whole sequence (each record length-prefixed), and
the first divergence (log offset, expected vs got) if any. Exit 0 if every stream is
identical, 1 if not.

By default the input is re-run up to the matcher group's committed offset of the
partition — exactly the inputs whose outputs are on the log (offsets and outputs commit in
one transaction). Run it while the matcher is stopped or idle, or pass ``--upto``; the book
dimensions must be the ones the matcher ran with.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import struct
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException

from tradex.infra import settings as settings_module
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, LogSource
from tradex.log.topics import ENGINE_EVENTS, MATCHER_GROUP, ORDER_REQUESTS, SETTLEMENTS
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, PartitionEngine
from tradex.matching.recovery import input_batches
from tradex.matching.service import add_book_arguments, book_config, topics_of
from tradex.schemas.codec import Codec, CodecError
from tradex.schemas.remote import codec_from_settings

SUMMARY_CHARS_MAX = 600
_LENGTH = struct.Struct(">I")


@dataclass
class Divergence:
    index: int  # position in the stream's sequence
    log_offset: int  # -1: the log has no record there
    expected: str
    got: str


@dataclass
class StreamResult:
    """One output stream of a partition's matcher: what the re-run produced against the
    log: ``engine-events[p]``, or the matcher's records in ``settlements[partition]``."""

    topic: str  # logical name: ENGINE_EVENTS or SETTLEMENTS
    partition: int
    expected_records: int
    log_records: int
    expected_sha256: str
    log_sha256: str
    divergence: Divergence | None

    @property
    def ok(self) -> bool:
        return self.divergence is None and self.expected_sha256 == self.log_sha256

    @property
    def where(self) -> str:
        if self.topic == ENGINE_EVENTS:
            return ENGINE_EVENTS  # the partition is the input's, named by the report
        return f"{self.topic} partition {self.partition}"


@dataclass
class VerifyResult:
    partition: int
    input_end: int  # inputs below this offset were re-run
    engine: StreamResult
    settlements: list[StreamResult] = field(default_factory=list)  # by settlements partition

    @property
    def ok(self) -> bool:
        return self.engine.ok and all(s.ok for s in self.settlements)

    @property
    def expected_records(self) -> int:
        return self.engine.expected_records

    @property
    def log_records(self) -> int:
        return self.engine.log_records

    @property
    def settlement_records(self) -> int:
        return sum(s.log_records for s in self.settlements)


def summary(codec: Codec, data: bytes | None) -> str:
    """A record as readable text (type, seq, payload), for divergence reports."""
    if data is None:
        return "<no record>"
    try:
        decoded = codec.decode(data)
    except CodecError as exc:
        return f"<undecodable: {exc}> {data[:64].hex()}"
    record = decoded.record
    envelope = record["envelope"]
    payload = {k: v for k, v in record.items() if k not in ("envelope", "hash")}
    text = (
        f"{decoded.subject.rsplit('.', 1)[-1]} seq={envelope['seq']} "
        f"event_id={envelope['event_id']} {payload} hash={record['hash'].hex()[:16]}"
    )
    return text[:SUMMARY_CHARS_MAX]


def committed_offset(source: LogSource, partition: int) -> int | None:
    """The matcher group's committed offset of ``order-requests[partition]``, None if none."""
    offset = source.committed(MATCHER_GROUP, ORDER_REQUESTS, [partition])[partition]
    return offset if offset >= 0 else None


class _Stream:
    """Compares one stream as the re-run produces it with the log's records, in step."""

    def __init__(
        self, codec: Codec, topic: str, partition: int, logged: Iterator[tuple[int, bytes]]
    ) -> None:
        self.codec = codec
        self.topic = topic
        self.partition = partition
        self.logged = logged
        self.digest_expected = hashlib.sha256()
        self.digest_log = hashlib.sha256()
        self.n_expected = 0
        self.n_log = 0
        self.divergence: Divergence | None = None

    def expect(self, want: bytes | None) -> bool:
        """The next expected record (None: no more); False once both ended."""
        got = next(self.logged, None)
        if want is None and got is None:
            return False
        if want is not None:
            self.digest_expected.update(_LENGTH.pack(len(want)) + want)
            self.n_expected += 1
        if got is not None:
            self.digest_log.update(_LENGTH.pack(len(got[1])) + got[1])
            self.n_log += 1
        if self.divergence is None and (got is None or want != got[1]):
            index = (self.n_expected if want is not None else self.n_log) - 1
            self.divergence = Divergence(
                index,
                got[0] if got is not None else -1,
                summary(self.codec, want),
                summary(self.codec, got[1] if got is not None else None),
            )
        return True

    def finish(self) -> StreamResult:
        """Read what the log holds beyond the expected records (each one a divergence)."""
        while self.expect(None):
            pass
        return StreamResult(
            self.topic,
            self.partition,
            self.n_expected,
            self.n_log,
            self.digest_expected.hexdigest(),
            self.digest_log.hexdigest(),
            self.divergence,
        )


def producer_records(
    log: LogSource, codec: Codec, topic: str, partition: int, producer: str
) -> Iterator[tuple[int, bytes]]:
    """(offset, value) of the records of ``topic[partition]`` whose envelope names
    ``producer``; a record that does not decode names nobody."""
    for record in log.read(topic, partition):
        value = record.value or b""
        try:
            envelope, _obj = codec.decode_domain(value)
        except CodecError:
            continue
        if envelope.producer == producer:
            yield record.offset, value


def verify_partition(
    settings: Settings,
    partition: int,
    *,
    upto: int | None = None,
    config: BookConfig | None = None,
    codec: Codec | None = None,
    source: LogSource | None = None,
) -> VerifyResult:
    """Re-run ``order-requests[partition]`` below ``upto`` (default: the matcher group's
    committed offset, else the end) and compare with ``engine-events[partition]`` and with
    the partition's matcher's records in every ``settlements`` partition, all read from
    ``source`` (default: the Kafka log of ``settings``, whose prefix names the topics the
    engine writes)."""
    config = config or BookConfig()
    codec = codec or codec_from_settings(settings)
    topics = topics_of(settings)
    with KafkaLog(settings) if source is None else nullcontext(source) as log:
        if upto is None:
            upto = committed_offset(log, partition)
        if upto is None:  # the matcher never committed: everything there is
            upto = log.watermarks(ORDER_REQUESTS, partition)[1]
        try:
            settlement_partitions = log.partitions(SETTLEMENTS)
        except (RuntimeError, KafkaException):
            settlement_partitions = 0  # no settlements topic: nothing to compare there
        engine = PartitionEngine(
            partition, codec, topics, max(settlement_partitions, 1),
            OutputBuffers(config.orders_max), config,
        )  # fmt: skip
        engine_stream = _Stream(
            codec, ENGINE_EVENTS, partition,
            ((r.offset, r.value or b"") for r in log.read(ENGINE_EVENTS, partition)),
        )  # fmt: skip
        settle_streams = [
            _Stream(codec, SETTLEMENTS, s,
                    producer_records(log, codec, SETTLEMENTS, s, engine.producer))
            for s in range(settlement_partitions)
        ]  # fmt: skip
        end = min(upto, log.watermarks(ORDER_REQUESTS, partition)[1])  # --upto past the end
        for batch in input_batches(log, partition, 0, end):
            for output in engine.apply(batch):
                if output.topic == topics.engine_events:
                    assert output.partition == partition
                    engine_stream.expect(output.value)
                elif output.topic == topics.settlements and settle_streams:
                    settle_streams[output.partition].expect(output.value)
        return VerifyResult(
            partition, upto, engine_stream.finish(), [s.finish() for s in settle_streams]
        )


def parse(argv: list[str]) -> tuple[argparse.Namespace, BookConfig]:
    parser = argparse.ArgumentParser(
        prog="tradex matching verify", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--partition", type=int, default=None, help="one partition (default all)")
    parser.add_argument(
        "--topic-prefix", default=None, help="topic prefix (default TRADEX_TOPIC_PREFIX)"
    )
    parser.add_argument(
        "--upto", type=int, default=None, metavar="OFFSET",
        help="re-run inputs below OFFSET (default: the matcher group's committed offset)",
    )  # fmt: skip
    parser.add_argument(
        "--archive", default=None, metavar="DIR",
        help="read the log from an archive (tradex export) instead of Kafka",
    )  # fmt: skip
    add_book_arguments(parser)
    args = parser.parse_args(argv)
    if args.partition is not None and args.partition < 0:
        parser.error("--partition must be >= 0")
    if args.upto is not None and args.upto < 0:
        parser.error("--upto must be >= 0")
    return args, book_config(parser, args)


def main(argv: list[str]) -> int:
    args, config = parse(argv)
    settings = settings_module.load()
    if args.topic_prefix is not None:
        settings = dataclasses.replace(settings, topic_prefix=args.topic_prefix)
    if args.archive is not None:
        from tradex.log.archive import ArchiveError, ArchiveLog

        try:
            with ArchiveLog(Path(args.archive)) as archive:
                return verify_all(settings, archive, args, config)
        except ArchiveError as exc:
            print(f"tradex matching verify: {exc}", file=sys.stderr)
            return 2
    with KafkaLog(settings) as log:
        return verify_all(settings, log, args, config)


def verify_all(
    settings: Settings, log: LogSource, args: argparse.Namespace, config: BookConfig
) -> int:
    """The partitions ``args`` asks for, reported; the exit status."""
    topic = settings.topic(ORDER_REQUESTS)
    try:
        partitions = log.partitions(ORDER_REQUESTS)
        log.partitions(ENGINE_EVENTS)
    except (RuntimeError, KafkaException) as exc:
        print(f"tradex matching verify: {exc}", file=sys.stderr)
        return 2
    if args.partition is not None and args.partition >= partitions:
        print(f"tradex matching verify: {topic} has {partitions} partitions", file=sys.stderr)
        return 2
    wanted = [args.partition] if args.partition is not None else list(range(partitions))
    codec = codec_from_settings(settings)
    results = []
    for partition in wanted:
        result = verify_partition(
            settings, partition, upto=args.upto, config=config, codec=codec, source=log
        )
        results.append(result)
        streams = [result.engine, *result.settlements]
        if result.ok:
            print(
                f"partition {partition}: identical — {result.log_records} engine-events and "
                f"{result.settlement_records} settlements in {len(result.settlements)} "
                f"partitions from {result.input_end} order-requests, engine-events sha256 "
                f"{result.engine.log_sha256}"
            )
            continue
        print(f"partition {partition}: DIVERGES")
        for stream in streams:
            if stream.ok:
                continue
            print(
                f"  {stream.where}: expected {stream.expected_records} records (sha256 "
                f"{stream.expected_sha256}), log has {stream.log_records} (sha256 "
                f"{stream.log_sha256})"
            )
            d = stream.divergence
            if d is not None:
                print(
                    f"  first divergence at record {d.index} ({stream.where} offset {d.log_offset})"
                )
                print(f"  expected: {d.expected}")
                print(f"  got:      {d.got}")
    ok = all(r.ok for r in results)
    print(
        json.dumps(
            {
                "verify": "matching",
                "ok": ok,
                "partitions": {
                    str(r.partition): {
                        "ok": r.ok,
                        "inputs": r.input_end,
                        "records": r.log_records,
                        "expected_records": r.expected_records,
                        "sha256": r.engine.log_sha256,
                        "first_divergence_offset": (
                            r.engine.divergence.log_offset if r.engine.divergence else None
                        ),
                        "settlements": {
                            str(s): {
                                "ok": stream.ok,
                                "records": stream.log_records,
                                "expected_records": stream.expected_records,
                                "sha256": stream.log_sha256,
                                "first_divergence_offset": (
                                    stream.divergence.log_offset if stream.divergence else None
                                ),
                            }
                            for s, stream in enumerate(r.settlements)
                        },
                    }
                    for r in results
                },
            }
        )
    )
    return 0 if ok else 1
