"""The jitted engine and the reference book agree on every record and every state hash."""

from __future__ import annotations

import numpy as np

from tests.matching.random_commands import random_commands
from tradex.matching.book import Book, OutputBuffers
from tradex.matching.constants import (
    EV_AMENDED,
    EV_CANCELLED,
    EV_DECREMENTED,
    EV_EXPIRED,
    EV_REJECTED,
    OP_AMEND,
    OP_AMEND_KEEP,
    OP_CANCEL,
    OP_MARKET,
    REASON_MARKET_REMAINDER,
)
from tradex.matching.reference import ReferenceBook

COMMANDS_TOTAL = 100_000
COMPARE_EVERY = 100
VALIDATE_EVERY = 2_000
ORDERS_MAX = 4096
PRICE_LEVELS_MAX = 4096


def test_engine_matches_reference_on_100k_random_commands() -> None:
    cmds = random_commands(COMMANDS_TOTAL, seed=20240607)
    engine = Book(orders_max=ORDERS_MAX, price_levels_max=PRICE_LEVELS_MAX)
    out = OutputBuffers(ORDERS_MAX)
    ref = ReferenceBook(orders_max=ORDERS_MAX, price_levels_max=PRICE_LEVELS_MAX)
    kinds_seen: set[int] = set()
    reasons_seen: set[int] = set()
    trades_total = 0
    limited_market_expiries = 0  # markets with a hard limit that left quantity unfilled
    lookups_found = 0
    keep_amends = 0  # OP_AMEND_KEEP amends applied
    for start in range(0, COMMANDS_TOTAL, COMPARE_EVERY):
        chunk = cmds[start : start + COMPARE_EVERY]
        got = engine.process_all(chunk, out)
        want = ref.process(chunk)
        assert got.n_commands == want.n_commands == len(chunk)
        for name in ("trades", "events", "l2"):
            a, b = getattr(got, name), getattr(want, name)
            if not np.array_equal(a, b):
                n = min(len(a), len(b))
                first = next((i for i in range(n) if a[i] != b[i]), n)
                raise AssertionError(
                    f"{name} differ in commands {start}..{start + len(chunk)} at record {first}:"
                    f"\n engine    {a[first : first + 3]}\n reference {b[first : first + 3]}"
                )
        assert engine.state_hash() == ref.state_hash(), (
            f"state hash differs after {start + len(chunk)}"
        )
        # Book.order (O(1), the id table) against the reference's dict, for every id the
        # chunk names in a cancel or amend (live, gone or never existing) and every new one.
        for order_id in chunk["order_id"].tolist():
            found = engine.order(order_id)
            assert found == ref.order(order_id), f"order({order_id}) after {start + len(chunk)}"
            lookups_found += found is not None
        ev = got.events
        limited = (chunk["op"] == OP_MARKET) & (chunk["price"] > 0)
        expired = ev[(ev["kind"] == EV_EXPIRED) & (ev["reason"] == REASON_MARKET_REMAINDER)]
        limited_market_expiries += int(np.count_nonzero(limited[expired["cmd_index"]]))
        kept = chunk["op"] == OP_AMEND_KEEP
        amended = ev[ev["kind"] == EV_AMENDED]
        keep_amends += int(np.count_nonzero(kept[amended["cmd_index"]]))
        kinds_seen.update(got.events["kind"].tolist())
        reasons_seen.update(got.events["reason"].tolist())
        trades_total += len(got.trades)
        if (start + COMPARE_EVERY) % VALIDATE_EVERY == 0:
            engine.validate_internal_state()
            ref.validate_internal_state()
    # The stream really exercised the rules (a test that cannot fail proves nothing).
    assert trades_total > 20_000
    assert {EV_CANCELLED, EV_DECREMENTED, EV_EXPIRED, EV_REJECTED} <= kinds_seen
    assert len(kinds_seen) == 9
    assert len(reasons_seen) >= 20, sorted(reasons_seen)
    assert limited_market_expiries > 200, limited_market_expiries
    assert lookups_found > 5_000, lookups_found
    assert keep_amends > 1_000, keep_amends
    assert np.count_nonzero(np.isin(cmds["op"], (OP_CANCEL, OP_AMEND, OP_AMEND_KEEP))) > 30_000
