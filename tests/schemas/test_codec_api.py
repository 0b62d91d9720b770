"""The C codec's API for extensions (``_native/codec_api.h``: ``encode_cells``,
``scan_cells``), reached from Python through ``_native_codec._cells_encode`` and
``_cells_scan``: values as cells encode to the bytes ``encode_domain`` writes, for every
domain type; the scan reads back what was written, and leaves to the Python path what it
does not read (nested rows, non-ASCII text) and anything malformed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schemas.domain_strategies import ENVELOPES, domain_records
from tradex.domain.orders import CancelOrderRequest
from tradex.schemas import _native_codec as native
from tradex.schemas.bindings import BINDINGS, from_record
from tradex.schemas.codec import Codec, EnvelopeFields
from tradex.schemas.compile_native import enum_symbols

CODEC = Codec.offline()
ENV = EnvelopeFields("e", "c", "r", "p", 0)
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _cells(name: str) -> tuple[Any, Any]:
    found = CODEC.native_decoder(name)
    assert found is not None
    return CODEC.native_encoder(BINDINGS[name].cls), found[1]


def _as_cell(value: Any) -> Any:
    """What a scanned cell holds for an encoded value (raw ints and bytes)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return value.encode()
    return value


@pytest.mark.parametrize("name", sorted(BINDINGS))
@PROPERTY
@given(data=st.data(), envelope=ENVELOPES, prev_hash=st.binary(min_size=32, max_size=32))
def test_cells_encode_like_encode_domain_and_scan_reads_them_back(
    name: str, data: st.DataObject, envelope: EnvelopeFields, prev_hash: bytes
) -> None:
    obj = from_record(data.draw(domain_records(name)), BINDINGS[name])
    encoder, decoder = _cells(name)
    want = CODEC.encode_domain(obj, envelope, prev_hash).data  # schema-valid values
    assert native._cells_encode(encoder, tuple(obj), envelope, prev_hash) == want
    scanned = native._cells_scan(decoder, want)
    text = [v for v in (*obj, *envelope) if isinstance(v, str)]
    nested = any(isinstance(v, (tuple, list)) for v in obj)
    if nested or not all(t.isascii() for t in text):
        assert scanned is None  # left to the Python path
        return
    assert scanned is not None
    env, row = scanned
    decoded_env, decoded = _raw_decode(want, name)
    assert env == tuple(_as_cell(v) for v in decoded_env)
    assert row == tuple(_as_cell(v) for v in decoded)


def _raw_decode(data: bytes, name: str) -> tuple[Any, Any]:
    """(envelope, record) with enum fields as their indexes (what a scan reads)."""
    wire_id = CODEC.schema_id(name)
    envelope, obj, _end = CODEC._domain_readers[wire_id].decode(data)
    symbols = _enum_indexes(name)
    return envelope, tuple(
        symbols[field][value] if field in symbols else value
        for field, value in zip(BINDINGS[name].fields, obj, strict=True)
    )


def _enum_indexes(name: str) -> dict[str, dict[str, int]]:
    text = CODEC.registry.latest(CODEC.subject_of(name)).text
    return {
        field: {symbol: i for i, symbol in enumerate(symbols)}
        for field, symbols in enum_symbols(text, BINDINGS[name]).items()
    }


def test_scan_leaves_malformed_records_to_the_python_path() -> None:
    encoder, decoder = _cells("CancelOrderRequest")
    cancel = (1, -2, 3, 4)
    data = native._cells_encode(encoder, cancel, EnvelopeFields("e", "c", "r", "p", 0), bytes(32))
    assert data == CODEC.encode_domain(CancelOrderRequest(*cancel), ENV).data
    scanned = native._cells_scan(decoder, data)
    assert scanned is not None
    assert scanned[1] == cancel
    assert scanned[0][:2] == (b"e", b"CancelOrderRequest")
    for bad in (data[:-1], data + b"\x00", data[:5], data[:20]):
        assert native._cells_scan(decoder, bad) is None
    text = CODEC.encode_domain(CancelOrderRequest(*cancel), ENV._replace(causation_id="é")).data
    assert native._cells_scan(decoder, text) is None  # non-ASCII: the Python path decodes it
    overlong = data[:5] + b"\x82\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00" + data[7:]
    assert native._cells_scan(decoder, overlong) is None  # an 11-byte varint
    with pytest.raises(OverflowError):  # beyond int64: no cell, the object is refused
        native._cells_encode(encoder, (1 << 64, 2, 3, 4), ENV, bytes(32))
