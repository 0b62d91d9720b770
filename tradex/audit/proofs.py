"""``tradex audit prove``: an inclusion proof of one event, checkable without the log.

    tradex audit prove --event ID --out proof.json [--archive DIR]
    tradex audit prove --topic account-events --partition 0 --offset 41 --out proof.json
    tradex audit check-proof proof.json --public-key KEY        # offline (proof_check)

The proof holds the record (its key and value bytes), the signed checkpoint whose segment
covers it and the one before it (the segment is what lies between the two), the record's
index in that segment and the Merkle audit path from its leaf to the segment's signed
root (:mod:`.merkle`): ``log2(n)`` hashes instead of the segment's records. Anyone with
the operator's public key checks it with :func:`tradex.audit.proof_check.check_proof`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tradex.audit import merkle
from tradex.audit.checkpoints import SignedCheckpoint, has_topic, read_all
from tradex.audit.links import read_link
from tradex.audit.proof_check import PROOF_FORMAT, PROOF_VERSION, ProofError
from tradex.audit.proof_check import main as main_check_proof
from tradex.log.records import LogRecord, Place
from tradex.log.source import LogSource
from tradex.log.topics import CHAINED_TOPICS


def find_event(source: LogSource, event_id: str) -> tuple[Place, int]:
    """Where the chained record with ``event_id`` is: ((topic, partition), offset)."""
    starts = {
        (topic, partition): source.watermarks(topic, partition)[0]
        for topic in CHAINED_TOPICS
        if has_topic(source, topic)
        for partition in range(source.partitions(topic))
    }
    wanted = event_id.encode()
    for batch in source.read_batches(starts):
        for record in batch:
            if record.value is not None and wanted in record.value:
                link = read_link(record.value)
                if link is not None and link.event_id == event_id:
                    return (record.topic, record.partition), record.offset
    raise ProofError(f"no chained record has event id {event_id}")


def covering(
    source: LogSource, place: Place, offset: int
) -> tuple[SignedCheckpoint, SignedCheckpoint | None]:
    """The first well-formed checkpoint whose segment of ``place`` holds ``offset``, and the
    checkpoint before it (None for the first)."""
    previous: SignedCheckpoint | None = None
    for _record, signed, _why in read_all(source):
        if signed is None:
            continue
        stream = signed.checkpoint.stream(place)
        if stream is not None and stream.start <= offset < stream.end:
            if signed.checkpoint.seq > 0 and (
                previous is None or previous.checkpoint.seq != signed.checkpoint.seq - 1
            ):
                raise ProofError(f"checkpoint #{signed.checkpoint.seq - 1} is missing from the log")
            return signed, previous
        previous = signed
    raise ProofError(
        f"{place[0]}[{place[1]}]@{offset} is not covered by a checkpoint yet: run tradex audit checkpoint"
    )


def prove(source: LogSource, place: Place, offset: int) -> dict[str, Any]:
    """The inclusion proof of the record at ``offset`` of ``place`` (module doc)."""
    signed, previous = covering(source, place, offset)
    stream = signed.checkpoint.stream(place)
    assert stream is not None
    records: list[LogRecord] = list(source.read(place[0], place[1], stream.start, stream.end))
    leaves = [merkle.leaf_hash(r.offset, r.key, r.value) for r in records]
    if len(leaves) != stream.records or merkle.root(leaves) != stream.root:
        raise ProofError(
            f"{place[0]}[{place[1]}] [{stream.start}, {stream.end}) does not match checkpoint "
            f"#{signed.checkpoint.seq}: the log was changed (tradex audit checkpoint --check)"
        )
    index = next((i for i, r in enumerate(records) if r.offset == offset), -1)
    if index < 0:
        raise ProofError(
            f"{place[0]}[{place[1]}] has no record at offset {offset} (a transaction marker?)"
        )
    record = records[index]
    link = read_link(record.value)
    path = merkle.audit_path(leaves, index)
    assert merkle.root_from_path(leaves[index], index, len(leaves), path) == stream.root
    return {
        "format": PROOF_FORMAT,
        "version": PROOF_VERSION,
        "record": {
            "topic": record.topic, "partition": record.partition, "offset": record.offset,
            "timestamp_ms": record.timestamp_ms,
            "key": record.key.hex() if record.key is not None else None,
            "value": record.value.hex() if record.value is not None else None,
            "event_id": link.event_id if link else "", "type": link.type if link else "",
        },
        "segment": {"start": stream.start, "end": stream.end, "size": len(leaves), "index": index},
        "path": [h.hex() for h in path],
        "checkpoint": {"offset": signed.offset, "value": signed.value.decode()},
        "previous_checkpoint": (
            {"offset": previous.offset, "value": previous.value.decode()} if previous is not None else None
        ),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    from tradex.infra import settings as settings_module
    from tradex.log.archive import ArchiveError, ArchiveLog
    from tradex.log.source import KafkaLog

    parser = argparse.ArgumentParser(prog="tradex audit prove", description=__doc__.split("\n")[0])
    parser.add_argument("--event", metavar="ID", help="the event id")
    parser.add_argument("--topic", metavar="T")
    parser.add_argument("--partition", type=int, metavar="P")
    parser.add_argument("--offset", type=int, metavar="O")
    parser.add_argument("--out", required=True, metavar="FILE")
    parser.add_argument("--archive", metavar="DIR", help="prove from an archive instead of Kafka")
    args = parser.parse_args(argv)
    by_place = args.topic is not None and args.partition is not None and args.offset is not None
    if bool(args.event) == by_place:
        parser.error("give --event ID, or --topic T --partition P --offset O")
    try:
        source: LogSource = (
            ArchiveLog(Path(args.archive)) if args.archive else KafkaLog(settings_module.load())
        )
        with source:
            if args.event:
                place, offset = find_event(source, args.event)
            else:
                place, offset = (args.topic, args.partition), args.offset
            proof = prove(source, place, offset)
    except (ProofError, ArchiveError) as exc:
        print(f"tradex audit prove: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps(proof, indent=1))
    r, s = proof["record"], proof["segment"]
    print(f"{r['topic']}[{r['partition']}]@{r['offset']} ({r['event_id']}, {r['type']}): leaf "
          f"{s['index']} of {s['size']} under checkpoint #{json.loads(json.loads(proof['checkpoint']['value'])['body'])['seq']}, "
          f"{len(proof['path'])} hashes -> {args.out}")  # fmt: skip
    return 0


main_prove = main  # ``tradex audit prove`` through the audit command's verbs
__all__ = [
    "PROOF_FORMAT",
    "PROOF_VERSION",
    "ProofError",
    "find_event",
    "main_check_proof",
    "main_prove",
    "prove",
]
