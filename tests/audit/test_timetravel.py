"""Time travel from the log alone, against the PostgreSQL read model's as-of answers."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from tests.audit.tamper import CODEC
from tests.market import BTC_USD
from tests.projections.contract import run_version
from tests.projections.exchange import Exchange
from tradex.audit import cli, timetravel
from tradex.audit.timetravel import AsOf, parse_at
from tradex.infra.partitioner import partition_for
from tradex.log.keys import instrument_key
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_EVENTS, ORDER_REQUESTS
from tradex.log.typed import read_typed_topic
from tradex.projections.pg_read import PostgresReader

pytestmark = pytest.mark.integration

IDS_TRIED_MAX = 1_000  # ids tried for one on (and one off) the instrument's partition


def test_parse_at_takes_times_and_positions() -> None:
    assert parse_at("offset:12") == AsOf(offset=12)
    assert parse_at("@0") == AsOf(offset=0)
    assert parse_at("1700000000000000000") == AsOf(time_ns=1_700_000_000_000_000_000)
    assert parse_at("2023-11-14T22:13:20Z") == AsOf(time_ns=1_700_000_000 * 10**9)
    assert parse_at("2023-11-14T22:13:20.5+00:00") == AsOf(time_ns=1_700_000_000_500_000_000)
    for bad in ("12", "offset:-1", "yesterday", ""):
        with pytest.raises(ValueError):
            parse_at(bad)


def test_decimal_uses_the_asset_scale() -> None:
    assert timetravel.decimal(123_456, 2) == "1234.56"
    assert timetravel.decimal(-5, 8) == "-0.00000005"
    assert timetravel.decimal(7, None) == "7"


def test_balances_and_statements_equal_the_read_model_as_of(
    audit_exchange: Exchange, pg_database: str
) -> None:
    pg = dataclasses.replace(audit_exchange.settings, postgres_db=pg_database)
    run_version(pg, "postgres", 1, live=True)
    reader = PostgresReader(pg)
    with KafkaLog(pg) as log:
        events = list(read_typed_topic(log, CODEC, ACCOUNT_EVENTS))
        times = sorted(e.checked()[0].event_time_ns for e in events)
        accounts = sorted({e.checked()[1].account_id for e in events} - {0})[:5]
        cuts = [times[len(times) // 3], times[2 * len(times) // 3], times[-1]]
        ours = {}
        for account in accounts:
            partition = next(e.partition for e in events if e.checked()[1].account_id == account)
            offsets = [e.offset for e in events if e.partition == partition]
            for cut in (offsets[len(offsets) // 2], offsets[-1] + 1):
                ours[(account, "pos", partition, cut)] = timetravel.balances(
                    log, CODEC, account, AsOf(offset=cut)
                )
            for moment in cuts:
                ours[(account, "time", moment)] = timetravel.balances(
                    log, CODEC, account, AsOf(time_ns=moment)
                )
            ours[(account, "statement")] = timetravel.statement(
                log, CODEC, account, cuts[0], cuts[2] + 1
            )

    async def theirs() -> None:
        async with reader.connect() as conn:
            for key, found in ours.items():
                account = key[0]
                if key[1] == "statement":
                    rows, more = await reader.statement(conn, account, cuts[0], cuts[2] + 1)
                    assert not more
                    assert [(r["event_partition"], r["event_offset"], r["asset"], r["delta"],
                             r["balance_after"], r["event_time_ns"]) for r in rows] == [
                        (s.partition, s.offset, s.asset, s.delta, s.balance_after,
                         s.event_time_ns) for s in found
                    ]  # fmt: skip
                    assert all(s.event_id for s in found)
                    continue
                if key[1] == "pos":
                    want = await reader.balances_as_of(conn, account, position=(key[2], key[3]))
                else:
                    want = await reader.balances_as_of(conn, account, time_ns=key[2])
                assert [tuple(b) for b in found if b[1:] != (0, 0)] == [
                    tuple(b) for b in want if (b.available, b.held) != (0, 0)
                ], key

    asyncio.run(theirs())
    assert any(found for key, found in ours.items() if key[1] == "statement")


def test_the_book_at_a_position_is_the_engine_rerun(
    audit_exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = audit_exchange.settings.topic_prefix
    with KafkaLog(audit_exchange.settings) as log:
        whole = timetravel.book(log, CODEC, 1)
        early = timetravel.book(log, CODEC, 1, position=whole.position // 2)
        empty = timetravel.book(log, CODEC, 1, position=0)
    assert whole.orders, "orders rest at the end of the session"
    assert early.position == whole.position // 2
    assert empty.orders == [] and empty.bids == [] and empty.asks == []
    assert early.state_hash != whole.state_hash
    assert sum(q for _p, q, _n in whole.bids + whole.asks) == sum(o.remaining for o in whole.orders)
    if whole.bids and whole.asks:
        assert whole.bids[0][0] < whole.asks[0][0], "a book at rest does not cross"
    status = cli.main(["book", "--topic-prefix", prefix, "--instrument", "1", "--at",
                       f"offset:{early.position}", "--format", "json"])  # fmt: skip
    assert status == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state_hash"] == early.state_hash
    assert len(shown["orders"]) == len(early.orders)
    # by its symbol too (what `tradex demo` shows), the same book
    assert cli.main(["book", "--topic-prefix", prefix, "--instrument", "BTC-USD", "--at",
                     f"offset:{early.position}", "--format", "json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out) == shown
    with pytest.raises(SystemExit) as exc:
        cli.main(["book", "--topic-prefix", prefix, "--instrument", "DOGE-USD"])
    assert exc.value.code == 2
    said = capsys.readouterr().err
    assert said.startswith("tradex audit book: instrument 'DOGE-USD' is not an instrument")
    assert said.rstrip().endswith(f"its instruments: {BTC_USD} BTC-USD"), said
    for bad in ("0", "-3", " "):
        with pytest.raises(SystemExit) as exc:
            cli.main(["book", "--topic-prefix", prefix, "--instrument", bad])
        assert exc.value.code == 2


def test_an_id_that_is_no_instrument_is_refused_not_shown_as_an_empty_book(
    audit_exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tradex audit book --instrument 1`` after ``tradex demo`` (whose instruments are 101
    and up) printed "0 resting orders; state " and exit 0, like an empty book: an id with
    no InstrumentCreated is an error naming the log's instruments, whether its partition
    holds another instrument's inputs or none; a real instrument before its first
    InstrumentRules has no book, and says so."""
    prefix = audit_exchange.settings.topic_prefix
    with KafkaLog(audit_exchange.settings) as log:
        partitions = log.partitions(ORDER_REQUESTS)
        home = partition_for(instrument_key(BTC_USD), partitions)
        ids = range(BTC_USD + 1, BTC_USD + 1 + IDS_TRIED_MAX)
        beside = next(i for i in ids if partition_for(instrument_key(i), partitions) == home)
        elsewhere = [next(i for i in ids if partition_for(instrument_key(i), partitions) != home)
                     for _ in range(partitions > 1)]  # fmt: skip
        for unknown in (beside, *elsewhere):
            with pytest.raises(ValueError) as refused:  # UnknownInstrument
                timetravel.book(log, CODEC, unknown)
            assert isinstance(refused.value, timetravel.UnknownInstrument)
            assert str(refused.value).startswith(f"instrument {unknown} is not an instrument")
            assert str(refused.value).endswith(f"its instruments: {BTC_USD} BTC-USD")
        before = timetravel.book(log, CODEC, BTC_USD, position=0)
        after = timetravel.book(log, CODEC, BTC_USD)
    assert (before.orders, before.state_hash) == ([], "")
    assert after.state_hash and after.orders, "the real instrument's book is there"
    with pytest.raises(SystemExit) as exc:
        cli.main(["book", "--topic-prefix", prefix, "--instrument", str(beside)])
    assert exc.value.code == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err.startswith(f"tradex audit book: instrument {beside} is not an instrument")
    assert f"its instruments: {BTC_USD} BTC-USD" in said.err
    assert cli.main(["book", "--topic-prefix", prefix, "--instrument", str(BTC_USD), "--at",
                     "offset:0"]) == 0  # fmt: skip
    assert capsys.readouterr().out == (
        f"instrument {BTC_USD}: order-requests[{home}] below offset 0: no book (no "
        "InstrumentRules of the instrument below that offset)\n"
    )


def test_the_commands_write_csv_and_json_in_decimals(
    audit_exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = audit_exchange.settings.topic_prefix
    assert cli.main(["balances", "--topic-prefix", prefix, "--account", "1", "--at",
                     "offset:1000000", "--format", "csv"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "asset,available,held,total"
    usd = next(line for line in lines if line.startswith("USD,"))
    assert len(usd.split(",")[1].split(".")[1]) == 2, "USD has scale 2"
    assert cli.main(["statement", "--topic-prefix", prefix, "--account", "1", "--from",
                     "2023-11-14T00:00:00Z", "--to", "2030-01-01T00:00:00Z",
                     "--format", "json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert rows and {"event_id", "asset", "delta", "balance_after"} <= set(rows[0])
    with pytest.raises(SystemExit) as exc:
        cli.main(["balances", "--account", "1", "--at", "soon"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["statement", "--account", "1", "--from", "2024-01-02", "--to", "2024-01-01"])
    assert exc.value.code == 2


def test_users_and_their_roles_at_a_time_and_who_changed_them(
    audit_exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.market import T0, USER_ID
    from tests.projections.exchange import AUDITOR, OPERATOR
    from tradex.audit import roles

    with KafkaLog(audit_exchange.settings) as log:
        history = roles.role_history(log, CODEC)
    mine = [e for e in history if e.user_id in (USER_ID, OPERATOR, AUDITOR)]
    assert [(e.user_id, e.outcome, e.roles, e.actor) for e in mine] == [
        (USER_ID, "registered", "", 0),
        (OPERATOR, "registered", "admin", 0),
        (AUDITOR, "registered", "trader", 0),
        (AUDITOR, "changed", "auditor,trader", OPERATOR),
        (AUDITOR, "changed", "auditor", OPERATOR),
        (USER_ID, "changed", "trader", 0),
        (OPERATOR, "refused", "", 0),
    ]
    assert mine[-1].detail.startswith("MAKER_CHECKER: ")
    at = {u.user_id: u for u in roles.users_at(history, T0 + 5)}
    assert at[AUDITOR] == roles.UserRoles(AUDITOR, "aldo", "auditor,trader", T0, T0 + 5, OPERATOR)
    assert at[USER_ID].roles == ""  # changed later, at T0 + 7
    assert at[OPERATOR].roles == "admin"
    now = {u.user_id: u for u in roles.users_at(history)}
    assert (now[AUDITOR].roles, now[USER_ID].roles, now[OPERATOR].roles) == (
        "auditor", "trader", "admin",  # the self change was refused
    )  # fmt: skip
    assert roles.users_at(history, T0 - 1) == []
    prefix = audit_exchange.settings.topic_prefix
    assert cli.main(["users", "--topic-prefix", prefix, "--at", str(T0 + 5), "--format",
                     "json"]) == 0  # fmt: skip
    shown = {r["user_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert shown[AUDITOR]["roles"] == "auditor,trader" and shown[AUDITOR]["changed_by"] == OPERATOR
    assert cli.main(["users", "--topic-prefix", prefix, "--history", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("time_ns,partition,offset,event_id,user_id")
    assert any(",refused," in line and "MAKER_CHECKER" in line for line in lines)
    with pytest.raises(SystemExit) as exc:
        cli.main(["users", "--at", "soon"])
    assert exc.value.code == 2
