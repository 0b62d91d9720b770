"""Account processor on the real Kafka: commands in → events and order requests out."""

from __future__ import annotations

import pytest

from tests.commands.support import (
    BTC_USD,
    CODEC,
    T0,
    load_reference,
    read_events,
    read_log,
    run_accounts,
    send,
    send_settlements,
)
from tradex.commands.client import encode_command
from tradex.domain import (
    ApproveWithdrawal,
    CancelOrder,
    CancelOrderRequest,
    CancelRequested,
    CommandRejected,
    Deposit,
    Deposited,
    EndReason,
    FillLeg,
    FillSettled,
    HoldReleased,
    InstrumentRules,
    Ledger,
    Liquidity,
    NewOrder,
    OrderAccepted,
    OrderEnded,
    OrderKind,
    OrderRejected,
    PlaceOrder,
    Reason,
    RejectWithdrawal,
    RequestWithdrawal,
    Side,
    StpMode,
    WithdrawalPaid,
    WithdrawalReleased,
    WithdrawalRequested,
)
from tradex.domain.ids import order_id
from tradex.infra.kafka import produce_sync
from tradex.infra.settings import Settings
from tradex.log.keys import account_key, account_partition
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_COMMANDS, DEAD_LETTERS, ORDER_REQUESTS
from tradex.schemas.chain import ZERO_HASH, verify_chain
from tradex.schemas.codec import EnvelopeFields

pytestmark = pytest.mark.integration

PARTITIONS = 2
ALICE, BOB = 1, 2  # accounts
UNKNOWN = 99  # never opened


def _events_by_command(settings: Settings) -> dict[str, list[object]]:
    by_command: dict[str, list[object]] = {}
    for partition in range(PARTITIONS):
        for logged in read_events(settings, partition):
            by_command.setdefault(logged.event.command_id, []).append(logged.event)
    return by_command


def test_commands_become_events_and_order_requests(settings: Settings) -> None:
    load_reference(settings, [ALICE, BOB], PARTITIONS)
    t = T0 + 1_000
    send(
        settings,
        [
            Deposit("dep-a", ALICE, t, "USD", 1_000_000),
            Deposit("dep-b", BOB, t, "BTC", 5_000_000),
            PlaceOrder("buy-a", ALICE, t, BTC_USD, Side.BUY, OrderKind.GTC, 200, 10),
            PlaceOrder("sell-b", BOB, t, BTC_USD, Side.SELL, OrderKind.GTC, 210, 10_000),
            Deposit("dep-a", ALICE, t, "USD", 1_000_000),  # duplicate: nothing new
            RequestWithdrawal("wd-1", ALICE, t, "USD", 1_000),
            ApproveWithdrawal("ok-1", ALICE, t, "wd-1"),
            RequestWithdrawal("wd-2", ALICE, t, "USD", 2_000),
            RejectWithdrawal("no-2", ALICE, t, "wd-2"),
            Deposit("dep-x", UNKNOWN, t, "USD", 5),
        ],
    )
    stats, processor = run_accounts(settings, PARTITIONS)
    assert processor.stats.duplicates == 1
    assert processor.stats.dead_letters == 0
    by_command = _events_by_command(settings)
    assert [type(e) for e in by_command["dep-a"]] == [Deposited]  # once, not twice
    assert [type(e) for e in by_command["buy-a"]] == [OrderAccepted]
    rejected = by_command["sell-b"]
    assert [type(e) for e in rejected] == [OrderRejected]
    assert rejected[0].reason == Reason.INSUFFICIENT_FUNDS  # type: ignore[attr-defined]
    # It names the order id the order would have had: (partition << 40) | its offset.
    home = account_partition(BOB, PARTITIONS)
    (sell_b,) = [c for c in read_log(settings, ACCOUNT_COMMANDS, home)
                 if c.event.command_id == "sell-b"]  # fmt: skip
    assert rejected[0].order_id == order_id(home, sell_b.offset) > 0  # type: ignore[attr-defined]
    assert [type(e) for e in by_command["wd-1"]] == [WithdrawalRequested]
    assert [type(e) for e in by_command["ok-1"]] == [WithdrawalPaid]
    assert [type(e) for e in by_command["no-2"]] == [WithdrawalReleased]
    unknown = by_command["dep-x"]
    assert [type(e) for e in unknown] == [CommandRejected]
    assert unknown[0].reason == Reason.UNKNOWN_ACCOUNT  # type: ignore[attr-defined]

    # The accepted order went to order-requests, keyed by instrument, with its order id.
    accepted = by_command["buy-a"][0]
    assert isinstance(accepted, OrderAccepted)
    requests = [
        logged.event
        for partition in range(settings.topic_partitions)
        for logged in read_log(settings, ORDER_REQUESTS, partition)
    ]
    # The reference processor put the instrument's rules in band first (same key).
    assert [type(r) for r in requests] == [InstrumentRules, NewOrder]
    assert requests[0].instrument_id == BTC_USD
    assert requests[0].status == "TRADING"
    assert requests[1:] == [
        NewOrder(
            accepted.order_id,
            ALICE,
            BTC_USD,
            Side.BUY,
            OrderKind.GTC,
            200,
            10,
            0,
            "NONE",
            accepted.maker_fee_ppm,
            accepted.taker_fee_ppm,
            t,
        )
    ]
    assert accepted.order_id >> 40 == account_partition(ALICE, PARTITIONS)

    # Cancel it, then settle a fill and the end of the order arriving from the matcher.
    send(settings, [CancelOrder("cancel-a", ALICE, t + 1, accepted.order_id)])
    send_settlements(
        settings,
        [
            FillLeg(
                ALICE, accepted.order_id, 77, BTC_USD, Side.BUY, 195, 4, Liquidity.MAKER, t + 2
            ),
            OrderEnded(ALICE, accepted.order_id, BTC_USD, EndReason.CANCELLED, t + 3),
        ],
    )
    run_accounts(settings, PARTITIONS)
    by_command = _events_by_command(settings)
    assert [type(e) for e in by_command["cancel-a"]] == [CancelRequested]
    assert [type(e) for e in by_command[f"fill/77/{accepted.order_id}"]] == [FillSettled]
    released = by_command[f"end/{accepted.order_id}"]
    assert [type(e) for e in released] == [HoldReleased]
    requests = [
        logged.event
        for partition in range(settings.topic_partitions)
        for logged in read_log(settings, ORDER_REQUESTS, partition)
    ]
    assert requests[-1] == CancelOrderRequest(accepted.order_id, ALICE, BTC_USD, t + 1)

    # The log verifies: chain per partition, seq per account, ledger invariants.
    ledger = Ledger()
    for partition in range(PARTITIONS):
        logged = read_events(settings, partition)
        assert verify_chain((x.envelope.prev_hash, x.data) for x in logged) == []
        seqs: dict[int, int] = {}
        for x in logged:
            ledger.apply(x.event)
            if x.event.account_id > 0:
                seqs[x.event.account_id] = seqs.get(x.event.account_id, 0) + 1
                assert x.envelope.seq == seqs[x.event.account_id]
            assert x.envelope.causation_id  # the command id, or the settlement's event id
            assert x.key == str(x.event.account_id).encode()
    # Buyer's fill leg alone: clearing holds the trade until the seller's leg settles.
    assert ledger.unsettled_trades() == [77]
    assert [v for v in ledger.violations() if "not conserved" not in v] == []
    assert ledger.available(ALICE, "BTC") == 4 * 1_000
    assert stats.records_in == 10


def _invalid_place_order() -> bytes:
    """Decodes fine, but its empty command id fails validation."""
    valid = encode_command(
        CODEC, PlaceOrder("p", ALICE, T0, BTC_USD, Side.BUY, OrderKind.GTC, 100, 1)
    )
    record = CODEC.decode(valid).record
    record["command_id"] = ""
    return CODEC.seal("PlaceOrder", record, ZERO_HASH).data


def _order_request() -> bytes:
    request = NewOrder(1, ALICE, BTC_USD, Side.BUY, OrderKind.GTC, 1, 1, 0, StpMode.NONE, 0, 0, T0)
    return CODEC.encode_domain(request, EnvelopeFields("e", "c", "c", "test", 0)).data


def test_malformed_records_go_to_dead_letters_and_processing_continues(
    settings: Settings,
) -> None:
    assert account_partition(ALICE, PARTITIONS) != account_partition(BOB, PARTITIONS)
    load_reference(settings, [ALICE, BOB], PARTITIONS)
    send(settings, [Deposit("before", ALICE, T0, "USD", 1)])
    topic = settings.topic("account-commands")
    alice_key = account_key(ALICE)
    bad_records = [
        (alice_key, b"not avro at all, certainly not a record"),  # undecodable
        (alice_key, bytes(5) + bytes(40)),  # unknown schema id 0
        (alice_key, _invalid_place_order()),  # decodes, fails validation
        (alice_key, _order_request()),  # an order request is not a command
        (account_key(BOB), encode_command(CODEC, Deposit("misrouted", ALICE, T0, "USD", 5))),
    ]  # fmt: skip
    produce_sync(settings, topic, bad_records)
    send(settings, [Deposit("after", ALICE, T0, "USD", 100)])
    _stats, processor = run_accounts(settings, PARTITIONS)
    assert processor.stats.dead_letters == len(bad_records)
    with KafkaLog(settings) as log:
        letters = [
            CODEC.decode(r.value or b"").record
            for partition in range(log.partitions(DEAD_LETTERS))
            for r in log.read(DEAD_LETTERS, partition)
        ]
    assert sorted(letter["reason"] for letter in letters) == sorted(
        ["undecodable"] * 3 + ["unexpected type", "misrouted"]
    )
    for letter in letters:
        assert letter["source_topic"] == topic
        assert (letter["key"], letter["value"]) in bad_records  # the raw bytes, kept
        assert letter["error"]
    alice, bob = account_partition(ALICE, PARTITIONS), account_partition(BOB, PARTITIONS)
    assert sorted((x["source_partition"], x["source_offset"]) for x in letters) == sorted(
        [(alice, 1), (alice, 2), (alice, 3), (alice, 4), (bob, 0)]
    )
    by_command = _events_by_command(settings)
    assert [type(e) for e in by_command["before"]] == [Deposited]
    assert [type(e) for e in by_command["after"]] == [Deposited]  # processing went on
    assert "misrouted" not in by_command


def test_order_ids_derive_from_the_input_position() -> None:
    assert order_id(3, 17) == (3 << 40) | 17
