"""Avro codec in the Confluent wire format: ``0x00 | schema id (4 bytes, big endian) | body``.

    codec = Codec.offline()                      # ids from registry.json, no service needed
    codec = codec_from_settings(settings)        # tradex.schemas.remote: a real registry when
                                                 # schema_registry_url is set

    sealed = codec.encode_domain(event, envelope_fields, prev_hash)  # domain object -> bytes
    envelope, event = codec.decode_domain(sealed.data)               # bytes -> domain object
    data = codec.encode("DeadLetter", record_dict)                   # plain dicts
    decoded = codec.decode(data)                                     # Decoded(subject, record, schema_id)

Schemas are parsed once. Each subject's newest schema is compiled into specialised
encoders/decoders (:mod:`.compile_writer`, :mod:`.compile_reader`): straight-line Python
that writes the fields of a domain NamedTuple (or a dict) into a bytearray and reads them
back, byte-identical to fastavro. Old data (an older version's id) is read by fastavro
with the newest schema of its subject (Avro schema resolution), and so is any subject the
compilers do not handle. ``Codec(..., specialised=False)`` uses fastavro for everything
(the reference the benchmark and the tests compare against). Any undecodable input raises
:class:`CodecError`.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from tradex.schemas.bindings import BINDINGS, Binding, from_record, to_record
from tradex.schemas.catalog import short_name
from tradex.schemas.chain import HASH_SIZE, HEADER_SIZE, ZERO_HASH, record_hash
from tradex.schemas.compile_base import Unsupported
from tradex.schemas.compile_reader import dict_decoder, domain_decoder
from tradex.schemas.compile_writer import dict_encoder, domain_encoder
from tradex.schemas.envelope import (
    RECORD_SIZE_MAX,
    Decoded,
    Envelope,
    EnvelopeFields,
    Sealed,
)
from tradex.schemas.registry import Registry, SchemaVersion

try:
    from tradex.schemas import compile_native
except ImportError:  # the C extension is not built (``pip install -e .`` builds it)
    compile_native = None  # type: ignore[assignment]

__all__ = [
    "RECORD_SIZE_MAX",
    "Codec",
    "CodecError",
    "Decoded",
    "Envelope",
    "EnvelopeFields",
    "Sealed",
]

MAGIC = 0
_HEADER = struct.Struct(">bI")
# what a bad record raises inside an encoder (fastavro's or a compiled one)
ENCODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError)
VALIDATE_ERRORS = (ValueError, KeyError, TypeError)


class CodecError(ValueError):
    """Bytes that cannot be decoded (unknown schema id, corrupt body) or a record that
    cannot be encoded. Processors dead-letter such records."""


class _Writer(NamedTuple):
    header: bytes
    schema: Any  # parsed
    fast: Callable[[dict[str, Any]], bytes] | None  # compiled dict encoder


class _Reader(NamedTuple):
    subject: str
    writer: Any  # parsed writer schema
    reader: Any  # parsed newest schema of the subject, None when it is the writer
    fast: Callable[[bytes], tuple[dict[str, Any], int]] | None  # compiled, when reader is None


class _DomainReader(NamedTuple):
    subject: str
    name: str
    decode: Callable[[bytes], tuple[Envelope, Any, int]]
    validate: Callable[[Any], None] | None


def _compiled(build: Callable[..., Any], *args: Any) -> Any:
    """The compiled function, or None when the schema needs fastavro."""
    try:
        return build(*args)
    except Unsupported:
        return None


def compile_native_encoder(text: str, binding: Binding, header: bytes) -> Any:
    assert compile_native is not None
    return compile_native.domain_program(text, binding, header)


def compile_native_decoder(text: str, binding: Binding) -> Any:
    assert compile_native is not None
    return compile_native.domain_decoder(text, binding)


class Codec:
    """Encoder/decoder for every subject of a :class:`Registry` (thread-compatible, no I/O
    after construction unless a registry client is attached)."""

    decode_domain: Callable[[bytes], tuple[Envelope, Any]]
    """Decode and build the domain record; validates it (InvalidRecord -> CodecError).

    The C codec's ``Readers.decode_domain`` when it serves the record's schema id (the same
    checks and errors in one C call: header, body, end, ``validate()``), else
    :meth:`_decode_domain_python`."""

    def __init__(
        self,
        registry: Registry,
        wire_ids: Mapping[int, int] | None = None,
        *,
        specialised: bool = True,
        native: bool = True,
        lookup: Callable[[int], SchemaVersion | None] | None = None,
    ) -> None:
        """``wire_ids``: local schema id -> id used on the wire (a real registry's ids);
        identity when None. ``specialised=False``: fastavro only (reference path).
        ``native=False``: the pure-Python compiled codec where the C one would serve.
        ``lookup``: the local version of a wire id this codec does not know (a registry
        connection, :mod:`tradex.schemas.remote`, which builds such codecs); None: offline."""
        self.registry = registry
        self.specialised = specialised
        self.native = native and specialised and compile_native is not None
        self._wire_ids = dict(wire_ids) if wire_ids is not None else {i: i for i in registry.by_id}
        self._local_ids = {wire: local for local, wire in self._wire_ids.items()}
        assert len(self._local_ids) == len(self._wire_ids), "two local ids map to one wire id"
        self._parsed: dict[int, Any] = {}
        self._writers: dict[str, _Writer] = {}
        self._readers: dict[int, _Reader] = {}
        self._names: dict[str, str] = {}
        self._domain_writers: dict[type, Callable[..., Sealed]] = {}
        self._domain_appenders: dict[type, Callable[..., bytes]] = {}
        self._domain_readers: dict[int, _DomainReader] = {}
        self._native_readers: Any = None  # _native_codec.Readers: wire id -> C decoder
        # The C Programs themselves, for stages that batch records in C (codec_api.h)
        self._native_encoders: dict[type, Any] = {}  # domain type -> encoder Program
        self._native_decoders: dict[str, tuple[int, Any]] = {}  # subject -> (wire id, decoder)
        if self.native:
            self._native_readers = compile_native.readers(
                CodecError, VALIDATE_ERRORS, self._decode_domain_python
            )
            self.decode_domain = self._native_readers.decode_domain
        else:
            self.decode_domain = self._decode_domain_python
        self.lookup = lookup
        for subject, versions in registry.subjects.items():
            latest = versions[-1]
            newest = self._parse(latest)
            wire_id = self._wire_ids[latest.schema_id]
            header = _HEADER.pack(MAGIC, wire_id)
            self._writers[subject] = _Writer(
                header, newest, self._fast(dict_encoder, latest.text, header)
            )
            name = short_name(subject)
            assert name not in self._names, f"short name {name} used by two subjects"
            self._names[name] = subject
            self._names[subject] = subject
            binding = BINDINGS.get(name)
            if binding is not None:
                program = self._native(compile_native_encoder, latest.text, binding, header)
                if program is not None:
                    encoder = program.encode_domain
                    self._domain_appenders[binding.cls] = program.encode_append
                    self._native_encoders[binding.cls] = program
                else:
                    encoder = self._fast(domain_encoder, latest.text, binding, header)
                if encoder is not None:
                    self._domain_writers[binding.cls] = encoder
            for version in versions:
                self._add_reader(self._wire_ids[version.schema_id], version)

    def _fast(self, build: Callable[..., Any], *args: Any) -> Any:
        return _compiled(build, *args) if self.specialised else None

    def _native(self, build: Callable[..., Any], *args: Any) -> Any:
        return _compiled(build, *args) if self.native else None

    def _add_reader(self, wire_id: int, version: SchemaVersion) -> _Reader:
        latest = self.registry.latest(version.subject)
        same = version is latest
        reader = _Reader(
            version.subject,
            self._parse(version),
            None if same else self._parse(latest),
            self._fast(dict_decoder, version.text) if same else None,
        )
        self._readers[wire_id] = reader
        name = short_name(version.subject)
        binding = BINDINGS.get(name)
        if same and binding is not None:
            decode = self._native(compile_native_decoder, version.text, binding)
            validate = getattr(binding.cls, "validate", None)
            if decode is not None:
                program = decode.__self__
                self._native_readers.add(wire_id, program, version.subject, name, validate)
                self._native_decoders.setdefault(version.subject, (wire_id, program))
            else:
                decode = self._fast(domain_decoder, version.text, binding)
            if decode is not None:
                self._domain_readers[wire_id] = _DomainReader(
                    version.subject, name, decode, validate
                )
        return reader

    def _parse(self, version: SchemaVersion) -> Any:
        parsed = self._parsed.get(version.schema_id)
        if parsed is None:
            parsed = self._parsed[version.schema_id] = parse_schema(json.loads(version.text))
        return parsed

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def offline(
        cls, registry: Registry | None = None, *, specialised: bool = True, native: bool = True
    ) -> Codec:
        """Ids straight from the checked-in registry file."""
        registry = registry if registry is not None else Registry.load()
        return cls(registry, specialised=specialised, native=native)

    def writer_schema(self, wire_id: int) -> SchemaVersion | None:
        """The schema version a wire id names (None: unknown to this codec and its lookup)."""
        local = self._local_ids.get(wire_id)
        if local is not None:
            return self.registry.by_id.get(local)
        return self.lookup(wire_id) if self.lookup is not None else None

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

    def headers_of(self, name: str) -> frozenset[bytes]:
        """The 5-byte wire headers (magic + id) of every known version of ``name``: a
        reader can tell a record's type from its first bytes without decoding it."""
        subject = self.subject_of(name)
        return frozenset(
            _HEADER.pack(MAGIC, self._wire_ids[v.schema_id])
            for v in self.registry.subjects[subject]
        )

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Encode a full record dict (with ``envelope`` and ``hash``) of schema ``name``."""
        writer = self._writers.get(self._names.get(name, ""))
        if writer is None:
            raise CodecError(f"no schema named {name!r}")
        try:
            if writer.fast is not None:
                data = writer.fast(record)
            else:
                buffer = io.BytesIO()
                buffer.write(writer.header)
                schemaless_writer(buffer, writer.schema, record)
                data = buffer.getvalue()
        except ENCODE_ERRORS as exc:
            raise CodecError(f"cannot encode {name}: {exc!r}") from exc
        if len(data) > RECORD_SIZE_MAX:
            raise CodecError(f"{name}: {len(data)} bytes exceeds RECORD_SIZE_MAX")
        return data

    def seal(self, name: str, record: dict[str, Any], prev_hash: bytes) -> Sealed:
        """Encode ``record`` as the next link of a hash chain after ``prev_hash``."""
        if len(prev_hash) != HASH_SIZE:
            raise CodecError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
        record["envelope"]["prev_hash"] = prev_hash
        record["hash"] = ZERO_HASH
        data = self.encode(name, record)
        digest = record_hash(prev_hash, memoryview(data)[:-HASH_SIZE])
        return Sealed(data[:-HASH_SIZE] + digest, digest)

    def encode_domain(
        self, obj: Any, envelope: EnvelopeFields, prev_hash: bytes = ZERO_HASH
    ) -> Sealed:
        """Encode a domain record (event, command, order request) with its envelope, as the
        next link of the hash chain after ``prev_hash``."""
        encoder = self._domain_writers.get(type(obj))
        if encoder is None:
            return self._encode_domain_reference(obj, envelope, prev_hash)
        try:
            return encoder(obj, envelope, prev_hash)
        except ENCODE_ERRORS as exc:
            raise CodecError(f"cannot encode {type(obj).__name__}: {exc!r}") from exc

    def native_encoder(self, cls: type) -> Any:
        """The C encoder ``Program`` of domain type ``cls`` (None without the C codec): for
        an extension that encodes batches through ``codec_api.h``."""
        return self._native_encoders.get(cls)

    def native_decoder(self, name: str) -> tuple[int, Any] | None:
        """(wire id, C decoder ``Program``) of the newest version of ``name`` (None without
        the C codec): what an extension scans through ``codec_api.h``. Records of other
        versions or ids are for :meth:`decode` / :meth:`decode_domain`."""
        found = self._native_decoders.get(self._names.get(name, ""))
        return found

    def appender(self, cls: type) -> Callable[..., bytes]:
        """``append(outputs, output_type, topic, key, partition, obj, prev_hash, event_id,
        causation_id, correlation_id, producer, seq, trace_parent) -> hash``: encode a
        domain record of type ``cls`` as :meth:`encode_domain` does (the envelope fields
        passed one by one, in :class:`EnvelopeFields` order), append
        ``output_type(topic, data, key, partition)`` to the list ``outputs`` and return the
        record's hash. The C codec does it in one call (a stage's hot path); otherwise
        :meth:`encode_domain` does the encoding. A record the C codec cannot encode raises
        ValueError/TypeError/OverflowError/KeyError as it is (callers encode what their
        own domain decided, so that is a bug, not bad input); the fallback raises
        CodecError."""
        native = self._domain_appenders.get(cls)
        if native is not None:
            return native
        encode = self.encode_domain

        def append(
            outputs: list[Any],
            output_type: type,
            topic: str,
            key: bytes | None,
            partition: int,
            obj: Any,
            prev_hash: bytes,
            *fields: Any,
        ) -> bytes:
            sealed = encode(obj, EnvelopeFields(*fields), prev_hash)
            outputs.append(output_type(topic, sealed.data, key, partition))
            return sealed.hash

        return append

    def _encode_domain_reference(
        self, obj: Any, envelope: EnvelopeFields, prev_hash: bytes
    ) -> Sealed:
        """Domain record -> dict -> fastavro (specialised=False, or no compiled encoder)."""
        name = type(obj).__name__
        binding = BINDINGS.get(name)
        if binding is None:
            raise CodecError(f"{name} is not a bound domain type")
        try:
            record = to_record(obj, binding)
            event_time_ns = obj.event_time_ns
        except ENCODE_ERRORS as exc:
            raise CodecError(f"cannot encode {name}: {exc!r}") from exc
        record["envelope"] = {
            "event_id": envelope.event_id,
            "type": name,
            "event_time_ns": event_time_ns,
            "causation_id": envelope.causation_id,
            "correlation_id": envelope.correlation_id,
            "trace_parent": envelope.trace_parent,
            "producer": envelope.producer,
            "seq": envelope.seq,
            "prev_hash": prev_hash,
        }
        return self.seal(name, record, prev_hash)

    # -- decode ------------------------------------------------------------------------------

    def _header(self, data: bytes) -> int:
        """The wire id of well-framed bytes (CodecError otherwise)."""
        if len(data) < HEADER_SIZE + HASH_SIZE:
            raise CodecError(f"record of {len(data)} bytes is too short")
        magic, wire_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CodecError(f"bad magic byte {magic} (not Confluent wire format)")
        return int(wire_id)

    @staticmethod
    def _check_end(subject: str, wire_id: int, data: bytes, end: int) -> None:
        if end < len(data):
            raise CodecError(f"{len(data) - end} trailing bytes after a {subject}")
        if end > len(data):
            raise CodecError(f"corrupt {subject} body (schema id {wire_id}): truncated")

    def decode(self, data: bytes) -> Decoded:
        """Decode wire bytes; raise CodecError for anything but a well-formed record."""
        wire_id = self._header(data)
        reader = self._readers.get(wire_id)
        if reader is None:
            reader = self._resolve_unknown(wire_id)
        if reader.fast is not None:
            try:
                record, end = reader.fast(bytes(data))
            except Exception as exc:  # IndexError, ValueError, struct.error on corrupt input
                raise CodecError(
                    f"corrupt {reader.subject} body (schema id {wire_id}): {exc!r}"
                ) from exc
            self._check_end(reader.subject, wire_id, data, end)
            return Decoded(reader.subject, record, wire_id)
        buffer = io.BytesIO(data)
        buffer.seek(HEADER_SIZE)
        try:
            decoded = schemaless_reader(buffer, reader.writer, reader.reader)
        except Exception as exc:  # fastavro raises many kinds on corrupt input
            raise CodecError(
                f"corrupt {reader.subject} body (schema id {wire_id}): {exc!r}"
            ) from exc
        self._check_end(reader.subject, wire_id, data, buffer.tell())
        if not isinstance(decoded, dict):
            raise CodecError(f"{reader.subject} did not decode to a record")
        return Decoded(reader.subject, decoded, wire_id)

    def _decode_domain_python(self, data: bytes) -> tuple[Envelope, Any]:
        """:attr:`decode_domain` in Python: the twin's and fastavro's path, and the C path's
        fallback for what it does not serve (not bytes, badly framed, other schema ids)."""
        if len(data) < HEADER_SIZE + HASH_SIZE or data[0] != MAGIC:
            self._header(data)  # raises the precise CodecError
        wire_id = _HEADER.unpack_from(data)[1]
        reader = self._domain_readers.get(wire_id)
        if reader is None:
            return self._decode_domain_reference(data)
        if type(data) is not bytes:
            data = bytes(data)
        try:
            envelope, obj, end = reader.decode(data)
        except Exception as exc:  # IndexError, ValueError, struct.error on corrupt input
            raise CodecError(
                f"corrupt {reader.subject} body (schema id {wire_id}): {exc!r}"
            ) from exc
        if end != len(data):
            self._check_end(reader.subject, wire_id, data, end)
        if reader.validate is not None:
            try:
                reader.validate(obj)
            except VALIDATE_ERRORS as exc:
                raise CodecError(f"invalid {reader.name}: {exc}") from exc
        return envelope, obj

    def _decode_domain_reference(self, data: bytes) -> tuple[Envelope, Any]:
        """Bytes -> dict -> domain record (old versions, specialised=False, remote ids)."""
        decoded = self.decode(data)
        name = short_name(decoded.subject)
        binding: Binding | None = BINDINGS.get(name)
        if binding is None:
            raise CodecError(f"{decoded.subject} has no domain type")
        record = decoded.record
        try:
            obj = from_record(record, binding)
            validate = getattr(obj, "validate", None)
            if validate is not None:
                validate()
            envelope = Envelope(**{f: record["envelope"][f] for f in Envelope._fields})
        except VALIDATE_ERRORS as exc:
            raise CodecError(f"invalid {name}: {exc}") from exc
        return envelope, obj

    def _resolve_unknown(self, wire_id: int) -> _Reader:
        """An id this process has not seen: ask :attr:`lookup` (the registry, matching it to
        a local version by its canonical text)."""
        if self.lookup is None:
            raise CodecError(f"unknown schema id {wire_id}")
        version = self.lookup(wire_id)
        if version is None:
            raise CodecError(f"schema id {wire_id} matches no schema in the registry file")
        return self._add_reader(wire_id, version)
