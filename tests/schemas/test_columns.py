"""The columnar decoder (tradex.schemas.columns, _native/columns.c) against decode_domain.

For every domain type: random records, many with values at the bounds validate() checks,
decode into columns whose values equal what ``Codec.decode_domain`` returns record by
record; a record is flagged exactly when ``decode_domain`` refuses it (the checks of
column_checks.py equal validate()); mangled and random bytes are accepted or refused as
``decode_domain`` accepts or refuses them. Then the statuses, the column types, selecting
rows, and the checks the extension makes of its programs.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import numpy as np
import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.schemas.avro_strategies import PRIMITIVE, strategy
from tests.schemas.domain_strategies import ENVELOPES, outcome
from tests.schemas.samples import samples
from tradex import domain
from tradex.schemas import _native_codec as native
from tradex.schemas.bindings import BINDINGS, from_record, to_record
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields
from tradex.schemas.column_checks import CHECKS
from tradex.schemas.columns import (
    EVERYTHING,
    STATUS_CORRUPT,
    STATUS_DECODED,
    STATUS_FLAGGED,
    STATUS_IGNORED,
    STATUS_SKIPPED,
    STATUS_UNSERVED,
    ColumnReader,
    ColumnSpec,
    Dictionary,
    Enum,
    Strings,
)
from tradex.schemas.wire import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN

CODEC = Codec.offline()
TYPES = [binding.cls for binding in BINDINGS.values()]
READER = ColumnReader(CODEC, dict.fromkeys(TYPES, EVERYTHING))
# the schema ids the reader serves: each type's latest version (older ones are unserved)
SERVED_IDS = frozenset(
    CODEC.registry.latest(CODEC.subject_of(kind.__name__)).schema_id for kind in TYPES
)
ENV = EnvelopeFields("0190f0c2-0000-7000-8000-000000000001", "cause", "corr", "accounts/0", 3)
# Hypothesis flags a draw during which the global ``random`` state changed; a background
# thread left by an earlier test of the suite (a client's retry jitter) can change it
# meanwhile, which the warnings-as-errors setting turned into a flaky failure. These
# strategies never use ``random``.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# values at and around every bound a validate() checks, and the odd ones
_LONGS = [LONG_MIN, -1, 0, 1, 2, 18, 19, 10_000, 10_001, 1_000_000, 1_000_001, LONG_MAX]
_TEXTS = ["", "a", "USD", "BTC", "x" * 128, "x" * 129, "é" * 128, "é" * 129, "€" * 2]
BOUNDARY = {
    **PRIMITIVE,
    "long": st.one_of(st.sampled_from(_LONGS), st.integers(LONG_MIN, LONG_MAX)),
    "int": st.one_of(
        st.sampled_from([v for v in _LONGS if INT_MIN <= v <= INT_MAX]),
        st.integers(INT_MIN, INT_MAX),
    ),
    "string": st.one_of(st.sampled_from(_TEXTS), st.text(max_size=12)),
}
POSTING = st.builds(
    domain.Posting,
    st.sampled_from([1, -1, -2, -3]),
    st.sampled_from(["USD", "BTC", "é"]),
    st.one_of(st.sampled_from([-5, 0, 5, LONG_MAX, LONG_MIN]), st.integers(-100, 100)),
)


def _schema(name: str) -> dict[str, Any]:
    text: str = CODEC.registry.latest(CODEC.subject_of(name)).text
    return json.loads(text)


@st.composite
def boundary_objects(draw: st.DrawFn, name: str) -> Any:
    """A domain record of ``name`` with values at validate()'s bounds; journal entries of
    0..10 postings, balanced half the time."""
    record = draw(strategy(_schema(name), primitives=BOUNDARY))
    if "postings" in record:
        postings = draw(st.lists(POSTING, max_size=10))
        if draw(st.booleans()):
            sums: dict[str, int] = {}
            for posting in postings:
                sums[posting.asset] = sums.get(posting.asset, 0) + posting.delta
            postings += [domain.Posting(-1, asset, -total) for asset, total in sums.items()]
        record["postings"] = [p._asdict() for p in postings]
    return from_record(record, BINDINGS[name])


SAMPLES = {type(obj).__name__: obj for obj in samples()}


def _value_strategy(schema: Any, named: dict[str, Any]) -> Any:
    """Boundary values of one field's type (an enum: its symbols)."""
    if isinstance(schema, str) and schema in BOUNDARY:
        return BOUNDARY[schema]
    if isinstance(schema, str):
        return _value_strategy(named[schema.rpartition(".")[2]], named)
    if schema.get("type") == "enum":
        return st.sampled_from(schema["symbols"])
    return _value_strategy(schema["type"], named)


def _named(schema: Any, found: dict[str, Any]) -> dict[str, Any]:
    """Named types of a schema by short name."""
    if isinstance(schema, dict):
        if schema.get("type") in ("enum", "record", "fixed"):
            found[schema["name"]] = schema
        for child in schema.get("fields", []):
            _named(child["type"], found)
        for key in ("items", "type"):
            if isinstance(schema.get(key), dict | list):
                _named(schema[key], found)
    elif isinstance(schema, list):
        for branch in schema:
            _named(branch, found)
    return found


@st.composite
def near_valid_objects(draw: st.DrawFn, name: str) -> Any:
    """The valid sample of ``name`` with one or two values changed to boundary values (so
    each check of validate() is met alone); a nested row's field counts as one value."""
    schema = _schema(name)
    named = _named(schema, {})
    record = to_record(SAMPLES[name], BINDINGS[name])
    places = []
    for field in schema["fields"][1:-1]:
        if field["name"] not in record:
            continue
        kind = named.get(str(field["type"]).rpartition(".")[2], field["type"])
        if isinstance(kind, dict) and kind.get("type") == "record":
            places += [(field["name"], sub["name"], sub["type"]) for sub in kind["fields"]]
        elif field["name"] == "postings":
            places.append(("postings", "", None))
        else:
            places.append((field["name"], "", field["type"]))
    for _ in range(draw(st.integers(1, 2))):
        top, sub, kind = draw(st.sampled_from(places))
        if top == "postings":
            postings = draw(st.lists(POSTING, max_size=10))
            if draw(st.booleans()):
                sums: dict[str, int] = {}
                for posting in postings:
                    sums[posting.asset] = sums.get(posting.asset, 0) + posting.delta
                postings += [domain.Posting(-1, a, -total) for a, total in sums.items()]
            record["postings"] = [p._asdict() for p in postings]
        elif sub:
            record[top] = {**record[top], sub: draw(_value_strategy(kind, named))}
        else:
            record[top] = draw(_value_strategy(kind, named))
    return from_record(record, BINDINGS[name])


def _batch(datas: list[bytes]) -> tuple[bytes, np.ndarray]:
    offsets = np.zeros(len(datas) + 1, np.int64)
    np.cumsum([len(d) for d in datas], out=offsets[1:])
    return b"".join(datas), offsets


def _columns_of(datas: list[bytes], reader: ColumnReader = READER) -> list[Any]:
    """Per record: ("columns", status, (envelope, record)) or ("status", status)."""
    decoded = reader.decode(*_batch(datas))
    out: list[Any] = [("status", int(s)) for s in decoded.status]
    for columns in decoded.types.values():
        for row, record in zip(columns.rows.tolist(), columns.records(), strict=True):
            out[row] = ("columns", int(decoded.status[row]), record)
    return out


def _agrees(data: bytes, got: Any) -> None:
    """The columnar outcome of ``data`` is decode_domain's (module doc)."""
    ours = outcome(lambda: CODEC.decode_domain(data))
    if got[0] == "status":
        assert got[1] in (STATUS_UNSERVED, STATUS_CORRUPT), got
        if got[1] == STATUS_UNSERVED and int.from_bytes(data[1:5], "big") not in SERVED_IDS:
            return  # another schema (e.g. an older version): the caller's decode_domain's
        assert ours is CodecError, "columns refused what decode_domain accepts"
        return
    _, status, record = got
    raw = CODEC._domain_readers[int.from_bytes(data[1:5], "big")].decode(data)
    assert record == (raw[0], raw[1]), "columns differ from the decoded record"
    if status == STATUS_DECODED:
        assert ours == record, "columns accepted what decode_domain refuses"
    else:
        assert status == STATUS_FLAGGED, status
        assert ours is CodecError, "flagged a record validate() accepts"


@pytest.mark.parametrize("name", sorted(BINDINGS))
@PROPERTY
@given(data=st.data(), envelopes=st.lists(ENVELOPES, min_size=1, max_size=4))
def test_columns_equal_decode_domain_and_flags_equal_validate(
    name: str, data: st.DataObject, envelopes: list[EnvelopeFields]
) -> None:
    objects = [
        data.draw(st.one_of(boundary_objects(name), near_valid_objects(name))) for _ in envelopes
    ]
    datas = []
    for obj, envelope in zip(objects, envelopes, strict=True):
        try:
            datas.append(CODEC.encode_domain(obj, envelope, bytes(range(32))).data)
        except CodecError:  # a balancing posting beyond int64
            assume(False)
    others = [CODEC.encode_domain(o, ENV).data for o in samples()[:3]]  # other types between
    mixed = [d for pair in zip(datas, others * 2, strict=False) for d in pair] + datas[
        len(others) * 2 :
    ]
    for record_data, got in zip(mixed, _columns_of(mixed), strict=True):
        _agrees(record_data, got)


@pytest.mark.parametrize("obj", samples(), ids=lambda o: type(o).__name__)
@settings(max_examples=60, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
       cut=st.integers(-60, 3))  # fmt: skip
def test_mangled_bytes_are_accepted_or_refused_as_decode_domain_does(
    obj: Any, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(CODEC.encode_domain(obj, ENV).data)
    for index, value in edits:
        if index < len(data):
            data[index] = value
    mangled = bytes(data[:cut] if cut < 0 else data + b"\x00" * cut)
    good = CODEC.encode_domain(samples()[0], ENV).data
    batch = [good, mangled, good]
    got = _columns_of(batch)
    for record_data, one in zip(batch, got, strict=True):
        _agrees(record_data, one)


@pytest.mark.parametrize("name", sorted(BINDINGS))
@settings(max_examples=40, deadline=None)
@given(body=st.binary(max_size=300))
def test_random_bodies_are_accepted_or_refused_as_decode_domain_does(
    name: str, body: bytes
) -> None:
    data = b"\x00" + CODEC.schema_id(name).to_bytes(4, "big") + body
    _agrees(data, _columns_of([data])[0])


def test_every_type_with_a_validate_has_its_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, binding in BINDINGS.items():
        has_validate = hasattr(binding.cls, "validate")
        assert (name in CHECKS) == has_validate, name
    assert set(CHECKS) <= set(BINDINGS)
    monkeypatch.delitem(CHECKS, "Trade")  # a validate() not described: not served
    with pytest.raises(ValueError, match="no checks"):
        ColumnReader(CODEC, {domain.Trade: ColumnSpec()})


def test_statuses_skip_ignore_unserved_corrupt() -> None:
    deposit, accepted, fill = samples()[0], samples()[4], samples()[7]
    reader = ColumnReader(CODEC, {type(fill): ColumnSpec()}, ignored=(type(deposit),))
    datas = [
        CODEC.encode_domain(fill, ENV).data,
        CODEC.encode_domain(deposit, ENV).data,  # ignored
        CODEC.encode_domain(accepted, ENV).data,  # not served
        CODEC.encode_domain(fill, ENV).data[:-1],  # truncated
        b"\x00\x00",  # too short
        CODEC.encode_domain(fill, ENV).data,  # skipped
        CODEC.encode_domain(fill._replace(qty=0), ENV).data,  # validate() refuses
    ]
    skip = np.array([False] * 5 + [True, False])
    decoded = reader.decode(*_batch(datas), skip)
    assert decoded.status.tolist() == [
        STATUS_DECODED, STATUS_IGNORED, STATUS_UNSERVED, STATUS_CORRUPT, STATUS_UNSERVED,
        STATUS_SKIPPED, STATUS_FLAGGED,
    ]  # fmt: skip
    fills = decoded.types[type(fill)]
    assert fills.rows.tolist() == [0, 6]
    assert fills["qty"].tolist() == [fill.qty, 0]
    assert set(decoded.types) == {type(fill)}
    assert reader.decode(*_batch([])).status.tolist() == []


def test_an_older_version_of_a_type_is_not_served() -> None:
    """Records written with an older schema version go to decode_domain (fastavro)."""
    subject = CODEC.subject_of("L2Delta")
    versions = CODEC.registry.subjects[subject]
    assert len(versions) > 1
    old = versions[0]
    record = {
        "envelope": {"event_id": "e", "type": "L2Delta", "event_time_ns": 5, "causation_id": "",
                     "correlation_id": "", "trace_parent": "", "producer": "p", "seq": 1,
                     "prev_hash": bytes(32)},
        "instrument_id": 1, "side": "BUY", "price": 5, "qty": 2, "hash": bytes(32),
    }  # fmt: skip
    buffer = io.BytesIO()
    buffer.write(b"\x00" + old.schema_id.to_bytes(4, "big"))
    schemaless_writer(buffer, parse_schema(json.loads(old.text)), record)
    data = buffer.getvalue()
    assert CODEC.decode_domain(data)[1] == domain.L2Delta(1, "BUY", 5, 2, 0, 0)
    reader = ColumnReader(CODEC, {domain.L2Delta: ColumnSpec()})
    assert reader.decode(*_batch([data])).status.tolist() == [STATUS_UNSERVED]


def test_column_kinds_and_arrow() -> None:
    fill = samples()[7]
    reader = ColumnReader(CODEC, {type(fill): ColumnSpec(dictionary=frozenset({"postings.asset"}))})
    datas = [CODEC.encode_domain(fill, ENV).data] * 3
    fills = reader.decode(*_batch(datas)).types[type(fill)]
    assert isinstance(fills["envelope.event_id"], Strings)
    assert fills["envelope.event_id"].to_pylist() == [ENV.event_id] * 3
    assert isinstance(fills["side"], Enum) and fills["side"].to_pylist() == ["BUY"] * 3
    assert fills["side"].code("SELL") == 1 and fills["side"].code("HOLD") == -1
    assert fills["side"].arrow().to_pylist() == ["BUY"] * 3
    assert isinstance(fills["hold_asset"], Strings)  # not asked to be a dictionary here
    assert fills["hold_asset"].arrow().to_pylist() == ["USD"] * 3
    postings = fills.items["postings"]
    assert postings.parent.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert postings.index.tolist() == list(range(5)) * 3
    assets = postings["postings.asset"]
    assert isinstance(assets, Dictionary)
    assert assets.values.to_pylist() == ["USD", "BTC"]  # distinct values, first seen first
    assert assets.arrow().to_pylist() == [p.asset for p in fill.postings] * 3
    assert postings["postings.delta"].tolist() == [p.delta for p in fill.postings] * 3
    assert "command_id" in fills.values and "envelope.producer" not in fills.values
    picked = fills.select(np.array([False, True, True]))
    assert picked.rows.tolist() == [1, 2]
    assert picked.items["postings"].parent.tolist() == [0] * 5 + [1] * 5
    assert picked.records() == fills.records()[1:]
    assert picked["command_id"].to_pylist() == [fill.command_id] * 2


def test_the_decoder_refuses_bad_programs() -> None:
    decoder = native.ColumnDecoder()
    long_col = (native.COL_I64, 0, 8)
    good = ((3, 0, 0, (), None),)
    assert decoder.add((1,), good, (long_col,), ()) == 0
    bad_cases: list[tuple[Any, Any, Any]] = [
        (((99, -1, 0, (), None),), (), ()),  # unknown op
        (((3, 1, 0, (), None),), (long_col,), ()),  # column out of range
        (((3, 0, 0, (), None), (3, 0, 0, (), None)), (long_col,), ()),  # filled twice
        (((4, 0, 0, (), None),), (long_col,), ()),  # a string into an int64 column
        (((3, -1, 0, (), None),), (long_col,), ()),  # a column nobody fills
        (((10, 2, 1, (), ()),), (), ()),  # array levels out of order
        (((3, 0, 0, ((native.CHECK_LENGTH, 0, 1, None),), None),), (long_col,), ()),
        (((7, -1, 2, ((native.CHECK_ENUM, 0, 0, b"\x01"),), None),), (), ()),  # 1 byte, 2 symbols
        (good, (long_col,), ((native.RCHECK_DIFFER, 0, 0, 0, 0),)),  # compares longs
        (((3, 0, 0, ((native.CHECK_RANGE, 5, 1, None),), None),), (long_col,), ()),
    ]
    for wire_id, (ops, columns, record_checks) in enumerate(bad_cases, start=10):
        with pytest.raises(ValueError):
            decoder.add((wire_id,), ops, columns, record_checks)
    with pytest.raises(ValueError, match="twice"):
        decoder.add((1,), good, (long_col,), ())
    with pytest.raises(ValueError, match="offsets"):
        decoder.decode(b"abc", np.array([0, 5], np.int64))
    with pytest.raises(ValueError):
        decoder.decode(b"abc", np.array([0, 1], np.int64), np.zeros(3, np.uint8))


def test_a_decoder_is_used_by_one_thread_at_a_time() -> None:
    """decode releases the GIL; a second thread's call meanwhile is refused, not raced."""
    reader = ColumnReader(CODEC, {type(samples()[7]): ColumnSpec()})
    data = CODEC.encode_domain(samples()[7], ENV).data
    values, offsets = _batch([data] * 200_000)
    refused: list[BaseException] = []
    decoded: list[int] = []

    def decode_some() -> None:
        for _ in range(6):
            try:
                found = reader.decode(values, offsets)
            except RuntimeError as exc:
                refused.append(exc)
                continue
            decoded.append(int(np.count_nonzero(found.status == STATUS_DECODED)))

    threads = [threading.Thread(target=decode_some) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert refused and all("one thread at a time" in str(exc) for exc in refused)
    assert decoded and set(decoded) == {200_000}, "a decode that ran was not disturbed"
