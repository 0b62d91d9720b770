"""Analytics on the ``clickhouse`` read model, for quants: every function returns a
:class:`Query` whose SQL is there to read, copy and change.

    from tradex.projections.analytics import Analytics
    a = Analytics()                                  # settings from TRADEX_* variables
    q = a.candles("BTC-USD", "1m")
    print(q.sql)
    df = q.df()                                      # pandas; q.arrow() for Arrow

Where the queries run (:func:`tradex.projections.clickhouse_http.reading`): a ClickHouse
server when ``TRADEX_CLICKHOUSE_URL`` is set; else the running projector's query endpoint
when it holds the chdb folder; else the folder itself, opened for the query.

Units: prices in ticks, quantities in lots, money in minor units of its asset (int64);
``*_price`` columns are decimals in quote per base unit, from the instrument's tick and
lot sizes and its assets' scales. Times are int64 nanoseconds (``event_time_ns``,
``bucket_ns``) with a DateTime64(9, 'UTC') beside them. Intervals: ``<n><unit>`` with unit
ns, us, ms, s, m (minutes), h or d; buckets are ``[k·n, (k+1)·n)`` since the epoch.

**PnL** of an account on an instrument, in quote minor units, fees included:
``pnl = cash + position × mark × tick_size``, where ``position`` (lots) and ``cash``
(buys −notional−fee, sells +notional−fee) add up the account's fills so far and ``mark``
is the last trade price (ticks). That is realised plus unrealised PnL together, whatever
cost-basis method would split them; summed over every account it is minus the fees paid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import pyarrow as pa

from tradex.infra import settings as settings_module
from tradex.infra.clickhouse import ClickHouseError
from tradex.infra.settings import Settings
from tradex.projections.clickhouse_http import reading
from tradex.projections.projector import namespace

if TYPE_CHECKING:
    import pandas as pd

READ_MODEL = "clickhouse"
PRICE_DECIMALS = 12  # digits after the point of *_price columns (truncated beyond)
_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_INTERVAL = re.compile(r"^\s*(\d+)\s*(ns|us|ms|s|m|h|d)\s*$")
_SYMBOL = re.compile(r"^[A-Za-z0-9._/-]{1,64}$")

Time = int | datetime  # int: nanoseconds since the epoch; datetime: timezone-aware


def interval_ns(text: str) -> int:
    """``"5m"`` -> 300_000_000_000."""
    found = _INTERVAL.match(text)
    if found is None:
        raise ValueError(f"interval {text!r} is not <n><ns|us|ms|s|m|h|d>, e.g. '1m'")
    step = int(found.group(1)) * _UNITS_NS[found.group(2)]
    if step <= 0:
        raise ValueError(f"interval {text!r} must be > 0")
    return step


def time_ns(value: Time) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no timezone: say which (e.g. tzinfo=UTC)")
        seconds = int(value.timestamp())
        return seconds * 1_000_000_000 + value.microsecond * 1_000
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"a time is int nanoseconds or an aware datetime, not {value!r}")
    return value


class Instrument(NamedTuple):
    instrument_id: int
    symbol: str
    tick_size: int
    lot_size: int
    base: str
    quote: str
    base_scale: int
    quote_scale: int

    def price_sql(self, ticks: str) -> str:
        """A decimal price (quote per base unit) from a column of ticks:
        ``ticks × tick_size × 10^base_scale / (lot_size × 10^quote_scale)``."""
        numerator = self.tick_size * 10**self.base_scale
        denominator = self.lot_size * 10**self.quote_scale
        return f"toDecimal128(toInt128({ticks}) * {numerator}, {PRICE_DECIMALS}) / {denominator}"


@dataclass(frozen=True)
class Query:
    """One query of the read model: ``sql`` to read, ``arrow()`` / ``df()`` to run it."""

    sql: str
    settings: Settings

    def arrow(self) -> pa.Table:
        with reading(self.settings) as ch:
            return ch.query_arrow(self.sql)

    def df(self) -> pd.DataFrame:
        return self.arrow().to_pandas()

    def __str__(self) -> str:
        return self.sql


class Analytics:
    """The analytics of one exchange's read model (``settings.topic_prefix``)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else settings_module.load()
        self.db = namespace(self.settings, READ_MODEL)  # the reader database (views)

    def sql(self, text: str) -> Query:
        """Any SELECT of your own (the tables are ``{self.db}.<name>``)."""
        return Query(text, self.settings)

    def instrument(self, instrument: int | str) -> Instrument:
        """An instrument's sizes and scales, by id or symbol."""
        if isinstance(instrument, str):
            if not _SYMBOL.match(instrument):
                raise ValueError(f"not a symbol: {instrument!r}")
            where = f"symbol = '{instrument}'"
        else:
            where = f"instrument_id = {int(instrument)}"
        rows = self.sql(
            "SELECT instrument_id, symbol, tick_size, lot_size, base, quote, base_scale, "
            f"quote_scale FROM {self.db}.instruments_current WHERE {where}"
        ).arrow()
        if rows.num_rows != 1:
            raise ClickHouseError(f"no instrument {instrument!r} in {self.db}")
        return Instrument(*(rows.column(i)[0].as_py() for i in range(rows.num_columns)))

    @staticmethod
    def _window(column: str, start: Time | None, end: Time | None) -> str:
        where = ""
        if start is not None:
            where += f" AND {column} >= {time_ns(start)}"
        if end is not None:
            where += f" AND {column} < {time_ns(end)}"
        return where

    # -- trades -----------------------------------------------------------------------------

    def candles(
        self, instrument: int | str, interval: str = "1m",
        start: Time | None = None, end: Time | None = None,
    ) -> Query:  # fmt: skip
        """OHLCV per interval from the trades in ``[start, end)``; open and close by trade
        order (engine time, then log offset); ``vwap`` = Σ price·qty / Σ qty."""
        i = self.instrument(instrument)
        step = interval_ns(interval)
        return self.sql(f"""-- {i.symbol} candles of {interval}: ticks, lots; *_price in {i.quote} per {i.base}
SELECT
    instrument_id,
    bucket_ns,
    fromUnixTimestamp64Nano(bucket_ns, 'UTC') AS bucket,
    argMin(price, (event_time_ns, log_offset)) AS open,
    max(price) AS high,
    min(price) AS low,
    argMax(price, (event_time_ns, log_offset)) AS close,
    sum(qty) AS volume_lots,
    count() AS trades,
    sum(toDecimal128(price, 0) * qty) AS price_qty,
    toFloat64(price_qty) / volume_lots AS vwap_ticks,
    {i.price_sql("open")} AS open_price,
    {i.price_sql("high")} AS high_price,
    {i.price_sql("low")} AS low_price,
    {i.price_sql("close")} AS close_price
FROM (
    SELECT *, intDiv(event_time_ns, {step}) * {step} AS bucket_ns
    FROM {self.db}.trades
    WHERE instrument_id = {i.instrument_id}{self._window("event_time_ns", start, end)}
)
GROUP BY instrument_id, bucket_ns
ORDER BY bucket_ns""")

    def vwap(
        self, instrument: int | str, start: Time | None = None, end: Time | None = None
    ) -> Query:
        """The volume-weighted average price of the trades in ``[start, end)``: one row,
        with its exact parts (``price_qty`` = Σ price·qty in ticks·lots, ``volume_lots``)."""
        i = self.instrument(instrument)
        return self.sql(f"""-- {i.symbol} VWAP: Σ price·qty / Σ qty over the trades in the window
SELECT
    count() AS trades,
    sum(qty) AS volume_lots,
    sum(toDecimal128(price, 0) * qty) AS price_qty,
    toFloat64(price_qty) / volume_lots AS vwap_ticks,
    toDecimal128(price_qty * {i.tick_size * 10**i.base_scale}, {PRICE_DECIMALS})
        / (toInt128(volume_lots) * {i.lot_size * 10**i.quote_scale}) AS vwap_price,
    min(event_time_ns) AS first_ns,
    max(event_time_ns) AS last_ns
FROM {self.db}.trades
WHERE instrument_id = {i.instrument_id}{self._window("event_time_ns", start, end)}""")

    def trades_with_top(
        self, instrument: int | str, start: Time | None = None, end: Time | None = None,
        at: str = "arrival",
    ) -> Query:  # fmt: skip
        """Each trade with the book's best bid and ask (ClickHouse ASOF JOIN on book_top).

        ``at="arrival"``: the top before the trade's engine time — what the order that
        traded saw when it arrived (every output of one order shares its engine time).
        ``at="log"``: the top just before the trade in the log, after the book updates of
        the same order's earlier fills. No top yet: NULL."""
        i = self.instrument(instrument)
        if at == "arrival":
            on = "t.event_time_ns > b.event_time_ns"
        elif at == "log":
            on = "t.log_partition = b.log_partition AND t.log_offset > b.log_offset"
        else:
            raise ValueError(f"at must be 'arrival' or 'log', not {at!r}")
        return self.sql(f"""-- {i.symbol} trades with the book's top ({at}): ticks, lots
SELECT
    t.event_time_ns, t.event_time, t.trade_id, t.price, t.qty, t.taker_side,
    b.book_seq, b.bid_price, b.bid_qty, b.ask_price, b.ask_qty,
    if(b.bid_price > 0 AND b.ask_price > 0, (b.bid_price + b.ask_price) / 2, NULL) AS mid_ticks,
    if(b.bid_price > 0 AND b.ask_price > 0, b.ask_price - b.bid_price, NULL) AS spread_ticks,
    {i.price_sql("t.price")} AS price_decimal
FROM (
    SELECT * FROM {self.db}.trades
    WHERE instrument_id = {i.instrument_id}{self._window("event_time_ns", start, end)}
) AS t
ASOF LEFT JOIN (
    SELECT * FROM {self.db}.book_top WHERE instrument_id = {i.instrument_id}
) AS b ON t.instrument_id = b.instrument_id AND {on}
ORDER BY t.event_time_ns, t.log_offset
SETTINGS join_use_nulls = 1""")

    # -- accounts -------------------------------------------------------------------------

    def positions(
        self, account_id: int, asset: str | None = None, interval: str | None = None
    ) -> Query:
        """An account's balance (available + held, minor units) per asset after each
        journal posting, in log order; with ``interval``, the last balance per bucket of
        event time (event times are the commands' and fills' own, so they need not grow
        along the log)."""
        where = f"account_id = {int(account_id)}"
        if asset is not None:
            if not _SYMBOL.match(asset):
                raise ValueError(f"not an asset code: {asset!r}")
            where += f" AND asset = '{asset}'"
        running = f"""SELECT
    account_id, asset, event_time_ns, event_time, event_type, delta,
    sum(delta) OVER (
        PARTITION BY asset ORDER BY log_partition, log_offset, log_index
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS balance,
    log_partition, log_offset, log_index
FROM {self.db}.postings
WHERE {where}"""
        if interval is None:
            return self.sql(f"""-- account {int(account_id)}: balance after each posting
{running}
ORDER BY asset, log_partition, log_offset, log_index""")
        step = interval_ns(interval)
        return self.sql(f"""-- account {int(account_id)}: balance at the end of each {interval}
SELECT
    account_id, asset,
    intDiv(event_time_ns, {step}) * {step} AS bucket_ns,
    fromUnixTimestamp64Nano(bucket_ns, 'UTC') AS bucket,
    argMax(balance, (log_partition, log_offset, log_index)) AS balance,
    count() AS postings
FROM (
{running}
)
GROUP BY account_id, asset, bucket_ns
ORDER BY asset, bucket_ns""")

    def pnl(self, account_id: int, instrument: int | str, interval: str | None = None) -> Query:
        """PnL (module doc) of ``account_id`` on ``instrument`` in quote minor units: after
        each of its fills (marked at that fill's price), or with ``interval`` at the end of
        each bucket in which the instrument traded (marked at the bucket's last trade)."""
        i = self.instrument(instrument)
        account = int(account_id)
        flows = """if(side = 'BUY', qty, -qty)"""
        cash = """if(side = 'BUY', -(notional + fee), notional - fee)"""
        if interval is None:
            return self.sql(f"""-- account {account} on {i.symbol}: PnL = cash + position × price × tick_size ({i.quote} minor units)
SELECT
    event_time_ns, event_time, trade_id, side, liquidity, price, qty, fee,
    sum({flows}) OVER w AS position_lots,
    sum({cash}) OVER w AS cash_quote,
    sum(fee) OVER w AS fees_quote,
    price AS mark_ticks,
    accurateCast(cash_quote + toInt128(position_lots) * mark_ticks * {i.tick_size}, 'Int64') AS pnl_quote
FROM {self.db}.fills
WHERE account_id = {account} AND instrument_id = {i.instrument_id}
WINDOW w AS (ORDER BY log_partition, log_offset ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY log_partition, log_offset""")
        step = interval_ns(interval)
        return self.sql(f"""-- account {account} on {i.symbol}: PnL at the end of each {interval} with trades ({i.quote} minor units)
WITH
    fills AS (
        -- the account's position and cash after all its fills at each engine time
        SELECT
            instrument_id, event_time_ns,
            sum(sum({flows})) OVER w AS position_lots,
            sum(sum({cash})) OVER w AS cash_quote,
            sum(sum(fee)) OVER w AS fees_quote
        FROM {self.db}.fills
        WHERE account_id = {account} AND instrument_id = {i.instrument_id}
        GROUP BY instrument_id, event_time_ns
        WINDOW w AS (ORDER BY event_time_ns ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ),
    marks AS (
        SELECT
            instrument_id,
            intDiv(event_time_ns, {step}) * {step} AS bucket_ns,
            max(event_time_ns) AS last_ns,
            argMax(price, (event_time_ns, log_offset)) AS mark_ticks
        FROM {self.db}.trades
        WHERE instrument_id = {i.instrument_id}
        GROUP BY instrument_id, bucket_ns
    )
SELECT
    m.bucket_ns AS bucket_ns,
    fromUnixTimestamp64Nano(m.bucket_ns, 'UTC') AS bucket,
    m.mark_ticks AS mark_ticks,
    f.position_lots AS position_lots,
    f.cash_quote AS cash_quote,
    f.fees_quote AS fees_quote,
    accurateCast(f.cash_quote + toInt128(f.position_lots) * m.mark_ticks * {i.tick_size}, 'Int64') AS pnl_quote
FROM marks AS m
ASOF LEFT JOIN fills AS f ON m.instrument_id = f.instrument_id AND m.last_ns >= f.event_time_ns
ORDER BY m.bucket_ns""")
