"""`tradex bench e2e`: its workload, the raw chain's shape, and a quick run end to end."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter

import numpy as np
import pytest
from confluent_kafka import Message

from tradex.bench.e2e import main
from tradex.bench.pipeline import _schema_ids, _wire_ids, order_pairs
from tradex.bench.raw_chain import (
    RAW_ENGINE,
    RAW_EVENTS,
    RAW_REQUESTS,
    RAW_SETTLEMENTS,
    STAMP_BYTES,
    ChainSpec,
    RawAccounts,
    RawMatcher,
)
from tradex.domain import OrderKind, Side
from tradex.infra.settings import load
from tradex.schemas.codec import Codec

SPEC = ChainSpec(4, 4.43, 2.75, 176, 260, 184, 204, 207)


def test_orders_come_in_pairs_that_cross_each_other_completely() -> None:
    orders = order_pairs(500, accounts=50, first=10, seed=1)
    assert len(orders) == 1_000
    assert len({o.command_id for o in orders}) == 1_000
    assert orders[0].command_id == "e10"
    for first, second in zip(orders[::2], orders[1::2], strict=True):
        assert first.instrument_id == second.instrument_id
        assert first.price == second.price
        assert first.qty == second.qty
        assert {first.side, second.side} == {Side.BUY, Side.SELL}
        assert first.account_id != second.account_id
        assert first.kind == second.kind == OrderKind.GTC
    # one price per instrument: whatever the arrival order, every order fills in the end
    prices = {(o.instrument_id, o.price) for o in orders}
    assert len(prices) == len({i for i, _ in prices})
    sides = Counter((o.instrument_id, o.side) for o in orders)
    for instrument in {o.instrument_id for o in orders}:
        buys = sum(o.qty for o in orders if o.instrument_id == instrument and o.side == Side.BUY)
        sells = sum(o.qty for o in orders if o.instrument_id == instrument and o.side == Side.SELL)
        assert buys == sells
        assert sides[(instrument, Side.BUY)] == sides[(instrument, Side.SELL)]


def test_schema_ids_are_read_from_the_wire_headers() -> None:
    codec = Codec.offline()
    accepted, released = _wire_ids(codec, "OrderAccepted"), _wire_ids(codec, "HoldReleased")
    assert len(accepted) and len(released)
    assert not set(accepted.tolist()) & set(released.tolist())
    values = [b"\0" + int(accepted[0]).to_bytes(4, "big") + b"xyz", b"\0\0", b"\0" +
              int(released[-1]).to_bytes(4, "big")]  # fmt: skip
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    ids = _schema_ids(b"".join(values), offsets)
    assert ids.tolist() == [int(accepted[0]), -1, int(released[-1])]


def _messages(topic: str, count: int) -> list[Message]:
    return [
        Message(topic=topic, partition=i % 4, offset=i, key=b"k", value=bytes([1 + i % 3]) * 176)
        for i in range(count)
    ]


@pytest.mark.parametrize("batches", [[1] * 50, [7, 13, 30], [50]])
def test_the_raw_matcher_writes_exactly_the_fractional_fan_out(batches: list[int]) -> None:
    settings = dataclasses.replace(load(), topic_prefix="x-")
    matcher = RawMatcher(settings, SPEC)
    requests = _messages(settings.topic("raw-requests"), sum(batches))
    outputs = []
    start = 0
    for size in batches:
        outputs += matcher.process(requests[start : start + size])
        start += size
    by_topic = Counter(o.topic for o in outputs)
    assert by_topic[settings.topic(RAW_ENGINE)] == math.floor(50 * SPEC.engine_per_order)
    assert by_topic[settings.topic(RAW_SETTLEMENTS)] == math.floor(50 * SPEC.settlements_per_order)
    assert {len(o.value) for o in outputs if o.topic == settings.topic(RAW_ENGINE)} == {204}
    engine = [o for o in outputs if o.topic == settings.topic(RAW_ENGINE)]
    assert all(o.partition in range(4) for o in engine)  # same partition as the request
    assert len({o.value for o in outputs}) > len(outputs) // 2  # values vary (lz4 fairness)


def test_the_raw_accounts_stage_writes_an_event_per_input_and_a_request_per_command() -> None:
    settings = dataclasses.replace(load(), topic_prefix="x-")
    accounts = RawAccounts(settings, SPEC)
    commands = _messages(settings.topic("raw-commands"), 10)
    settlements = _messages(settings.topic("raw-settlements"), 6)
    outputs = accounts.process(commands + settlements)
    by_topic = Counter(o.topic for o in outputs)
    assert by_topic == {settings.topic("raw-events"): 16, settings.topic("raw-requests"): 10}
    assert SPEC.events_for(10) == 10 + math.floor(10 * 2.75)


def test_a_commands_stamp_leads_its_event_its_request_and_every_engine_record() -> None:
    settings = dataclasses.replace(load(), topic_prefix="x-")
    accounts, matcher = RawAccounts(settings, SPEC), RawMatcher(settings, SPEC)
    stamps = [(10_000 + i).to_bytes(STAMP_BYTES, "little") for i in range(20)]
    commands = [
        Message(topic=settings.topic("raw-commands"), partition=i % 4, offset=i, key=b"k",
                value=bytes([1 + i % 3]) + stamp + bytes(176 - 1 - STAMP_BYTES))
        for i, stamp in enumerate(stamps)
    ]  # fmt: skip
    settlement = _messages(settings.topic(RAW_SETTLEMENTS), 1)
    outputs = accounts.process(commands + settlement)
    events = [o for o in outputs if o.topic == settings.topic(RAW_EVENTS)]
    requests = [o for o in outputs if o.topic == settings.topic(RAW_REQUESTS)]
    assert [e.value[:STAMP_BYTES] for e in events[:20]] == stamps
    assert events[20].value[:STAMP_BYTES] not in stamps  # a settlement's event: filler
    assert [r.value[:STAMP_BYTES] for r in requests] == stamps
    assert [r.key for r in requests] == [bytes([1 + i % 3]) for i in range(20)]
    assert {len(e.value) for e in events} == {260} and {len(r.value) for r in requests} == {184}
    messages = [
        Message(topic=r.topic, partition=i % 4, offset=i, key=r.key, value=r.value)
        for i, r in enumerate(requests)
    ]
    engine = [o for o in matcher.process(messages) if o.topic == settings.topic(RAW_ENGINE)]
    assert {o.value[:STAMP_BYTES] for o in engine} == set(stamps)  # every request's, no other
    assert {len(o.value) for o in engine} == {204}


@pytest.mark.integration
@pytest.mark.heavy  # a benchmark run: `./dev test --heavy`
def test_quick_e2e_bench_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--quick", "--orders", "1000", "--latency-seconds", "1", "--accounts", "50"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bench"] == "e2e"
    assert summary["ok"] is True, summary["notes"]
    assert code == 0
    assert {"orders_per_s", "ack_p99_ms", "trade_p99_ms", "raw_chain_share"} <= set(
        summary["figures"]
    )
    assert summary["figures"]["raw_chain_share"] > 0
    assert summary["peer"]["ack_p99_ms"] > 0 and summary["peer"]["trade_p99_ms"] > 0
    plain = summary["peer"]["plain_loop"]
    assert plain["ack_p50_ms"] > 0 and plain["trade_p99_ms"] >= plain["trade_p50_ms"]
    assert summary["shape"]["settlements_per_order"] >= 2  # a fill leg and an order end
