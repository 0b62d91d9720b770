"""The vectorised ledger checks against their slow, obvious twin, ``tradex.domain.Ledger``,
on the real exchange's log and on its tampered copy."""

from __future__ import annotations

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
from tradex.audit.findings import Findings
from tradex.audit.scan import Scan
from tradex.audit.verify import audited_ends
from tradex.domain import Ledger
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_EVENTS
from tradex.schemas.bindings import BINDINGS, from_record
from tradex.schemas.codec import CodecError


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
