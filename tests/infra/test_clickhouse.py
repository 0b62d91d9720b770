"""The ClickHouse interface against the stack's backend (chdb unless a server URL is set)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pytest

from tradex.infra import clickhouse as clickhouse_module
from tradex.infra.clickhouse import ClickHouse
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


def test_chdb_refuses_a_second_path_in_one_process(stack: Settings, tmp_path: Path) -> None:
    if stack.clickhouse_url:
        pytest.fail("this test is about the embedded backend; unset TRADEX_CLICKHOUSE_URL")
    other = dataclasses.replace(stack, clickhouse_path=tmp_path / "other")
    with pytest.raises(RuntimeError, match="already open"):
        clickhouse_module.connect(other)
    again = clickhouse_module.connect(stack)
    assert again.query_rows("SELECT 1") == [(1,)]
