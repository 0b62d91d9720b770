"""The ClickHouse interface against the stack's backend (chdb unless a server URL is set)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tradex.infra import clickhouse as clickhouse_module
from tradex.infra.clickhouse import ChdbClickHouse, ClickHouse
from tradex.infra.settings import Settings

pytestmark = pytest.mark.integration


def test_merge_tree_create_insert_select(clickhouse: ClickHouse, ch_database: str) -> None:
    table = f"{ch_database}.trades"
    clickhouse.command(
        f"CREATE TABLE {table} (trade_id Int64, price_ticks Int64, qty_lots Int64, "
        "ts_ns Int64) ENGINE = MergeTree ORDER BY trade_id"
    )
    clickhouse.insert_rows(
        table,
        ["trade_id", "price_ticks", "qty_lots", "ts_ns"],
        [(2, 101, 3, 2_000_000_000), (1, 100, 5, 1_000_000_000)],
    )
    clickhouse.insert_arrow(
        table,
        pa.table(
            {
                "trade_id": pa.array([3], pa.int64()),
                "price_ticks": pa.array([2**62], pa.int64()),
                "qty_lots": pa.array([1], pa.int64()),
                "ts_ns": pa.array([3_000_000_000], pa.int64()),
            }
        ),
    )
    rows = clickhouse.query_rows(
        f"SELECT trade_id, price_ticks, qty_lots FROM {table} ORDER BY trade_id"
    )
    assert rows == [(1, 100, 5), (2, 101, 3), (3, 2**62, 1)]
    assert clickhouse.query_rows(f"SELECT sum(qty_lots) FROM {table}") == [(9,)]


def test_replacing_merge_tree_deduplicates_with_final(
    clickhouse: ClickHouse, ch_database: str
) -> None:
    table = f"{ch_database}.balances"
    clickhouse.command(
        f"CREATE TABLE {table} (account Int64, amount Int64, version UInt64) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY account"
    )
    columns = ["account", "amount", "version"]
    clickhouse.insert_rows(table, columns, [(1, 10, 1), (2, 20, 1)])
    clickhouse.insert_rows(table, columns, [(1, 15, 2), (2, 99, 0)])  # a replay: same keys
    assert clickhouse.query_rows(f"SELECT count() FROM {table}") == [(4,)]
    final = clickhouse.query_rows(f"SELECT account, amount FROM {table} FINAL ORDER BY account")
    assert final == [(1, 15), (2, 20)]


def test_insert_arrow_matches_columns_by_name(clickhouse: ClickHouse, ch_database: str) -> None:
    table = f"{ch_database}.t"
    clickhouse.command(f"CREATE TABLE {table} (a Int64, b String) ENGINE = MergeTree ORDER BY a")
    clickhouse.insert_arrow(table, pa.table({"b": ["x"], "a": pa.array([7], pa.int64())}))
    assert clickhouse.query_rows(f"SELECT a, b FROM {table}") == [(7, "x")]


def test_bad_input_is_refused_and_changes_nothing(clickhouse: ClickHouse, ch_database: str) -> None:
    table = f"{ch_database}.t"
    clickhouse.command(f"CREATE TABLE {table} (a Int64) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(ValueError, match="table name"):
        clickhouse.insert_rows(f"{table}; DROP TABLE {table}", ["a"], [(1,)])
    with pytest.raises(ValueError, match="1 columns"):
        clickhouse.insert_rows(table, ["a"], [(1, 2)])
    with pytest.raises(clickhouse_module.ClickHouseError, match="Syntax error"):
        clickhouse.command("SELEC 1")
    assert clickhouse.query_rows(f"SELECT count() FROM {table}") == [(0,)]


def test_chdb_refuses_a_second_folder_while_a_writer_pins_one(
    stack: Settings, tmp_path: Path
) -> None:
    if stack.clickhouse_url:
        pytest.fail("this test is about the embedded backend; unset TRADEX_CLICKHOUSE_URL")
    other = dataclasses.replace(stack, clickhouse_path=tmp_path / "other")
    writer = ChdbClickHouse(stack.clickhouse_path)
    writer.pin()
    try:
        with pytest.raises(RuntimeError, match="already open"):
            clickhouse_module.connect(other)
        assert writer.query_rows("SELECT 1") == [(1,)]
    finally:
        writer.unpin()
    # unpinned, a folder gives way to another one, and comes back when asked for
    assert clickhouse_module.connect(other).query_rows("SELECT 1") == [(1,)]
    assert clickhouse_module.connect(stack).query_rows("SELECT 1") == [(1,)]


_CHILD = """
import sys
import chdb.session
session = chdb.session.Session(sys.argv[1])
session.query("INSERT INTO d.t VALUES (2)")
print(session.query("SELECT count() FROM d.t", "CSV").bytes().decode().strip())
session.close()
"""


def _child(folder: Path) -> subprocess.CompletedProcess[str]:
    """Another process opening ``folder``: inserts a row and prints the row count."""
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder)], capture_output=True, text=True, timeout=60
    )


def test_chdb_hands_its_folder_to_another_process_and_back(stack: Settings, tmp_path: Path) -> None:
    if stack.clickhouse_url:
        pytest.fail("this test is about the embedded backend; unset TRADEX_CLICKHOUSE_URL")
    folder = tmp_path / "handed"
    here = ChdbClickHouse(folder)
    here.command("CREATE DATABASE d")
    here.command("CREATE TABLE d.t (a Int64) ENGINE = MergeTree ORDER BY a")
    here.command("INSERT INTO d.t VALUES (1)")
    held = _child(folder)
    assert held.returncode != 0, "another process opened a folder this one holds"
    assert clickhouse_module.holder_pid(folder) == os.getpid()
    assert ChdbClickHouse.release(folder)
    done = _child(folder)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2"]
    assert here.query_rows("SELECT count() FROM d.t") == [(2,)]  # reopened on use
    assert ChdbClickHouse.release(folder)
    with ChdbClickHouse.borrowed(folder) as borrowed:
        assert borrowed.query_rows("SELECT count() FROM d.t") == [(2,)]
    again = _child(folder)  # a borrow does not keep the folder
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.split() == ["3"]
