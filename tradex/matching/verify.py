"""``tradex matching verify``: the determinism proof of the matching engine.

    tradex matching verify                          # every partition, up to the committed offset
    tradex matching verify --partition 0 --topic-prefix demo-
    tradex matching verify --upto 1000              # only inputs below offset 1000

Re-runs ``order-requests[p]`` from the start through fresh books (no snapshot) with the
service's own code (:class:`~tradex.matching.partition.PartitionEngine`) and compares the
``engine-events`` it produces with ``engine-events[p]`` on the log, record by record: count
and SHA-256 over the whole sequence (each record length-prefixed), and the first divergence
(log offset, expected vs got) if any. Exit 0 if identical, 1 if not.

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
from dataclasses import dataclass

from confluent_kafka import KafkaException

from tradex.infra import settings as settings_module
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, LogSource
from tradex.log.topics import ENGINE_EVENTS, MATCHER_GROUP, ORDER_REQUESTS, SETTLEMENTS
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, PartitionEngine, Topics
from tradex.matching.recovery import input_batches
from tradex.matching.service import add_book_arguments, book_config, topics_of
from tradex.schemas.codec import Codec, CodecError
from tradex.schemas.remote import codec_from_settings

SUMMARY_CHARS_MAX = 600
_LENGTH = struct.Struct(">I")


@dataclass
class Divergence:
    index: int  # position in the partition's engine-events sequence
    log_offset: int  # -1: the log has no record there
    expected: str
    got: str


@dataclass
class VerifyResult:
    partition: int
    input_end: int  # inputs below this offset were re-run
    expected_records: int
    log_records: int
    expected_sha256: str
    log_sha256: str
    divergence: Divergence | None

    @property
    def ok(self) -> bool:
        return self.divergence is None and self.expected_sha256 == self.log_sha256


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


def expected_records(
    source: LogSource,
    topics: Topics,
    codec: Codec,
    partition: int,
    end: int,
    config: BookConfig,
) -> Iterator[bytes]:
    """The engine-events a fresh engine produces for ``order-requests[partition]`` < end
    (``topics``: the real names the engine writes, as the service's)."""
    try:
        settlement_partitions = source.partitions(SETTLEMENTS)
    except (RuntimeError, KafkaException):
        settlement_partitions = 1  # engine-events do not depend on it
    engine = PartitionEngine(
        partition, codec, topics, settlement_partitions, OutputBuffers(config.orders_max), config
    )
    end = min(end, source.watermarks(ORDER_REQUESTS, partition)[1])  # --upto past the end
    for batch in input_batches(source, partition, 0, end):
        for output in engine.apply(batch):
            if output.topic == topics.engine_events:
                assert output.partition == partition
                yield output.value


def compare(
    codec: Codec, expected: Iterator[bytes], log: Iterator[tuple[int, bytes]]
) -> tuple[int, int, str, str, Divergence | None]:
    """(expected count, log count, expected sha256, log sha256, first divergence)."""
    digest_expected = hashlib.sha256()
    digest_log = hashlib.sha256()
    n_expected = n_log = 0
    divergence: Divergence | None = None
    while True:
        want = next(expected, None)
        got = next(log, None)
        if want is None and got is None:
            break
        if want is not None:
            digest_expected.update(_LENGTH.pack(len(want)) + want)
            n_expected += 1
        if got is not None:
            digest_log.update(_LENGTH.pack(len(got[1])) + got[1])
            n_log += 1
        if divergence is None and (got is None or want != got[1]):
            index = (n_expected if want is not None else n_log) - 1
            divergence = Divergence(
                index,
                got[0] if got is not None else -1,
                summary(codec, want),
                summary(codec, got[1] if got is not None else None),
            )
    return (
        n_expected,
        n_log,
        digest_expected.hexdigest(),
        digest_log.hexdigest(),
        divergence,
    )


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
    committed offset, else the end) and compare with ``engine-events[partition]``, both
    read from ``source`` (default: the Kafka log of ``settings``, whose prefix names the
    topics the engine writes)."""
    config = config or BookConfig()
    codec = codec or codec_from_settings(settings)
    with KafkaLog(settings) if source is None else nullcontext(source) as log:
        if upto is None:
            upto = committed_offset(log, partition)
        if upto is None:  # the matcher never committed: everything there is
            upto = log.watermarks(ORDER_REQUESTS, partition)[1]
        expected = expected_records(log, topics_of(settings), codec, partition, upto, config)
        logged = ((r.offset, r.value or b"") for r in log.read(ENGINE_EVENTS, partition))
        n_expected, n_log, sha_expected, sha_log, divergence = compare(codec, expected, logged)
    return VerifyResult(partition, upto, n_expected, n_log, sha_expected, sha_log, divergence)


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
        if result.ok:
            print(
                f"partition {partition}: identical — {result.log_records} engine-events from "
                f"{result.input_end} order-requests, sha256 {result.log_sha256}"
            )
        else:
            d = result.divergence
            print(
                f"partition {partition}: DIVERGES — expected {result.expected_records} records "
                f"(sha256 {result.expected_sha256}), log has {result.log_records} "
                f"(sha256 {result.log_sha256})"
            )
            if d is not None:
                print(
                    f"  first divergence at record {d.index} (engine-events offset {d.log_offset})"
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
                        "sha256": r.log_sha256,
                        "first_divergence_offset": (
                            r.divergence.log_offset if r.divergence is not None else None
                        ),
                    }
                    for r in results
                },
            }
        )
    )
    return 0 if ok else 1
