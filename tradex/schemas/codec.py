"""Avro codec in the Confluent wire format: ``0x00 | schema id (4 bytes, big endian) | body``.

    codec = Codec.offline()                      # ids from registry.json, no service needed
    codec = Codec.from_settings(settings.load()) # a real registry when schema_registry_url is set

    sealed = codec.encode_domain(event, envelope_fields, prev_hash)  # domain object -> bytes
    envelope, event = codec.decode_domain(sealed.data)               # bytes -> domain object
    data = codec.encode("DeadLetter", record_dict)                   # plain dicts
    decoded = codec.decode(data)                                     # Decoded(subject, record, schema_id)

Schemas are parsed once; encoding and decoding use fastavro's ``schemaless_writer`` /
``schemaless_reader``. Old data (an older version's id) is read with the newest schema of
its subject (Avro schema resolution). Any undecodable input raises :class:`CodecError`.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from tradex.schemas.bindings import BINDINGS, from_record, to_record
from tradex.schemas.catalog import short_name
from tradex.schemas.chain import HASH_SIZE, HEADER_SIZE, ZERO_HASH, record_hash
from tradex.schemas.registry import Registry, SchemaVersion

MAGIC = 0
_HEADER = struct.Struct(">bI")
RECORD_SIZE_MAX = 1 << 20  # a larger record is refused (Kafka's default message.max.bytes)


class CodecError(ValueError):
    """Bytes that cannot be decoded (unknown schema id, corrupt body) or a record that
    cannot be encoded. Processors dead-letter such records."""


class Envelope(NamedTuple):
    event_id: str
    type: str
    event_time_ns: int
    causation_id: str
    correlation_id: str
    trace_parent: str
    producer: str
    seq: int
    prev_hash: bytes


class EnvelopeFields(NamedTuple):
    """What a producer supplies; ``type``, ``event_time_ns`` and ``prev_hash`` come from the
    record and the chain."""

    event_id: str
    causation_id: str
    correlation_id: str
    producer: str
    seq: int
    trace_parent: str = ""


class Decoded(NamedTuple):
    subject: str
    record: dict[str, Any]  # includes "envelope" and "hash"
    schema_id: int  # the id in the bytes (wire id)


class Sealed(NamedTuple):
    data: bytes  # wire bytes
    hash: bytes  # this record's hash: the next record's prev_hash


class _Writer(NamedTuple):
    header: bytes
    schema: Any  # parsed


class _Reader(NamedTuple):
    subject: str
    writer: Any  # parsed writer schema
    reader: Any  # parsed newest schema of the subject, None when it is the writer


class Codec:
    """Encoder/decoder for every subject of a :class:`Registry` (thread-compatible, no I/O
    after construction unless a registry client is attached)."""

    def __init__(self, registry: Registry, wire_ids: Mapping[int, int] | None = None) -> None:
        """``wire_ids``: local schema id -> id used on the wire (a real registry's ids);
        identity when None."""
        self.registry = registry
        self._wire_ids = dict(wire_ids) if wire_ids is not None else {i: i for i in registry.by_id}
        self._local_ids = {wire: local for local, wire in self._wire_ids.items()}
        assert len(self._local_ids) == len(self._wire_ids), "two local ids map to one wire id"
        self._parsed: dict[int, Any] = {}
        self._writers: dict[str, _Writer] = {}
        self._readers: dict[int, _Reader] = {}
        self._names: dict[str, str] = {}
        self.remote: Any = None  # a SchemaRegistryClient, when attached
        for subject, versions in registry.subjects.items():
            latest = versions[-1]
            newest = self._parse(latest)
            wire_id = self._wire_ids[latest.schema_id]
            self._writers[subject] = _Writer(_HEADER.pack(MAGIC, wire_id), newest)
            name = short_name(subject)
            assert name not in self._names, f"short name {name} used by two subjects"
            self._names[name] = subject
            self._names[subject] = subject
            for version in versions:
                wire = self._wire_ids[version.schema_id]
                same = version is latest
                self._readers[wire] = _Reader(
                    subject, self._parse(version), None if same else newest
                )

    def _parse(self, version: SchemaVersion) -> Any:
        parsed = self._parsed.get(version.schema_id)
        if parsed is None:
            parsed = self._parsed[version.schema_id] = parse_schema(json.loads(version.text))
        return parsed

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def offline(cls, registry: Registry | None = None) -> Codec:
        """Ids straight from the checked-in registry file."""
        return cls(registry if registry is not None else Registry.load())

    @classmethod
    def from_settings(cls, settings: Any) -> Codec:
        """Offline, or registered at ``settings.schema_registry_url`` when it is set."""
        url: str = settings.schema_registry_url
        if not url:
            return cls.offline()
        from tradex.schemas.remote import connect, registry_client

        return connect(registry_client(url), Registry.load())

    # -- encode ------------------------------------------------------------------------------

    def subject_of(self, name: str) -> str:
        subject = self._names.get(name)
        if subject is None:
            raise CodecError(f"no schema named {name!r}")
        return subject

    def schema_id(self, name: str) -> int:
        """The wire id the encoder writes for ``name`` (short record name or subject)."""
        wire_id: int = _HEADER.unpack(self._writers[self.subject_of(name)].header)[1]
        return wire_id

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Encode a full record dict (with ``envelope`` and ``hash``) of schema ``name``."""
        writer = self._writers.get(self._names.get(name, ""))
        if writer is None:
            raise CodecError(f"no schema named {name!r}")
        buffer = io.BytesIO()
        buffer.write(writer.header)
        try:
            schemaless_writer(buffer, writer.schema, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise CodecError(f"cannot encode {name}: {exc}") from exc
        data = buffer.getvalue()
        if len(data) > RECORD_SIZE_MAX:
            raise CodecError(f"{name}: {len(data)} bytes exceeds RECORD_SIZE_MAX")
        return data

    def seal(self, name: str, record: dict[str, Any], prev_hash: bytes) -> Sealed:
        """Encode ``record`` as the next link of a hash chain after ``prev_hash``."""
        assert len(prev_hash) == HASH_SIZE
        record["envelope"]["prev_hash"] = prev_hash
        record["hash"] = ZERO_HASH
        data = self.encode(name, record)
        digest = record_hash(prev_hash, memoryview(data)[:-HASH_SIZE])
        return Sealed(data[:-HASH_SIZE] + digest, digest)

    def encode_domain(
        self, obj: Any, envelope: EnvelopeFields, prev_hash: bytes = ZERO_HASH
    ) -> Sealed:
        """Encode a domain record (event, command, order request) with its envelope."""
        name = type(obj).__name__
        binding = BINDINGS.get(name)
        if binding is None:
            raise CodecError(f"{name} is not a bound domain type")
        record = to_record(obj, binding)
        record["envelope"] = {
            "event_id": envelope.event_id,
            "type": name,
            "event_time_ns": obj.event_time_ns,
            "causation_id": envelope.causation_id,
            "correlation_id": envelope.correlation_id,
            "trace_parent": envelope.trace_parent,
            "producer": envelope.producer,
            "seq": envelope.seq,
            "prev_hash": prev_hash,
        }
        return self.seal(name, record, prev_hash)

    # -- decode ------------------------------------------------------------------------------

    def decode(self, data: bytes) -> Decoded:
        """Decode wire bytes; raise CodecError for anything but a well-formed record."""
        if len(data) < HEADER_SIZE + HASH_SIZE:
            raise CodecError(f"record of {len(data)} bytes is too short")
        magic, wire_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CodecError(f"bad magic byte {magic} (not Confluent wire format)")
        reader = self._readers.get(wire_id)
        if reader is None:
            reader = self._resolve_remote(wire_id)
        buffer = io.BytesIO(data)
        buffer.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(buffer, reader.writer, reader.reader)
        except Exception as exc:  # fastavro raises many kinds on corrupt input
            raise CodecError(
                f"corrupt {reader.subject} body (schema id {wire_id}): {exc!r}"
            ) from exc
        if buffer.tell() != len(data):
            raise CodecError(f"{len(data) - buffer.tell()} trailing bytes after a {reader.subject}")
        if not isinstance(record, dict):
            raise CodecError(f"{reader.subject} did not decode to a record")
        return Decoded(reader.subject, record, wire_id)

    def decode_domain(self, data: bytes) -> tuple[Envelope, Any]:
        """Decode and build the domain record; validates it (InvalidRecord -> CodecError)."""
        decoded = self.decode(data)
        name = short_name(decoded.subject)
        binding = BINDINGS.get(name)
        if binding is None:
            raise CodecError(f"{decoded.subject} has no domain type")
        record = decoded.record
        try:
            obj = from_record(record, binding)
            validate = getattr(obj, "validate", None)
            if validate is not None:
                validate()
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError(f"invalid {name}: {exc}") from exc
        return Envelope(**record["envelope"]), obj

    def _resolve_remote(self, wire_id: int) -> _Reader:
        """An id this process has not seen: ask the attached registry, match it to a local
        version by its canonical text."""
        if self.remote is None:
            raise CodecError(f"unknown schema id {wire_id}")
        from tradex.schemas.remote import local_version_of

        version = local_version_of(self.remote, self.registry, wire_id)
        if version is None:
            raise CodecError(f"schema id {wire_id} matches no schema in the registry file")
        latest = self.registry.latest(version.subject)
        reader = _Reader(
            version.subject,
            self._parse(version),
            None if version is latest else self._parse(latest),
        )
        self._readers[wire_id] = reader
        return reader
