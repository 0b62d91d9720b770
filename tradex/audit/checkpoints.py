"""Signed checkpoints: the heads of every chained stream, signed with Ed25519, on the log.

A hash chain proves order, not that an auditor holds the log the operator published. A
checkpoint is the operator's signed statement "up to here, the log was exactly this",
written to the ``checkpoints`` topic (one partition, one signed sequence) by
``tradex run checkpointer`` every N records, or on demand by ``tradex audit checkpoint``.

Per chained partition (:data:`~tradex.log.topics.CHAINED_TOPICS`) a checkpoint holds the
segment it adds to the previous checkpoint — positions ``[start, end)``, the number of
records and the Merkle root over them (:mod:`.merkle`) — and the chain heads (offset and
hash of the last record of each producer so far). Each checkpoint also names the SHA-256
of the previous checkpoint record (``prev``) and its sequence number, so the checkpoints
themselves form a chain. The record's value is JSON::

    {"body": "<canonical JSON of the checkpoint>", "signature": "<hex Ed25519 signature>"}

the signature being over ``SIGNATURE_DOMAIN + body``. :func:`check_checkpoints` checks
every signature and sequence link, that the log extends every checkpointed head, and that
every segment's records hash to its signed root; where a segment differs, it follows the
hash chain inside it to name the record at fault.

The key is generated into the stack dir on first use (:func:`load_or_create_key`); its
public half is published with every archive (``tradex export``).

    tradex audit checkpoint                       # one checkpoint now
    tradex audit checkpoint --check [--archive DIR] [--public-key FILE]
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tradex.audit import merkle
from tradex.audit.links import link_problem, read_link
from tradex.audit.violations import Violation
from tradex.infra.settings import Settings
from tradex.log.batch import FLAG_KEY_NULL, FLAG_VALUE_NULL, RecordBatch
from tradex.log.records import LogRecord, Place
from tradex.log.source import LogSource
from tradex.log.topics import CHAINED_TOPICS, CHECKPOINTS

FORMAT_VERSION = 1
SIGNATURE_DOMAIN = b"tradex-checkpoint-v1\x00"
PRIVATE_KEY_NAME = "checkpoint_ed25519.pem"
PUBLIC_KEY_NAME = "checkpoint_ed25519.pub.pem"
heads_max = 1_024  # producers per partition a checkpoint names
streams_max = 65_536
checkpoint_bytes_max = 900_000  # under Kafka's 1 MB record limit
violations_per_stream_max = 20
tail_records_start = 16  # the newest checkpoint is looked for in the last N records


class CheckpointError(ValueError):
    """A checkpoint record that cannot be read, or a key that cannot be loaded."""


# -- keys -----------------------------------------------------------------------------------


def key_dir(settings: Settings) -> Path:
    return settings.stack_dir / "audit"


def load_or_create_key(settings: Settings) -> Ed25519PrivateKey:
    """The operator's signing key under the stack dir, generated (mode 0600) on first use."""
    path = key_dir(settings) / PRIVATE_KEY_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        try:
            os.link(temporary, path)  # another process may have won: keep its key
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        (path.parent / PUBLIC_KEY_NAME).write_bytes(public_pem(load_private_key(path)))
    return load_private_key(path)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path}: not an Ed25519 private key")
    return key


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def read_public_key(text_or_path: str) -> bytes:
    """A public key given as a PEM file, a file of 64 hex digits, or 64 hex digits: its 32
    raw bytes. CheckpointError when it is none of these."""
    raw = text_or_path.strip()
    path = Path(raw)
    if len(raw) < 4_096 and path.is_file():
        data = path.read_bytes()
        if b"BEGIN PUBLIC KEY" in data:
            try:
                key = serialization.load_pem_public_key(data)
            except ValueError as exc:
                raise CheckpointError(f"{path}: unreadable public key: {exc}") from None
            if not isinstance(key, Ed25519PublicKey):
                raise CheckpointError(f"{path}: not an Ed25519 public key")
            return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        raw = data.decode(errors="replace").strip()
    try:
        found = bytes.fromhex(raw)
    except ValueError:
        found = b""
    if len(found) != 32:
        raise CheckpointError(
            f"{text_or_path!r}: not a PEM file nor 64 hex digits of an Ed25519 key"
        )
    return found


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


# -- the record -----------------------------------------------------------------------------


@dataclass
class Stream:
    """One chained partition in a checkpoint: the segment it adds, and the heads so far."""

    topic: str
    partition: int
    start: int  # the previous checkpoint's end (0 for a stream seen for the first time)
    end: int  # position (next offset) up to which the log is covered
    records: int  # records in [start, end)
    root: bytes  # Merkle root over them
    heads: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # producer -> (offset, hash)

    @property
    def place(self) -> Place:
        return (self.topic, self.partition)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic, "partition": self.partition, "start": self.start,
            "end": self.end, "records": self.records, "root": self.root.hex(),
            "heads": [
                {"producer": p, "offset": o, "hash": h.hex()} for p, (o, h) in sorted(self.heads.items())
            ],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Stream:
        stream = cls(
            str(data["topic"]), int(data["partition"]), int(data["start"]), int(data["end"]),
            int(data["records"]), bytes.fromhex(data["root"]),
            {str(h["producer"]): (int(h["offset"]), bytes.fromhex(h["hash"])) for h in data["heads"]},
        )  # fmt: skip
        if (
            not 0 <= stream.start <= stream.end
            or not 0 <= stream.records <= stream.end - stream.start
        ):
            raise ValueError(f"{stream.place}: bad segment [{stream.start}, {stream.end})")
        if len(stream.root) != merkle.HASH_SIZE or len(stream.heads) > heads_max:
            raise ValueError(f"{stream.place}: bad root or too many heads")
        return stream


@dataclass
class Checkpoint:
    seq: int  # 0, 1, 2, ... in the checkpoints topic
    prev: bytes  # SHA-256 of the previous checkpoint record's value (zeros for the first)
    key_id: str
    created_ms: int
    streams: list[Stream]

    def body(self) -> str:
        return json.dumps(
            {
                "version": FORMAT_VERSION, "seq": self.seq, "prev": self.prev.hex(),
                "key_id": self.key_id, "created_ms": self.created_ms,
                "streams": [s.to_json() for s in self.streams],
            },
            sort_keys=True, separators=(",", ":"),
        )  # fmt: skip

    def stream(self, place: Place) -> Stream | None:
        for stream in self.streams:
            if stream.place == place:
                return stream
        return None


@dataclass
class SignedCheckpoint:
    checkpoint: Checkpoint
    body: str
    signature: bytes
    value: bytes  # the record's value as stored
    offset: int = -1  # in the checkpoints topic

    def signature_ok(self, public_key: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(
                self.signature, SIGNATURE_DOMAIN + self.body.encode()
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    def digest(self) -> bytes:
        return hashlib.sha256(self.value).digest()


def sign(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> SignedCheckpoint:
    body = checkpoint.body()
    signature = key.sign(SIGNATURE_DOMAIN + body.encode())
    value = json.dumps({"body": body, "signature": signature.hex()}).encode()
    assert len(value) <= checkpoint_bytes_max, f"checkpoint of {len(value)} bytes"
    signed = parse(value)
    assert signed.signature_ok(public_bytes(key))
    return signed


def parse(value: bytes | None, offset: int = -1) -> SignedCheckpoint:
    """A checkpoint record's value; CheckpointError saying what is wrong with it."""
    try:
        outer = json.loads(value or b"")
        body = outer["body"]
        signature = bytes.fromhex(outer["signature"])
        data = json.loads(body)
        if data["version"] != FORMAT_VERSION:
            raise ValueError(f"format version {data['version']}, expected {FORMAT_VERSION}")
        streams = [Stream.from_json(s) for s in data["streams"]]
        if len(streams) > streams_max:
            raise ValueError(f"{len(streams)} streams")
        checkpoint = Checkpoint(
            int(data["seq"]), bytes.fromhex(data["prev"]), str(data["key_id"]),
            int(data["created_ms"]), streams,
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"not a checkpoint: {type(exc).__name__}: {exc}") from None
    return SignedCheckpoint(checkpoint, body, signature, bytes(value or b""), offset)


def read_all(source: LogSource) -> Iterator[tuple[LogRecord, SignedCheckpoint | None, str]]:
    """Every checkpoint record in order: (record, the checkpoint or None, why not)."""
    if not has_topic(source, CHECKPOINTS):
        return
    for record in source.read(CHECKPOINTS, 0):
        try:
            yield record, parse(record.value, record.offset), ""
        except CheckpointError as exc:
            yield record, None, str(exc)


def expected_link(previous: SignedCheckpoint | None) -> tuple[int, bytes]:
    """The (seq, prev) of the checkpoint that follows ``previous`` (None: the first)."""
    if previous is None:
        return 0, bytes(32)
    return previous.checkpoint.seq + 1, previous.digest()


def latest(source: LogSource) -> SignedCheckpoint | None:
    """The newest readable checkpoint (reads only the topic's tail, widening as needed)."""
    if not has_topic(source, CHECKPOINTS):
        return None
    low, high = source.watermarks(CHECKPOINTS, 0)
    window = tail_records_start
    while True:
        start = max(low, high - window)
        found = None
        for record in source.read(CHECKPOINTS, 0, start, high):
            try:
                found = parse(record.value, record.offset)
            except CheckpointError:
                continue
        if found is not None or start <= low:
            return found
        window *= 4


def rows(batch: RecordBatch) -> Iterator[tuple[Place, int, bytes | None, bytes | None]]:
    """(place, offset, key, value) of every record of a batch, in order."""
    topics, values, keys = batch.topics, batch.values, batch.keys
    value_at, key_at = batch.value_offsets.tolist(), batch.key_offsets.tolist()
    flags = batch.flags.tolist()
    columns = zip(
        batch.topic_index.tolist(), batch.partition.tolist(), batch.offset.tolist(), strict=True
    )  # fmt: skip
    for i, (topic, partition, offset) in enumerate(columns):
        flag = flags[i]
        yield (
            (topics[topic], partition), offset,
            None if flag & FLAG_KEY_NULL else keys[key_at[i] : key_at[i + 1]],
            None if flag & FLAG_VALUE_NULL else values[value_at[i] : value_at[i + 1]],
        )  # fmt: skip


def has_topic(source: LogSource, topic: str) -> bool:
    try:
        source.partitions(topic)
    except Exception:  # no such topic: Kafka raises KafkaException or RuntimeError
        return False
    return True


def chained_places(source: LogSource) -> list[Place]:
    return [
        (topic, partition)
        for topic in CHAINED_TOPICS
        if has_topic(source, topic)
        for partition in range(source.partitions(topic))
    ]


# -- making one -----------------------------------------------------------------------------


def segments(
    source: LogSource,
    bounds: dict[Place, tuple[int, int]],
    heads: dict[Place, dict[str, tuple[int, bytes]]],
) -> list[Stream]:
    """The stream entries for ``[start, end)`` of each place (one read of them all), each
    place's ``heads`` moved along."""
    leaves: dict[Place, list[bytes]] = {place: [] for place in bounds}
    moved = {place: dict(heads.get(place, {})) for place in bounds}
    starts = {place: start for place, (start, end) in bounds.items() if start < end}
    ends = {place: bounds[place][1] for place in starts}
    for batch in source.read_columns(starts, ends) if starts else ():
        for place, offset, key, value in rows(batch):
            leaves[place].append(merkle.leaf_hash(offset, key, value))
            link = read_link(value)
            if link is not None:
                moved[place][link.producer] = (offset, link.hash)
    streams = []
    for place, (start, end) in sorted(bounds.items()):
        if len(moved[place]) > heads_max:
            raise CheckpointError(f"{place}: more than {heads_max} producers")
        found = leaves[place]
        streams.append(
            Stream(place[0], place[1], start, end, len(found), merkle.root(found), moved[place])
        )
    return streams


def next_checkpoint(
    source: LogSource,
    previous: SignedCheckpoint | None,
    key: Ed25519PrivateKey,
    now_ms: int,
    ends: dict[Place, int] | None = None,
) -> SignedCheckpoint:
    """The checkpoint after ``previous`` covering every chained partition up to ``ends``
    (default: the end of the log now)."""
    if ends is None:
        ends = {place: source.watermarks(*place)[1] for place in chained_places(source)}
    bounds: dict[Place, tuple[int, int]] = {}
    heads: dict[Place, dict[str, tuple[int, bytes]]] = {}
    for place, end in ends.items():
        before = previous.checkpoint.stream(place) if previous is not None else None
        start = before.end if before is not None else 0
        heads[place] = before.heads if before is not None else {}
        if end < start:
            raise CheckpointError(
                f"{place}: the log ends at {end}, before the last checkpoint's {start}"
            )
        bounds[place] = (start, end)
    streams = segments(source, bounds, heads)
    if previous is not None:  # a stream never disappears from the checkpoints
        for before in previous.checkpoint.streams:
            if before.place not in ends:
                raise CheckpointError(f"{before.place} is checkpointed but no longer in the log")
    seq, prev = expected_link(previous)
    return sign(Checkpoint(seq, prev, key_id(public_bytes(key)), now_ms, streams), key)


# -- checking ---------------------------------------------------------------------------------


Report = Any  # a list, something with add(violation), or with a ``violations`` list


def _adder(report: Report) -> Callable[[Violation], None]:
    add = getattr(report, "add", None)
    if callable(add):
        return add
    violations = getattr(report, "violations", None)
    if isinstance(violations, list):
        return violations.append
    return report.append


def check_checkpoints(source: LogSource, public_key: bytes, report: Report) -> None:
    """Add to ``report`` a :class:`Violation` for every forged, broken or unchained
    checkpoint, and for every place where the log does not extend the checkpointed log
    (the record named when it can be: changed, removed, reordered; the end when cut)."""
    add = _adder(report)
    assert len(public_key) == 32, len(public_key)
    wanted_key = key_id(public_key)
    previous: SignedCheckpoint | None = None
    by_place: dict[Place, list[Entry]] = {}
    seen = 0
    for record, signed, why in read_all(source):
        seen += 1

        def bad(check: str, message: str, at: LogRecord = record) -> None:
            add(Violation(check, CHECKPOINTS, at.partition, at.offset, "", message))

        if signed is None:
            bad("checkpoint_malformed", why)
            continue
        if not signed.signature_ok(public_key):
            bad("checkpoint_signature", f"checkpoint #{signed.checkpoint.seq}: signature "
                f"does not verify with key {wanted_key} (signed as {signed.checkpoint.key_id})")  # fmt: skip
            continue  # nothing it says can be trusted
        checkpoint = signed.checkpoint
        expected_seq, expected_prev = expected_link(previous)
        if checkpoint.seq != expected_seq or checkpoint.prev != expected_prev:
            bad("checkpoint_sequence", f"checkpoint #{checkpoint.seq} does not follow the "
                f"previous one (expected #{expected_seq} linking to it): a checkpoint removed or reordered")  # fmt: skip
        for stream in checkpoint.streams:
            before = previous.checkpoint.stream(stream.place) if previous is not None else None
            start = before.end if before is not None else 0
            if stream.start != start:
                bad("checkpoint_sequence", f"checkpoint #{checkpoint.seq}: {stream.topic}"
                    f"[{stream.partition}] starts at {stream.start}, the previous one ended at {start}")  # fmt: skip
            heads = before.heads if before is not None else {}
            by_place.setdefault(stream.place, []).append((stream, heads, signed))
        previous = signed
    if seen == 0:
        add(Violation("checkpoint_missing", CHECKPOINTS, 0, -1, "", "the log has no checkpoints"))
        return
    checks = {
        place: _StreamCheck(source, place, entries, add) for place, entries in by_place.items()
    }
    starts = {place: c.read_from for place, c in checks.items() if c.read_from < c.read_to}
    ends = {place: checks[place].read_to for place in starts}
    for batch in source.read_columns(starts, ends) if starts else ():
        for place, offset, key, value in rows(batch):
            checks[place].take(offset, key, value)
    for check in checks.values():
        check.finish()


Entry = tuple[Stream, dict[str, tuple[int, bytes]], SignedCheckpoint]
Row = tuple[int, bytes | None, bytes | None]  # offset, key, value


class _StreamCheck:
    """One chained partition against its checkpointed segments, fed its records in order."""

    def __init__(
        self,
        source: LogSource,
        place: Place,
        entries: list[Entry],
        add: Callable[[Violation], None],
    ) -> None:
        self.place = place
        self.add = add
        self.found = 0
        self.entries = [
            e for e in sorted(entries, key=lambda e: e[0].start) if e[0].start < e[0].end
        ]
        self.read_from = self.read_to = 0
        self.current = 0  # index of the entry being filled
        self.records: list[Row] = []
        topic, partition = place
        if not has_topic(source, topic) or partition >= source.partitions(topic):
            self.bad(
                "checkpoint_extends",
                -1,
                "",
                "checkpointed, but the log does not hold this partition",
            )
            self.entries = []
            return
        low, high = source.watermarks(topic, partition)
        last_end = max((e[0].end for e in entries), default=0)
        if high < last_end:
            self.bad("checkpoint_extends", high, "", f"the log ends at {high}, but the "
                     f"checkpoints cover it up to {last_end}: its tail was cut or rewritten")  # fmt: skip
        kept = []
        for entry in self.entries:
            if entry[0].start < low:
                self.bad("checkpoint_extends", low, "", f"the log starts at {low}: records from "
                         f"{entry[0].start} (checkpoint #{entry[2].checkpoint.seq}) are gone")  # fmt: skip
            else:
                kept.append(entry)
        self.entries = kept
        if kept:
            self.read_from = kept[0][0].start
            self.read_to = min(high, max(e[0].end for e in kept))

    def bad(self, check: str, offset: int, event_id: str, message: str) -> None:
        self.found += 1
        if self.found <= violations_per_stream_max:
            self.add(Violation(check, self.place[0], self.place[1], offset, event_id, message))

    def take(self, offset: int, key: bytes | None, value: bytes | None) -> None:
        entries = self.entries
        while self.current < len(entries) and offset >= entries[self.current][0].end:
            self._settle()
        if self.current < len(entries) and offset >= entries[self.current][0].start:
            self.records.append((offset, key, value))

    def finish(self) -> None:
        while self.current < len(self.entries):
            self._settle()
        if self.found > violations_per_stream_max:
            self.add(Violation("checkpoint_root", self.place[0], self.place[1], -1, "",
                               f"{self.found - violations_per_stream_max} more violations here"))  # fmt: skip

    def _settle(self) -> None:
        stream, heads, signed = self.entries[self.current]
        records, self.records = self.records, []
        self.current += 1
        leaves = [merkle.leaf_hash(*r) for r in records]
        if len(leaves) == stream.records and merkle.root(leaves) == stream.root:
            return
        seq = signed.checkpoint.seq
        located = _locate(records, heads)
        if located is not None:
            offset, event_id, why = located
            self.bad("checkpoint_record", offset, event_id,
                     f"differs from the log signed by checkpoint #{seq}: {why}")  # fmt: skip
        held = {r[0]: r[2] for r in records}
        for producer, (offset, hash_) in sorted(stream.heads.items()):
            if not stream.start <= offset < stream.end:
                continue
            link = read_link(held.get(offset))
            if link is None or link.hash != hash_:
                holds = "no such record" if link is None else f"hash {link.hash.hex()[:16]}…"
                self.bad("checkpoint_head", offset, link.event_id if link else "",
                         f"checkpoint #{seq} signed {producer!r}'s head here with hash "
                         f"{hash_.hex()[:16]}…; the log holds {holds}")  # fmt: skip
        if located is None:
            self.bad("checkpoint_root", stream.start, "", f"records [{stream.start}, "
                     f"{stream.end}) ({len(leaves)} of them, signed {stream.records}) do not hash "
                     f"to the root signed by checkpoint #{seq}")  # fmt: skip


def _locate(records: list[Row], heads: dict[str, tuple[int, bytes]]) -> tuple[int, str, str] | None:
    """The first record of a segment whose chain link is broken: (offset, event id, why)."""
    expected = {producer: hash_ for producer, (_, hash_) in heads.items()}
    for offset, _key, value in records:
        link = read_link(value)
        prev = expected.get(link.producer) if link is not None else None
        link, why = link_problem(value, prev)
        if why:
            return offset, link.event_id if link is not None else "", why
        assert link is not None
        expected[link.producer] = link.hash
    return None
