"""The ``postgres`` read model on the real PostgreSQL, over a real exchange's log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from tests.projections.contract import CODEC, PostgresContract, decoded, ends, run_version
from tradex.domain import (
    AccountBook,
    HoldReleased,
    OrderAccepted,
    OrderRejected,
    ReferenceData,
    engine,
)
from tradex.infra import postgres
from tradex.infra.settings import Settings
from tradex.projections.catalog import projector_class
from tradex.projections.pg_read import PostgresReader
from tradex.projections.projector import namespace

pytestmark = pytest.mark.integration


async def _fetch(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    conn = await postgres.connect(settings)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def fetch(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    return asyncio.run(_fetch(settings, sql))


class TestPostgresContract(PostgresContract):
    name: ClassVar[str] = "postgres"


def test_balances_equal_the_domain_fold_of_account_events(pg: Settings) -> None:
    run_version(pg, "postgres", 1, live=True)
    book = AccountBook(ReferenceData())
    for event in decoded(pg, ("account-events",)):
        book.apply(event.body)
    expected = {
        (account.account_id, asset): pair
        for account in book
        for asset, pair in account.balances().items()
    }
    namespace = f"{pg.topic_prefix.replace('-', '_')}postgres"
    rows = fetch(pg, f"SELECT account_id, asset, available, held FROM {namespace}.balances")
    found = {(a, asset): (available, held) for a, asset, available, held in rows if a > 0}
    assert found == expected
    totals = fetch(
        pg, f"SELECT asset, sum(available + held) FROM {namespace}.balances GROUP BY asset"
    )
    assert {asset: int(total) for asset, total in totals} == {"BTC": 0, "USD": 0}, "double entry"
    assert CODEC  # the shared codec decoded the log above


def _fold_until(
    events: list[Any], keep: Callable[[Any], bool]
) -> dict[tuple[int, str], tuple[int, int]]:
    book = AccountBook(ReferenceData())
    for event in events:
        if keep(event):
            book.apply(event.body)
    return {
        (account.account_id, asset): pair
        for account in book
        for asset, pair in account.balances().items()
    }


def test_balances_as_of_a_position_and_a_time_equal_the_fold_up_to_there(pg: Settings) -> None:
    run_version(pg, "postgres", 1, live=True)
    events = decoded(pg, ("account-events",))
    reader = PostgresReader(pg)
    accounts = sorted({e.body.account_id for e in events if e.body.account_id > 0})[:6]

    async def check() -> None:
        async with reader.connect() as conn:
            for partition in (0, 1):
                offsets = [e.offset for e in events if e.partition == partition]
                for cut in (offsets[len(offsets) // 3], offsets[-1] + 1):
                    expected = _fold_until(
                        events, lambda e, p=partition, c=cut: e.partition == p and e.offset < c
                    )
                    for account in accounts:
                        found = await reader.balances_as_of(
                            conn, account, position=(partition, cut)
                        )
                        want = {a: v for (acc, a), v in expected.items() if acc == account}
                        assert {
                            b.asset: (b.available, b.held) for b in found if b != (b.asset, 0, 0)
                        } == {a: v for a, v in want.items() if v != (0, 0)}
            times = sorted(e.envelope.event_time_ns for e in events)
            moment = times[len(times) // 2]
            expected = _fold_until(events, lambda e: e.envelope.event_time_ns <= moment)
            for account in accounts:
                found = await reader.balances_as_of(conn, account, time_ns=moment)
                want = {a: v for (acc, a), v in expected.items() if acc == account and v != (0, 0)}
                assert {
                    b.asset: (b.available, b.held) for b in found if (b.available, b.held) != (0, 0)
                } == want
                now = await reader.balances(conn, account)
                latest = await reader.balances_as_of(conn, account, time_ns=times[-1])
                assert [b for b in latest if (b.available, b.held) != (0, 0)] == [
                    b for b in now if (b.available, b.held) != (0, 0)
                ]

    asyncio.run(check())


def test_orders_join_both_topics_and_match_the_log(pg: Settings) -> None:
    run_version(pg, "postgres", 1, batch_records=41, live=True)
    account = [e.body for e in decoded(pg, ("account-events",))]
    engine_events = [e.body for e in decoded(pg, ("engine-events",))]
    accepted = {e.order_id: e for e in account if isinstance(e, OrderAccepted)}
    rejected = {e.order_id: e for e in account if isinstance(e, OrderRejected)}
    ended = {e.order_id: str(e.end_reason) for e in account if isinstance(e, HoldReleased)}
    filled: dict[int, int] = {}
    for e in engine_events:
        if isinstance(e, engine.Trade):
            filled[e.maker_order_id] = filled.get(e.maker_order_id, 0) + e.qty
            filled[e.taker_order_id] = filled.get(e.taker_order_id, 0) + e.qty
    rows = {r["order_id"]: r for r in fetch_records(pg, "SELECT * FROM {ns}.orders")}
    assert set(rows) == set(accepted) | set(rejected)
    assert rejected and accepted and ended
    for order_id, row in rows.items():
        source = accepted.get(order_id) or rejected[order_id]
        assert row["command_id"] == source.command_id
        assert row["filled_qty"] == filled.get(order_id, 0)
        assert row["settled_qty"] == row["filled_qty"], "every fill settled"
        if order_id in rejected:
            assert row["status"] == "REJECTED"
        elif order_id in ended:
            assert row["status"] == ended[order_id]
        else:
            assert row["status"] in ("NEW", "PARTIALLY_FILLED")
    reader = PostgresReader(pg)

    async def check() -> None:
        async with reader.connect() as conn:
            some = next(iter(accepted.values()))
            by_command = await reader.order_by_command(conn, some.account_id, some.command_id)
            assert by_command is not None and by_command["order_id"] == some.order_id
            open_orders = await reader.open_orders(conn, some.account_id)
            assert all(r["status"] in ("NEW", "PARTIALLY_FILLED") for r in open_orders)
            fills = await reader.fills(conn, some.account_id, limit=1_000)
            assert [f["event_time_ns"] for f in fills] == sorted(f["event_time_ns"] for f in fills)

    asyncio.run(check())


def fetch_records(settings: Settings, sql: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await postgres.connect(settings)
        try:
            return list(await conn.fetch(sql.format(ns=namespace(settings, "postgres"))))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_users_carry_their_roles_as_last_changed_on_the_log(pg: Settings) -> None:
    from tests.market import T0
    from tests.projections.exchange import AUDITOR, OPERATOR

    run_version(pg, "postgres", 1, live=True)
    reference = ReferenceData()
    for event in decoded(pg, ("reference-events",)):
        reference.apply(event.body)
    rows = {r["user_id"]: r for r in fetch_records(pg, "SELECT * FROM {ns}.users")}
    assert {u: (r["name"], r["roles"]) for u, r in rows.items()} == {
        u.user_id: (u.name, u.roles) for u in reference.users.values()
    }
    auditor = rows[AUDITOR]
    assert auditor["roles"] == "auditor"  # changed twice, in one batch or two
    assert (auditor["registered_time_ns"], auditor["roles_changed_time_ns"]) == (T0, T0 + 6)
    assert auditor["roles_changed_by"] == OPERATOR
    operator = rows[OPERATOR]
    assert (operator["roles"], operator["roles_changed_time_ns"]) == ("admin", 0)  # never
    # a batch that changes roles without the registration keeps the registration's time:
    # version 2 stops right after the auditor's registration, then goes on to the end
    (registered,) = [e for e in decoded(pg, ("reference-events",)) if e.body.command_id == "u-aud"]
    split = ends(pg, projector_class("postgres"))
    split[(registered.topic, registered.partition)] = registered.offset + 1
    run_version(pg, "postgres", 2, until=split)
    run_version(pg, "postgres", 2)
    schema = f"{namespace(pg, 'postgres')}_v2"
    again = {r["user_id"]: r for r in fetch_records(pg, f"SELECT * FROM {schema}.users")}
    assert {u: tuple(r.values()) for u, r in again.items()} == {
        u: tuple(r.values()) for u, r in rows.items()
    }


def test_decimal_views_use_the_asset_scales_and_instrument_sizes(pg: Settings) -> None:
    from decimal import Decimal

    from tests.market import LOT, TICK

    run_version(pg, "postgres", 1, live=True)
    raw = {
        (r["account_id"], r["asset"]): r
        for r in fetch_records(pg, "SELECT * FROM {ns}.balances WHERE account_id > 0")
    }
    shown = fetch_records(pg, "SELECT * FROM {ns}.balances_decimal WHERE account_id > 0")
    assert len(shown) == len(raw) > 0
    scales = {"BTC": 8, "USD": 2}
    for row in shown:
        base = raw[(row["account_id"], row["asset"])]
        assert row["available"] == Decimal(base["available"]).scaleb(-scales[row["asset"]])
        assert row["held"] == Decimal(base["held"]).scaleb(-scales[row["asset"]])
    orders = {r["order_id"]: r for r in fetch_records(pg, "SELECT * FROM {ns}.orders")}
    decimal_orders = fetch_records(pg, "SELECT * FROM {ns}.orders_decimal WHERE filled_qty > 0")
    assert decimal_orders
    for row in decimal_orders:
        order = orders[row["order_id"]]
        # price p ticks: p * TICK cents per lot of LOT satoshi -> USD per BTC
        per_btc = Decimal(TICK) / 100 * Decimal(10**8) / LOT
        assert row["price"] == order["price"] * per_btc
        assert row["qty"] == Decimal(order["qty"] * LOT).scaleb(-8)
        assert row["filled_qty"] == Decimal(order["filled_qty"] * LOT).scaleb(-8)
        average = Decimal(order["filled_notional"]) * per_btc / order["filled_qty"]
        assert abs(row["avg_price"] - average) < Decimal("1e-12")  # PostgreSQL rounds at 1e-18
