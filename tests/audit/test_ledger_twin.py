"""The vectorised ledger checks against their slow, obvious twin, ``tradex.domain.Ledger``,
on the real exchange's log and on its tampered copy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.audit.tamper import CODEC, Tampered
from tests.projections.exchange import Exchange
from tradex.audit.checks_ledger import (
    _group_starts,
    _running,
    check_ledger,
    dense_rank,
    member,
    sort_order,
)
from tradex.audit.checks_trades import check_ends
from tradex.audit.findings import Findings
from tradex.audit.scan import Gathered, Scan
from tradex.audit.verify import audited_ends
from tradex.domain import Ledger
from tradex.infra.settings import Settings
from tradex.log.batch import RecordBatch
from tradex.log.records import LogRecord
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_EVENTS, SETTLEMENTS
from tradex.schemas.bindings import BINDINGS, from_record
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import CodecError, EnvelopeFields


def _both(settings: Settings) -> tuple[Ledger, Findings]:
    ledger = Ledger()
    with KafkaLog(settings) as log:
        for partition in range(log.partitions(ACCOUNT_EVENTS)):
            for record in log.read(ACCOUNT_EVENTS, partition):
                try:
                    _envelope, event = CODEC.decode_domain(record.value or b"")
                except CodecError:  # an unbalanced entry fails validate(): build it plainly
                    decoded = CODEC.decode(record.value or b"")
                    binding = BINDINGS[decoded.subject.rsplit(".", 1)[-1]]
                    event = from_record(decoded.record, binding)
                ledger.apply(event)
        _starts, ends, _notes = audited_ends(log)
        scan = Scan(CODEC)
        place_ends = {p: e for p, e in ends.items() if p[0] == ACCOUNT_EVENTS}
        for batch in log.read_columns(dict.fromkeys(place_ends, 0), place_ends):
            scan.feed(batch)
    out = Findings()
    check_ledger(scan.finish(), out)
    return ledger, out


@pytest.mark.integration
def test_a_clean_log_is_clean_for_both(audit_exchange: Exchange) -> None:
    ledger, out = _both(audit_exchange.settings)
    assert ledger.violations() == []
    assert out.total() == 0, out.kept[:5]


@pytest.mark.integration
def test_both_see_the_damage_of_the_tampered_copy(tampered: Tampered) -> None:
    ledger, out = _both(tampered.settings)
    texts = ledger.violations()
    assert any("unbalanced" in t for t in texts) and out.counts["journal_balanced"] == 1
    assert any("available USD < 0" in t for t in texts) and out.counts["negative_balance"] > 0
    assert any("not conserved" in t for t in texts) and out.counts["asset_conserved"] == 1
    assert any("clearing does not net" in t for t in texts) and out.counts["clearing_nets"] >= 1


def test_running_sums_restart_per_group() -> None:
    keys = np.array([1, 1, 2, 2, 2, 5], np.int64)
    values = np.array([3, -1, 4, 4, -10, 7], np.int64)
    starts = _group_starts(keys)
    assert starts.tolist() == [0, 2, 5]
    assert _running(values, starts, len(values)).tolist() == [3, 2, 4, 8, -2, 7]
    assert _group_starts(np.zeros(0, np.int64)).tolist() == []


@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 3), st.integers(-(2**40), 2**40)),
                max_size=40), st.booleans())  # fmt: skip
def test_sort_order_sorts_like_lexsort(rows: list[tuple[int, int, int]], wide: bool) -> None:
    a = np.array([r[0] for r in rows], np.int64)
    b = np.array([r[1] for r in rows], np.int64)
    c = np.array([r[2] * (2**21 if wide else 1) for r in rows], np.int64)
    order = sort_order(a, b, c)
    want = np.lexsort((a, b, c))
    for column in (a, b, c):
        assert column[order].tolist() == column[want].tolist()


@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(-(2**62), 2**62 - 1),
                          st.integers(0, 2**40)), max_size=40))  # fmt: skip
def test_sort_order_ranks_keys_too_wide_to_pack(rows: list[tuple[int, int, int]]) -> None:
    a = np.array([r[0] for r in rows], np.int64)
    b = np.array([r[1] for r in rows], np.int64)  # alone nearly 64 bits: ranked
    c = np.array([r[2] for r in rows], np.int64)
    order = sort_order(a, b, c)
    want = np.lexsort((a, b, c))
    for column in (a, b, c):
        assert column[order].tolist() == column[want].tolist()


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30))
def test_dense_rank_keeps_order_and_equality(values: list[int]) -> None:
    v = np.array(values, np.int64)
    rank = dense_rank(v)
    assert sorted(set(rank.tolist())) == list(range(len(set(values))))
    for i in range(len(values)):
        for j in range(len(values)):
            assert (rank[i] < rank[j]) == (values[i] < values[j])


@given(st.lists(st.integers(-50, 50), max_size=40), st.lists(st.integers(-50, 50), max_size=40))
def test_member_is_isin(values: list[int], of: list[int]) -> None:
    v, o = np.array(values, np.int64), np.array(of, np.int64)
    assert member(v, o).tolist() == np.isin(v, o).tolist()


def _scanned(streams: dict[tuple[str, str], list[Any]]) -> Gathered:
    """A scan of records written here: per (topic, producer), the bodies chained in order
    on partition 0."""
    records: list[LogRecord] = []
    for (topic, producer), bodies in streams.items():
        head = ZERO_HASH
        for i, body in enumerate(bodies):
            envelope = EnvelopeFields(f"0190f0c2-0000-7000-8000-{len(records) + 1:012d}",
                                      "cause", "corr", producer, i + 1)  # fmt: skip
            sealed = CODEC.encode_domain(body, envelope, head)
            head = sealed.hash
            records.append(LogRecord(topic, 0, i, 0, b"k", sealed.data))
    scan = Scan(CODEC)
    scan.feed(RecordBatch.from_records(records))
    return scan.finish()


def _audited(account_events: list[Any], settled: list[Any]) -> tuple[list[str], Findings]:
    """The domain Ledger's violations and the vectorised checks' findings (ledger, ends)."""
    ledger = Ledger()
    for event in account_events:
        ledger.apply(event)
    found = _scanned({(ACCOUNT_EVENTS, "accounts/0"): account_events,
                      (SETTLEMENTS, "matcher/0"): settled})  # fmt: skip
    assert found.found == [], "chains and records are sound"
    out = Findings()
    check_ledger(found, out)
    check_ends(found, {}, out)
    return ledger.violations(), out


def test_an_amend_settled_gives_back_its_release_and_pairs_with_its_confirmation() -> None:
    """An order amended, the amend confirmed (tests/projections/amends.py): clean for both
    twins; its AmendSettled left out, both see the hold closed with the release left, and
    the AmendConfirmed with no AmendSettled is named; an AmendSettled no engine confirmed
    too."""
    from tests.projections import amends

    events, engine_side = amends.bodies(), amends.settlements()
    texts, out = _audited(events, engine_side)
    assert texts == [] and out.total() == 0, (texts, out.kept)
    settled = events[amends.AMEND_SETTLED_AT]
    texts, out = _audited([e for e in events if e is not settled], engine_side)
    assert texts == [
        f"o/{amends.ORDER} of account {amends.ACCOUNT} closed with {amends.RELEASED} left",
        f"held ({amends.ACCOUNT}, 'USD') = {amends.RELEASED} but open holds sum to 0",
    ]
    assert {k: v for k, v in out.counts.items() if v} == {
        "hold_closed_with_remainder": 1, "amend_settled": 1,
    }  # fmt: skip
    assert {f.message for f in out.kept} == {
        f"closes the order's hold with {amends.RELEASED} left",
        "the AmendConfirmed has no AmendSettled",
    }
    texts, out = _audited(events, engine_side[1:])  # the first confirmation missing
    assert texts == []
    assert [(f.check, f.message) for f in out.kept] == [
        ("amend_settled", "an AmendSettled with no AmendConfirmed")
    ]
    texts, out = _audited([*events[:-1], settled, events[-1]], engine_side)  # settled twice
    assert [(f.check, f.message) for f in out.kept if f.check == "amend_settled"] == [
        ("amend_settled", "a second AmendSettled of the same amend")
    ]
