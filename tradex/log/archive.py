"""An archive of the log on disk, and :class:`ArchiveLog`: the log read from it, offline.

``tradex export`` (:mod:`tradex.audit.export`) writes an archive; every reader of a
:class:`~tradex.log.source.LogSource` (projection rebuilds, ``tradex replay``, the audit
checks, the matching re-run) reads it through :class:`ArchiveLog` with no Kafka running.

Layout of ``DIR``::

    manifest.json                       what is in the archive (below); written last
    checkpoint_ed25519.pub.pem          the checkpoints' public key (when there is one)
    avro/<topic>/<partition>-<first offset>.avro      the records, exactly as on the log
    parquet/<topic>/<partition>-<first offset>.parquet  the same, decoded, for analysis

Each Avro file is an Object Container File of :data:`RECORD_SCHEMA` (offset, timestamp,
key, value: the value's bytes are the record as on Kafka, Confluent header included, so
hash chains and signed checkpoints check over them), with the writer schemas of the
values in its metadata (``tradex.writer_schemas``: wire schema id -> Avro schema), so any
Avro tool reads the file and can decode the values. The manifest lists, per partition, the
positions covered (``low``, ``next``), the record count, the chain heads, and every file
with its first and last offsets, record count, size and SHA-256.

A file whose bytes are not those the manifest names, a manifest that is not a TradeX
archive, a file that ends early or holds other records than listed: :class:`ArchiveError`,
naming the file and the place, before any record of that file is returned.
"""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import numpy as np

from tradex.log.archive_kernel import gather, parse_records
from tradex.log.batch import RecordBatch
from tradex.log.records import LogRecord, Place
from tradex.log.source import LogSource
from tradex.log.tail import Tail, batch_records_max

FORMAT = "tradex-archive"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
PUBLIC_KEY_NAME = "checkpoint_ed25519.pub.pem"
SCHEMAS_META = "tradex.writer_schemas"
PLACE_META = "tradex.place"
RECORD_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "LogRecord",
    "namespace": "tradex.archive",
    "doc": "One record of a Kafka partition; value: Confluent wire format (magic, schema id, "
    "Avro body), the writer schemas are in the file metadata tradex.writer_schemas",
    "fields": [
        {"name": "offset", "type": "long"},
        {"name": "timestamp_ms", "type": "long"},
        {"name": "key", "type": ["null", "bytes"]},
        {"name": "value", "type": ["null", "bytes"]},
    ],
}
hash_chunk_bytes = 1 << 20
files_max = 1_000_000


class ArchiveError(ValueError):
    """The archive is not a complete TradeX archive: the message names the file and place."""


@dataclass(frozen=True)
class ArchiveFile:
    avro: str  # relative to the archive dir
    parquet: str  # relative; "" when none
    first_offset: int
    last_offset: int
    records: int
    bytes: int
    sha256: str
    parquet_sha256: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ArchivePartition:
    topic: str
    partition: int
    low: int  # the first position covered
    next: int  # the position after the last one covered (Kafka's next offset)
    records: int
    heads: list[dict[str, Any]]  # chain heads: producer, offset, hash (hex)
    files: list[ArchiveFile]

    @property
    def place(self) -> Place:
        return (self.topic, self.partition)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic, "partition": self.partition, "low": self.low,
            "next": self.next, "records": self.records, "heads": self.heads,
            "files": [f.to_json() for f in self.files],
        }  # fmt: skip


def manifest_path(directory: Path) -> Path:
    return directory / MANIFEST_NAME


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest's JSON, checked to be a TradeX archive's; ArchiveError otherwise."""
    path = manifest_path(directory)
    if not directory.is_dir():
        raise ArchiveError(f"{directory}: no such directory")
    if not path.is_file():
        raise ArchiveError(
            f"{path}: missing: not a TradeX archive, or an export that never finished its first chunk"
        )
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(
            f"{path}: not JSON ({exc}): a foreign or half-written manifest"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArchiveError(
            f"{path}: not a TradeX archive manifest (format {data.get('format') if isinstance(data, dict) else None!r})"
        )
    if data.get("version") != FORMAT_VERSION:
        raise ArchiveError(
            f"{path}: archive format version {data.get('version')!r}, this reader knows {FORMAT_VERSION}"
        )
    return data


def parse_partitions(directory: Path, data: dict[str, Any]) -> dict[Place, ArchivePartition]:
    path = manifest_path(directory)
    found: dict[Place, ArchivePartition] = {}
    try:
        for entry in data["partitions"]:
            files = [ArchiveFile(**f) for f in entry["files"]]
            part = ArchivePartition(
                str(entry["topic"]), int(entry["partition"]), int(entry["low"]), int(entry["next"]),
                int(entry["records"]), list(entry["heads"]), files,
            )  # fmt: skip
            if part.place in found:
                raise ValueError(f"{part.place} listed twice")
            _check_listing(part)
            found[part.place] = part
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchiveError(
            f"{path}: malformed partition list: {type(exc).__name__}: {exc}"
        ) from None
    return found


def _check_listing(part: ArchivePartition) -> None:
    if not 0 <= part.low <= part.next or len(part.files) > files_max:
        raise ValueError(f"{part.place}: bad range [{part.low}, {part.next})")
    if sum(f.records for f in part.files) != part.records:
        raise ValueError(f"{part.place}: file record counts do not add up to {part.records}")
    previous = part.low - 1
    for f in part.files:
        if not previous < f.first_offset <= f.last_offset < part.next or f.records <= 0:
            raise ValueError(
                f"{part.place}: file {f.avro} covers [{f.first_offset}, {f.last_offset}] out of order"
            )
        if Path(f.avro).is_absolute() or ".." in Path(f.avro).parts:
            raise ValueError(f"{part.place}: file path {f.avro!r} outside the archive")
        previous = f.last_offset


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(hash_chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def archive_public_key(directory: Path) -> bytes:
    """The raw Ed25519 public key published with the archive; ArchiveError if none."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path = directory / PUBLIC_KEY_NAME
    if not path.is_file():
        raise ArchiveError(f"{path}: the archive has no public key: give --public-key")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise ArchiveError(f"{path}: unreadable public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ArchiveError(f"{path}: not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Chunk:
    """Records of one Avro block of a file, as columns over the block's bytes."""

    data: np.ndarray  # uint8: the decompressed block
    offset: np.ndarray  # int64
    timestamp_ms: np.ndarray  # int64
    flags: np.ndarray  # uint8 (FLAG_VALUE_NULL | FLAG_KEY_NULL)
    key_span: np.ndarray  # int64 (n, 2): start, end in data
    value_span: np.ndarray  # int64 (n, 2)

    def __len__(self) -> int:
        return len(self.offset)

    def sliced(self, lo: int, hi: int) -> Chunk:
        return Chunk(
            self.data, self.offset[lo:hi], self.timestamp_ms[lo:hi], self.flags[lo:hi],
            self.key_span[lo:hi], self.value_span[lo:hi],
        )  # fmt: skip


def _parse_block(path: Path, data: np.ndarray, count: int, index: int) -> Chunk:
    """The block's records as columns; ArchiveError naming record ``index + i`` if bad."""
    offset = np.empty(count, np.int64)
    timestamp_ms = np.empty(count, np.int64)
    flags = np.empty(count, np.uint8)
    key_span = np.empty((count, 2), np.int64)
    value_span = np.empty((count, 2), np.int64)
    used = parse_records(data, count, offset, timestamp_ms, flags, key_span, value_span)
    if used < 0:
        raise ArchiveError(f"{path}: record {index - 1 - used} is malformed")
    if used != len(data):
        raise ArchiveError(
            f"{path}: {len(data) - used} stray bytes after record {index + count - 1}"
        )
    return Chunk(data, offset, timestamp_ms, flags, key_span, value_span)


def file_chunks(
    directory: Path, place: Place, listed: ArchiveFile, start: int = 0
) -> Iterator[Chunk]:
    """The records of one archive file from offset ``start``, block by block, checked
    against the manifest first (size, SHA-256, place) and then as read (offsets in order,
    within the listed range, the listed count): ArchiveError naming the file and record."""
    path = directory / listed.avro
    if not path.is_file():
        raise ArchiveError(f"{path}: missing (listed in the manifest for {place[0]}[{place[1]}])")
    size = path.stat().st_size
    if size != listed.bytes:
        raise ArchiveError(
            f"{path}: {size} bytes, the manifest says {listed.bytes}: truncated or half-written"
        )
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != listed.sha256:
        raise ArchiveError(f"{path}: SHA-256 differs from the manifest's: the file was changed")
    topic, partition = place
    index = 0
    previous = -1
    try:
        reader = fastavro.block_reader(io.BytesIO(content))
        if reader.metadata.get(PLACE_META) != f"{topic}/{partition}":
            raise ArchiveError(
                f"{path}: holds {reader.metadata.get(PLACE_META)!r}, listed as {topic}/{partition}"
            )
        schema = json.loads(reader.metadata.get("avro.schema", "{}"))
        fields = [f.get("name") for f in schema.get("fields", [])]
        if fields != [f["name"] for f in RECORD_SCHEMA["fields"]]:
            raise ArchiveError(
                f"{path}: not a file of {RECORD_SCHEMA['namespace']}.{RECORD_SCHEMA['name']} records"
            )
        for block in reader:
            count = int(block.num_records)
            if count <= 0 or index + count > listed.records:
                raise ArchiveError(
                    f"{path}: a block of {count} records after record {index}: more than the {listed.records} listed"
                )
            raw: bytes = block.bytes_.getvalue()  # type: ignore[attr-defined]
            chunk = _parse_block(path, np.frombuffer(raw, np.uint8), count, index)
            offsets = chunk.offset
            first, last = int(offsets[0]), int(offsets[-1])
            steps = np.flatnonzero(np.diff(offsets) <= 0)
            if first <= previous or len(steps) or last > listed.last_offset:
                at = index + (
                    int(steps[0]) + 1 if len(steps) else 0 if first <= previous else count - 1
                )
                raise ArchiveError(
                    f"{path}: record {at} has offset {int(offsets[at - index])} out of the listed order"
                )
            if index == 0 and first != listed.first_offset:
                raise ArchiveError(
                    f"{path}: starts at offset {first}, the manifest says {listed.first_offset}"
                )
            previous = last
            index += count
            if last >= start:
                lo = int(np.searchsorted(offsets, start)) if first < start else 0
                yield chunk.sliced(lo, count)
    except ArchiveError:
        raise
    except (ValueError, EOFError, KeyError, TypeError, OSError, StopIteration, zlib.error) as exc:
        raise ArchiveError(
            f"{path}: unreadable after record {index} ({type(exc).__name__}: {exc})"
        ) from None
    if index != listed.records or previous != listed.last_offset:
        raise ArchiveError(
            f"{path}: {index} records ending at {previous}, the manifest says {listed.records} ending at {listed.last_offset}"
        )


def _concat(chunks: list[Chunk], spans: str) -> tuple[bytes, np.ndarray]:
    parts: list[np.ndarray] = []
    offsets = np.zeros(sum(len(c) for c in chunks) + 1, np.int64)
    at = 0
    base = 0
    for chunk in chunks:
        n = len(chunk)
        local = np.empty(n + 1, np.int64)
        parts.append(gather(chunk.data, getattr(chunk, spans), np.arange(n), local))
        offsets[at + 1 : at + n + 1] = local[1:] + base
        base += int(local[-1])
        at += n
    return b"".join(p.tobytes() for p in parts), offsets


class _ArchiveTail(Tail):
    """Reads an archive's partitions from given positions, in columns; the end is the
    archive's end (nothing arrives after it)."""

    def __init__(self, archive: ArchiveLog, starts: Mapping[Place, int]) -> None:
        self.archive = archive
        self._reached = dict(starts)
        self._ended = dict.fromkeys(starts, False)
        self._chunks = {place: archive.chunks_from(place, start) for place, start in starts.items()}
        self._held: dict[Place, Chunk] = {}  # what a poll left of a chunk
        self._topics = tuple(dict.fromkeys(topic for topic, _ in starts))

    def poll_batch(self, timeout_s: float, records_max: int = batch_records_max) -> RecordBatch:
        assert records_max > 0, records_max
        taken: list[tuple[Place, Chunk]] = []
        left = records_max
        for place, chunks in self._chunks.items():
            if left == 0:
                break
            if self._ended[place]:
                continue
            while left > 0:
                chunk = self._held.pop(place, None) or next(chunks, None)
                if chunk is None:  # the archive's end of this partition (past any markers)
                    self._reached[place] = max(
                        self._reached[place], self.archive.partition_info(place).next
                    )
                    self._ended[place] = True
                    break
                if len(chunk) > left:
                    self._held[place] = chunk.sliced(left, len(chunk))
                    chunk = chunk.sliced(0, left)
                if len(chunk):
                    taken.append((place, chunk))
                    self._reached[place] = int(chunk.offset[-1]) + 1
                    left -= len(chunk)
        if not taken:
            return RecordBatch.empty(self._topics)
        parts = [c for _, c in taken]
        values, value_offsets = _concat(parts, "value_span")
        keys, key_offsets = _concat(parts, "key_span")
        index = {topic: i for i, topic in enumerate(self._topics)}
        return RecordBatch(
            self._topics, values, value_offsets, keys, key_offsets,
            np.concatenate([c.flags for c in parts]),
            np.concatenate([np.full(len(c), index[p[0]], np.int32) for p, c in taken]),
            np.concatenate([np.full(len(c), p[1], np.int32) for p, c in taken]),
            np.concatenate([c.offset for c in parts]),
            np.concatenate([c.timestamp_ms for c in parts]),
        )  # fmt: skip

    def poll(self, timeout_s: float, records_max: int = batch_records_max) -> list[LogRecord]:
        return self.poll_batch(timeout_s, records_max).records()

    def reached(self, place: Place) -> int:
        return self._reached[place]

    def at_end(self, place: Place) -> bool:
        return self._ended[place]

    def close(self) -> None:
        self._chunks.clear()
        self._held.clear()


class ArchiveLog(LogSource):
    """The log as an archive holds it (see the module doc); read-only, offline."""

    def __init__(self, directory: Path, *, allow_incomplete: bool = False) -> None:
        """ArchiveError when ``directory`` is not a complete archive (an interrupted export
        is refused unless ``allow_incomplete``: never a silent partial result)."""
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        if not self.manifest.get("complete") and not allow_incomplete:
            raise ArchiveError(f"{manifest_path(self.directory)}: the export did not finish "
                               "(complete: false): run tradex export --to it again")  # fmt: skip
        self.parts = parse_partitions(self.directory, self.manifest)
        counts: dict[str, int] = {}
        for topic, partition in self.parts:
            counts[topic] = max(counts.get(topic, 0), partition + 1)
        for topic, count in counts.items():
            for partition in range(count):
                if (topic, partition) not in self.parts:
                    raise ArchiveError(
                        f"{manifest_path(self.directory)}: {topic}[{partition}] missing"
                    )
        self._counts = counts

    @property
    def complete(self) -> bool:
        """Whether the export finished (a resumable export leaves it False until then)."""
        return bool(self.manifest.get("complete"))

    def topics(self) -> list[str]:
        return sorted(self._counts)

    def partition_info(self, place: Place) -> ArchivePartition:
        found = self.parts.get(place)
        if found is None:
            raise ArchiveError(f"{self.directory}: the archive holds no {place[0]}[{place[1]}]")
        return found

    def partitions(self, topic: str) -> int:
        if topic not in self._counts:
            raise RuntimeError(f"topic {topic} is not in the archive {self.directory}")
        return self._counts[topic]

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        part = self.partition_info((topic, partition))
        return part.low, part.next

    def chunks_from(self, place: Place, start: int) -> Iterator[Chunk]:
        """The archive's records of ``place`` with offset >= ``start``, in order, as the
        parsed blocks of its files."""
        part = self.partition_info(place)
        for listed in part.files:
            if listed.last_offset >= start:
                yield from file_chunks(self.directory, place, listed, start)

    def follow_batches(self, starts: Mapping[Place, int]) -> Tail:
        return self.follow(starts)

    def follow(self, starts: Mapping[Place, int]) -> Tail:
        """A tail that reads to the archive's end (nothing arrives after it: an archive does
        not grow; ``at_end`` is then True)."""
        for place in starts:
            self.partition_info(place)
        return _ArchiveTail(self, starts)

    def committed(
        self, group: str, topic: str, partitions: Iterable[int] | None = None
    ) -> dict[int, int]:
        """An archive holds no consumer groups: -1 everywhere."""
        wanted = range(self.partitions(topic)) if partitions is None else partitions
        return dict.fromkeys(wanted, -1)

    def close(self) -> None:
        pass
