"""The compiled account path against its twin, the Python domain: 100k+ seeded records.

Two account processors take the same batches of input records (tests/commands/twin_stream.py):
one decides the hot records with the C kernel (tradex/commands/compiled.py) and hands the
rest back to the Python domain, the other decides everything with the Python domain. After
every batch their outputs must be identical bytes (topic, key, partition, value: events,
order requests, dead letters, and the snapshots ``committed`` writes); every few batches
their whole state must be equal: per partition the chain tail and the event counts, per
account its balances, holds, open orders (every field), pending withdrawals, version and
idempotency window (ids, in order), and both must pass ``validate_internal_state``.

The bounds of the idempotency window and of open orders are lowered for the run (both
paths read the same constants), so the stream reaches them; the end checks that the stream
really exercised the rare paths (a test that cannot fail proves nothing).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, OrderedDict
from typing import Any, cast

import pytest

from tests.commands import twin_stream
from tests.commands.twin_stream import HOT, Stream
from tradex.commands import compiled
from tradex.commands.processor import AccountProcessor
from tradex.commands.reference_table import ReferenceFollower
from tradex.commands.snapshots import account_state
from tradex.domain import ReferenceData
from tradex.domain import account as account_module
from tradex.domain.types import Reason
from tradex.infra import settings as settings_module
from tradex.infra.stage import Output
from tradex.log.keys import account_partition
from tradex.log.topics import ACCOUNT_COMMANDS, SETTLEMENTS
from tradex.schemas.codec import Codec, CodecError

RECORDS_TOTAL = 120_000
PARTITIONS = 3
SEED = 20261126
STATE_EVERY = 25  # batches between two comparisons of the whole state
SNAPSHOT_EVENTS = 4_000
COMMAND_IDS_MAX = 1_000  # lowered for the run: HOT's window overflows (an OrderedDict)
OPEN_ORDERS_MAX = 150  # lowered for the run: HOT reaches it
CANCEL_ALL_CHUNK = 5  # lowered for the run: cancel-alls write continuations


class _Reference:
    """A reference follower whose table changes only when the test says so."""

    def __init__(self) -> None:
        self.reference = ReferenceData()

    def catch_up(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _processor(settings: Any, codec: Codec, compiled_path: bool) -> AccountProcessor:
    follower = _Reference()
    for command in twin_stream.reference_commands():
        follower.reference.decide(command)
    processor = AccountProcessor(
        settings, codec, cast(ReferenceFollower, follower), partitions=PARTITIONS,
        producer="accounts/twin", snapshot_events=SNAPSHOT_EVENTS, compiled=compiled_path,
    )  # fmt: skip
    assert (processor.kernel is not None) == compiled_path, "the kernel was not built"
    processor.assign_empty(list(range(PARTITIONS)))
    return processor


def _state(processor: AccountProcessor) -> dict[int, Any]:
    state: dict[int, Any] = {}
    for partition in processor.assigned():
        live = processor.live[partition]
        book = live.book
        book.validate_internal_state()
        accounts = {a.account_id: account_state(a) for a in book}
        state[partition] = (live.last_hash, live.since_snapshot, live.events_next, accounts)
    return state


def _show(output: Output, codec: Codec) -> str:
    try:
        return repr(codec.decode_domain(output.value))
    except CodecError as exc:  # a snapshot piece
        return f"{output.topic} {output.key!r} {output.partition} ({exc})"


def _first_difference(got: list[Output], want: list[Output], codec: Codec) -> str:
    for index, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"output {index}:\n compiled {_show(a, codec)}\n python   {_show(b, codec)}"
    return f"{len(got)} outputs, {len(want)} expected"


def test_compiled_path_equals_python_domain_on_120k_seeded_records(monkeypatch) -> None:
    monkeypatch.setattr(account_module, "COMMAND_IDS_MAX", COMMAND_IDS_MAX)
    monkeypatch.setattr(account_module, "OPEN_ORDERS_MAX", OPEN_ORDERS_MAX)
    monkeypatch.setattr(account_module, "CANCEL_ALL_CHUNK", CANCEL_ALL_CHUNK)
    monkeypatch.setattr(compiled, "COMMAND_IDS_MAX", COMMAND_IDS_MAX)
    monkeypatch.setattr(compiled, "OPEN_ORDERS_MAX", OPEN_ORDERS_MAX)
    settings = dataclasses.replace(settings_module.load(), topic_prefix="twin-")
    codec = Codec.offline()
    fast = _processor(settings, codec, compiled_path=True)
    slow = _processor(settings, codec, compiled_path=False)
    stream = Stream(
        SEED, PARTITIONS, settings.topic(ACCOUNT_COMMANDS), settings.topic(SETTLEMENTS), codec
    )
    steps = stream.steps(RECORDS_TOTAL)
    produced: dict[tuple[str, int], int] = {}
    events = Counter[str]()
    reasons = Counter[str]()
    fees = Counter[bool]()
    batches = 0
    got_all: list[Output] = []  # the continuations written to account-commands
    for kind, payload in steps:
        if kind == "reference":
            for processor in (fast, slow):
                for command in payload:
                    processor.follower.reference.decide(command)
            continue
        got, want = fast.process(payload), slow.process(payload)
        assert got == want, f"batch {batches}: " + _first_difference(got, want, codec)
        got_all += [o for o in got if o.topic == fast.commands_topic]
        written: dict[tuple[str, int], int] = {}  # as the stage reports: where the writes end
        for output in got:
            if output.topic == fast.events_topic and output.partition >= 0:
                target = (output.topic, output.partition)
                produced[target] = written[target] = produced.get(target, 0) + 1
                event = codec.decode_domain(output.value)[1]
                events[type(event).__name__] += 1
                if hasattr(event, "reason"):
                    reasons[event.reason] += 1
                if hasattr(event, "fee"):
                    fees[event.fee > 0] += 1
        snapshots = fast.committed(dict(written)), slow.committed(dict(written))
        assert snapshots[0] == snapshots[1], f"batch {batches}: snapshots differ"
        batches += 1
        if batches % STATE_EVERY == 0:
            assert _state(fast) == _state(slow), f"state differs after batch {batches}"
    assert _state(fast) == _state(slow), "state differs at the end"
    stats_fast, stats_slow = dataclasses.asdict(fast.stats), dataclasses.asdict(slow.stats)
    assert stats_fast.pop("compiled") > 0
    assert stats_slow.pop("compiled") == 0
    assert stats_fast == stats_slow

    # The stream really exercised both paths and the rare ones (else this proves nothing).
    decided = fast.stats.decided
    assert decided + fast.stats.dead_letters >= RECORDS_TOTAL
    # (0.4: the stream also holds the Python path's amends, cancel-alls, admins' deposits)
    assert fast.stats.compiled >= 0.4 * decided, fast.stats
    assert fast.stats.compiled <= 0.9 * decided, fast.stats  # the Python path decided plenty
    assert fast.stats.duplicates > 1_000, fast.stats
    assert fast.stats.dead_letters > 500, fast.stats
    assert fast.stats.snapshots >= 10, fast.stats
    assert set(events) == {
        "Deposited", "WithdrawalRequested", "WithdrawalPaid", "WithdrawalReleased",
        "OrderAccepted", "OrderRejected", "CancelRequested", "FillSettled", "HoldReleased",
        "CommandRejected", "OrderAmended", "AmendSettled",
    }, events  # fmt: skip
    assert min(events.values()) >= 50, events
    expected_reasons = {
        Reason.INSUFFICIENT_FUNDS, Reason.BELOW_MIN_NOTIONAL, Reason.UNKNOWN_ACCOUNT,
        Reason.UNKNOWN_ASSET, Reason.AMOUNT_NOT_POSITIVE, Reason.AMOUNT_OVERFLOW,
        Reason.UNKNOWN_INSTRUMENT, Reason.INSTRUMENT_HALTED, Reason.INSTRUMENT_KIND_UNSUPPORTED,
        Reason.PRICE_NOT_POSITIVE, Reason.QTY_NOT_POSITIVE, Reason.UNKNOWN_ORDER,
        Reason.INVALID_FILL, Reason.CANCEL_ALREADY_REQUESTED, Reason.UNKNOWN_WITHDRAWAL,
        Reason.OPEN_ORDERS_MAX, Reason.FORBIDDEN, Reason.MAKER_CHECKER, Reason.AMEND_QTY_TOO_LOW,
    }  # fmt: skip
    assert expected_reasons <= set(reasons), expected_reasons - set(reasons)
    assert fees[True] > 1_000 and fees[False] > 1_000, fees
    hot_fast = fast.live[account_partition(HOT, PARTITIONS)].book.accounts[HOT]
    hot_slow = slow.live[account_partition(HOT, PARTITIONS)].book.accounts[HOT]
    assert isinstance(hot_fast.outcomes, OrderedDict), "the window never overflowed"
    assert isinstance(hot_slow.outcomes, OrderedDict)
    assert len(hot_fast.outcomes) == COMMAND_IDS_MAX
    assert min(stream.kinds.values()) >= 100, stream.kinds
    continuations = [o for o in got_all if o.topic == fast.commands_topic]
    assert len(continuations) >= 10, "no cancel-all needed a continuation"


@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_path_equals_python_domain_in_small_batches(seed: int) -> None:
    """Batches of one to a few records (every kernel call boundary), the real bounds."""
    settings = dataclasses.replace(settings_module.load(), topic_prefix="twin-")
    codec = Codec.offline()
    fast = _processor(settings, codec, compiled_path=True)
    slow = _processor(settings, codec, compiled_path=False)
    stream = Stream(
        seed, PARTITIONS, settings.topic(ACCOUNT_COMMANDS), settings.topic(SETTLEMENTS), codec
    )
    twin_stream_batch_max = 4
    records = [stream.record(i) for i in range(6_000)]
    index = 0
    while index < len(records):
        size = 1 + (index * 7 + seed) % twin_stream_batch_max
        batch = records[index : index + size]
        assert fast.process(batch) == slow.process(batch), f"records {index}..{index + size}"
        fast.committed({})
        slow.committed({})
        index += size
    assert _state(fast) == _state(slow)
    assert 0 < fast.stats.compiled < fast.stats.decided
