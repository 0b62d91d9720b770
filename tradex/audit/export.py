"""``tradex export --to DIR [--topics T ...]``: the log to an archive (Avro + Parquet).

    tradex export --to /archive                      # every topic but the snapshots
    tradex export --to /archive --topics account-events engine-events

Writes the layout of :mod:`tradex.log.archive`: per partition, chunks of at most
``--chunk-records`` records as Avro Object Container Files (the records exactly as on the
log, the writer schemas in the file metadata) and as Parquet (decoded: envelope columns
and the payload as JSON, for pandas, DuckDB, ClickHouse…), the checkpoints' public key,
and ``manifest.json``.

Resumable and incremental: each chunk is written to a temporary file, renamed into place,
and only then listed in the manifest (itself replaced atomically), so an interrupted
export leaves a valid archive of what it finished (marked ``"complete": false``), and the
next run continues where the manifest ends — also to add what the log gained since.
Readers refuse an archive that is not complete. A progress line on stderr shows
records/s and the ETA.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from tradex.audit.checkpoints import CheckpointError, key_dir, parse
from tradex.audit.links import read_link
from tradex.infra.cli_args import positive_int
from tradex.infra.settings import Settings
from tradex.log.archive import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    PLACE_META,
    PUBLIC_KEY_NAME,
    RECORD_SCHEMA,
    SCHEMAS_META,
    ArchiveError,
    ArchiveFile,
    ArchivePartition,
    file_sha256,
    parse_partitions,
    read_manifest,
)
from tradex.log.records import LogRecord, Place
from tradex.log.source import KafkaLog, LogSource
from tradex.log.topics import (
    ACCOUNT_SNAPSHOTS,
    CHAINED_TOPICS,
    CHECKPOINTS,
    MATCHER_SNAPSHOTS,
    TOPICS_ALL,
)
from tradex.schemas.codec import Codec, CodecError
from tradex.schemas.remote import codec_from_settings

DEFAULT_TOPICS = tuple(t for t in TOPICS_ALL if t not in (ACCOUNT_SNAPSHOTS, MATCHER_SNAPSHOTS))
chunk_records_default = 50_000
chunk_records_max = 1_000_000
avro_block_bytes = 1 << 20  # big blocks: ArchiveLog parses a block per call
progress_interval_s = 1.0
ENVELOPE_COLUMNS = (
    "event_id",
    "type",
    "producer",
    "seq",
    "event_time_ns",
    "causation_id",
    "correlation_id",
)


class ExportStats:
    def __init__(self) -> None:
        self.records = 0
        self.files = 0
        self.started = time.monotonic()


class Progress:
    """One line on stderr: a bar, records, records/s, ETA."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown < progress_interval_s:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        eta = f"{(self.total - done) / rate:,.0f} s" if rate > 0 else "?"
        filled = min(30, int(30 * done / self.total))
        self.stream.write(
            f"\rexport [{'#' * filled}{'.' * (30 - filled)}] {min(100.0, 100 * done / self.total):5.1f}% "
            f"{done:,} records, {rate:,.0f} records/s, ETA {eta}   "
        )
        if final:
            self.stream.write("\n")
        self.stream.flush()


def _hex(value: Any) -> str:
    """JSON for what json cannot write itself: bytes as hex."""
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} in a record")


def parquet_table(records: Sequence[LogRecord], codec: Codec) -> pa.Table:
    """The records decoded: position, envelope columns, payload as JSON, raw bytes."""
    columns: dict[str, list[Any]] = {name: [] for name in (
        "partition", "offset", "timestamp_ms", "key", "schema_id", "subject", *ENVELOPE_COLUMNS,
        "prev_hash", "hash", "payload", "decode_error", "value",
    )}  # fmt: skip
    for record in records:
        value = record.value
        columns["partition"].append(record.partition)
        columns["offset"].append(record.offset)
        columns["timestamp_ms"].append(record.timestamp_ms)
        columns["key"].append(record.key)
        columns["value"].append(value)
        decoded = None
        error = None
        if value is not None:
            try:
                decoded = codec.decode(value)
            except CodecError as exc:
                error = str(exc)
        columns["decode_error"].append(error)
        if decoded is None:
            columns["schema_id"].append(None)
            columns["subject"].append(None)
            for name in (*ENVELOPE_COLUMNS, "prev_hash", "hash", "payload"):
                columns[name].append(None)
            continue
        body = dict(decoded.record)
        envelope = body.pop("envelope", {}) or {}
        columns["schema_id"].append(decoded.schema_id)
        columns["subject"].append(decoded.subject)
        for name in ENVELOPE_COLUMNS:
            columns[name].append(envelope.get(name))
        columns["prev_hash"].append(envelope.get("prev_hash"))
        columns["hash"].append(body.pop("hash", None))
        columns["payload"].append(json.dumps(body, sort_keys=True, default=_hex))
    types = {
        "partition": pa.int32(), "offset": pa.int64(), "timestamp_ms": pa.int64(),
        "key": pa.binary(), "schema_id": pa.int32(), "subject": pa.string(),
        "event_id": pa.string(), "type": pa.string(), "producer": pa.string(), "seq": pa.int64(),
        "event_time_ns": pa.int64(), "causation_id": pa.string(), "correlation_id": pa.string(),
        "prev_hash": pa.binary(), "hash": pa.binary(), "payload": pa.string(),
        "decode_error": pa.string(), "value": pa.binary(),
    }  # fmt: skip
    return pa.table({name: pa.array(values, types[name]) for name, values in columns.items()})


def _fsync_replace(temporary: Path, final: Path) -> None:
    with temporary.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)


class Exporter:
    """Appends chunks to an archive directory, keeping its manifest valid at every step."""

    def __init__(
        self,
        directory: Path,
        codec: Codec,
        topics: Sequence[str],
        chunk_records: int,
        parquet: bool = True,
    ) -> None:
        assert 0 < chunk_records <= chunk_records_max, chunk_records
        self.directory = directory
        self.codec = codec
        self.topics = list(topics)
        self.chunk_records = chunk_records
        self.parquet = parquet  # also write each chunk decoded, as Parquet
        self.parts: dict[Place, ArchivePartition] = {}
        self.checkpoints: list[dict[str, Any]] = []
        self.schemas: dict[str, dict[str, Any]] = {}
        self.created_ms = time.time_ns() // 1_000_000
        if (directory / MANIFEST_NAME).exists():
            data = read_manifest(directory)
            self.parts = parse_partitions(directory, data)
            self.checkpoints = list(data.get("checkpoints", []))
            self.schemas = dict(data.get("schemas", {}))
            self.created_ms = int(data.get("created_ms", self.created_ms))
            self._drop_unlisted()
        elif directory.exists() and any(directory.iterdir()):
            raise ArchiveError(
                f"{directory}: not empty and not an archive (no {MANIFEST_NAME}): choose an empty directory"
            )
        directory.mkdir(parents=True, exist_ok=True)

    def _drop_unlisted(self) -> None:
        """Remove what an interrupted run wrote but never listed (temporary or later files)."""
        listed = {f.avro for p in self.parts.values() for f in p.files}
        listed |= {f.parquet for p in self.parts.values() for f in p.files if f.parquet}
        for sub in ("avro", "parquet"):
            for path in (
                (self.directory / sub).rglob("*") if (self.directory / sub).exists() else ()
            ):
                if path.is_file() and str(path.relative_to(self.directory)) not in listed:
                    path.unlink()

    def part(self, place: Place, low: int) -> ArchivePartition:
        found = self.parts.get(place)
        if found is None:
            found = self.parts[place] = ArchivePartition(place[0], place[1], low, low, 0, [], [])
        return found

    def write_chunk(self, place: Place, records: list[LogRecord], next_position: int) -> None:
        """One chunk of ``place`` (records in order, all after what is listed), then the
        manifest with it; ``next_position``: where the archive of ``place`` now ends."""
        part = self.parts[place]
        assert records, place
        assert records[0].offset >= part.next, (place, records[0].offset, part.next)
        assert next_position > records[-1].offset, (next_position, records[-1].offset)
        topic, partition = place
        name = f"{partition}-{records[0].offset:020d}"
        avro_rel = f"avro/{topic}/{name}.avro"
        parquet_rel = f"parquet/{topic}/{name}.parquet"
        wire_ids = sorted(
            {
                int.from_bytes(r.value[1:5], "big")
                for r in records
                if r.value and len(r.value) >= 5 and r.value[0] == 0
            }
        )
        writer_schemas = {}
        for wire_id in wire_ids:
            version = self.codec.writer_schema(wire_id)
            if version is not None:
                writer_schemas[str(wire_id)] = json.loads(version.text)
                self.schemas[str(wire_id)] = {
                    "subject": version.subject,
                    "version": version.version,
                    "local_id": version.schema_id,
                }
        avro_path = self.directory / avro_rel
        avro_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = avro_path.with_suffix(".avro.tmp")
        with temporary.open("wb") as out:
            fastavro.writer(
                out, fastavro.parse_schema(RECORD_SCHEMA),
                ({"offset": r.offset, "timestamp_ms": r.timestamp_ms, "key": r.key, "value": r.value} for r in records),
                codec="deflate",
                sync_interval=avro_block_bytes,
                metadata={PLACE_META: f"{topic}/{partition}", SCHEMAS_META: json.dumps(writer_schemas)},
            )  # fmt: skip
        _fsync_replace(temporary, avro_path)
        parquet_sha256 = ""
        if self.parquet:
            parquet_path = self.directory / parquet_rel
            parquet_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = parquet_path.with_suffix(".parquet.tmp")
            pq.write_table(parquet_table(records, self.codec), temporary, compression="zstd")
            _fsync_replace(temporary, parquet_path)
            parquet_sha256 = file_sha256(parquet_path)
        else:
            parquet_rel = ""
        part.files.append(ArchiveFile(
            avro_rel, parquet_rel, records[0].offset, records[-1].offset, len(records),
            avro_path.stat().st_size, file_sha256(avro_path), parquet_sha256,
        ))  # fmt: skip
        part.records += len(records)
        part.next = next_position
        if topic in CHAINED_TOPICS:
            heads = {h["producer"]: h for h in part.heads}
            for record in records:
                link = read_link(record.value)
                if link is not None:
                    heads[link.producer] = {
                        "producer": link.producer,
                        "offset": record.offset,
                        "hash": link.hash.hex(),
                    }
            part.heads = [heads[p] for p in sorted(heads)]
        if topic == CHECKPOINTS:
            for record in records:
                try:
                    signed = parse(record.value, record.offset)
                except CheckpointError as exc:
                    self.checkpoints.append({"offset": record.offset, "error": str(exc)})
                    continue
                self.checkpoints.append(
                    {
                        "offset": record.offset,
                        "seq": signed.checkpoint.seq,
                        "key_id": signed.checkpoint.key_id,
                        "created_ms": signed.checkpoint.created_ms,
                    }
                )
        self.write_manifest(complete=False)

    def extend_empty(self, place: Place, next_position: int) -> None:
        """A partition with nothing more to archive than markers: move its end."""
        part = self.parts[place]
        assert next_position >= part.next, (place, next_position, part.next)
        part.next = next_position

    def write_manifest(self, complete: bool) -> None:
        data = {
            "format": FORMAT, "version": FORMAT_VERSION, "complete": complete,
            "created_ms": self.created_ms, "updated_ms": time.time_ns() // 1_000_000,
            "topics": sorted({t for t, _ in self.parts}),
            "public_key": PUBLIC_KEY_NAME if (self.directory / PUBLIC_KEY_NAME).exists() else None,
            "schemas": self.schemas, "checkpoints": self.checkpoints,
            "partitions": [self.parts[place].to_json() for place in sorted(self.parts)],
        }  # fmt: skip
        path = self.directory / MANIFEST_NAME
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(data, indent=1))
        _fsync_replace(temporary, path)


def existing_topics(source: LogSource, topics: Sequence[str]) -> list[str]:
    found = []
    for topic in topics:
        try:
            source.partitions(topic)
        except Exception:  # no such topic yet
            continue
        found.append(topic)
    return found


def export(
    settings: Settings,
    directory: Path,
    topics: Sequence[str] = DEFAULT_TOPICS,
    chunk_records: int = chunk_records_default,
    show_progress: bool = True,
    source: LogSource | None = None,
    parquet: bool = True,
) -> ExportStats:
    """Archive ``topics`` (those that exist) up to the log's end now into ``directory``
    (resuming what is there); returns what was added."""
    own = source is None
    log = KafkaLog(settings) if source is None else source
    stats = ExportStats()
    try:
        exporter = Exporter(
            directory, codec_from_settings(settings), existing_topics(log, topics), chunk_records,
            parquet,
        )  # fmt: skip
        public = key_dir(settings) / PUBLIC_KEY_NAME
        if public.exists():
            shutil.copyfile(public, directory / PUBLIC_KEY_NAME)
        starts: dict[Place, int] = {}
        ends: dict[Place, int] = {}
        for place, end in log.ends(exporter.topics).items():
            low = log.watermarks(*place)[0]
            part = exporter.part(place, low)
            if part.next < low:
                raise ArchiveError(f"{directory}: {place[0]}[{place[1]}] is archived up to {part.next}, "
                                   f"but the log now starts at {low}: records were deleted in between")  # fmt: skip
            if part.next > end:
                raise ArchiveError(f"{directory}: {place[0]}[{place[1]}] is archived up to {part.next}, "
                                   f"past the log's end {end}: an archive of another log?")  # fmt: skip
            starts[place], ends[place] = part.next, end
        total = sum(ends[p] - starts[p] for p in starts)
        progress = Progress(total) if show_progress else None
        buffers: dict[Place, list[LogRecord]] = {place: [] for place in starts}
        for batch in log.read_batches(starts, ends):
            for record in batch:
                place = (record.topic, record.partition)
                buffer = buffers[place]
                buffer.append(record)
                if len(buffer) >= chunk_records:
                    exporter.write_chunk(place, buffer, record.offset + 1)
                    stats.files += 1
                    buffers[place] = []
            stats.records += len(batch)
            if progress is not None:
                progress(stats.records)
        for place, buffer in buffers.items():
            if buffer:
                exporter.write_chunk(place, buffer, ends[place])
                stats.files += 1
            else:
                exporter.extend_empty(place, ends[place])
        exporter.write_manifest(complete=True)
        if progress is not None:
            progress(stats.records, final=True)
    finally:
        if own:
            log.close()
    return stats


def main(argv: list[str]) -> int:
    from tradex.infra import settings as settings_module

    parser = argparse.ArgumentParser(prog="tradex export", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--to", required=True, metavar="DIR", help="the archive directory (resumed if it is one)"
    )
    parser.add_argument("--topics", nargs="+", default=list(DEFAULT_TOPICS), metavar="TOPIC",
                        help="logical topic names (default: all but the snapshot topics)")  # fmt: skip
    parser.add_argument("--chunk-records", type=positive_int, default=chunk_records_default,
                        help="records per file at most")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--no-parquet", action="store_true",
        help="Avro only (about 3x faster: no decoding); readers need only the Avro files",
    )  # fmt: skip
    args = parser.parse_args(argv)
    unknown = [t for t in args.topics if t not in TOPICS_ALL]
    if unknown:
        parser.error(f"unknown topic {', '.join(unknown)}; known: {', '.join(TOPICS_ALL)}")
    if args.chunk_records > chunk_records_max:
        parser.error(f"--chunk-records must be <= {chunk_records_max:,}")
    try:
        stats = export(
            settings_module.load(), Path(args.to), args.topics, args.chunk_records,
            not args.quiet, parquet=not args.no_parquet,
        )  # fmt: skip
    except ArchiveError as exc:
        print(f"tradex export: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - stats.started
    print(f"exported {stats.records:,} records in {stats.files} files to {args.to} "
          f"({elapsed:.1f} s, {stats.records / max(elapsed, 1e-9):,.0f} records/s)")  # fmt: skip
    return 0
