"""The compiled path's wrapper and the kernel's small parts (the twin test compares the
whole decision: test_compiled_twin.py)."""

from __future__ import annotations

import dataclasses
import logging
import random
import sys
import weakref
from typing import Any, cast

import pytest
from confluent_kafka import Message

from tradex.commands import _account_kernel, compiled
from tradex.commands.client import encode_command
from tradex.commands.processor import AccountProcessor
from tradex.commands.reference_table import ReferenceFollower
from tradex.domain import Deposit, ReferenceData
from tradex.domain.ids import OFFSET_MAX, PARTITION_MAX, UNIX_MS_MAX, event_id
from tradex.domain.types import INT64_MAX
from tradex.infra import settings as settings_module
from tradex.log.ids import EventSource
from tradex.log.keys import account_partition
from tradex.log.topics import ACCOUNT_COMMANDS
from tradex.schemas.codec import Codec

from .twin_stream import T0, reference_commands

CODEC = Codec.offline()


class _Reference:
    def __init__(self) -> None:
        self.reference = ReferenceData()
        for command in reference_commands():
            self.reference.decide(command)

    def catch_up(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _processor(compiled_path: bool = True, partitions: int = 2) -> AccountProcessor:
    settings = dataclasses.replace(settings_module.load(), topic_prefix="unit-")
    processor = AccountProcessor(
        settings, CODEC, cast(ReferenceFollower, _Reference()), partitions=partitions,
        producer="accounts/unit", snapshot_events=0, compiled=compiled_path,
    )  # fmt: skip
    processor.assign_empty(list(range(partitions)))
    return processor


def test_the_registry_matches_the_kernel_layouts() -> None:
    assert compiled.layout_problems(CODEC) == []
    assert _processor().kernel is not None


def test_a_schema_the_kernel_does_not_know_leaves_the_python_path(monkeypatch, caplog) -> None:
    layouts = dict(compiled.LAYOUTS)
    fields = layouts["Deposited"]
    layouts["Deposited"] = (*fields[:-1], "memo:string", fields[-1])  # a field it never wrote
    monkeypatch.setattr(compiled, "LAYOUTS", layouts)
    problems = compiled.layout_problems(CODEC)
    assert problems == [
        "Deposited: the schema differs from the kernel's layout (field 8: 'hash:fixed(32)')"
    ]
    with caplog.at_level(logging.WARNING):
        processor = _processor()
    assert processor.kernel is None
    assert "compiled path off" in caplog.text
    settings = processor.settings
    deposit = Deposit("d", 1, T0, "USD", 5)
    message = Message(
        topic=settings.topic(ACCOUNT_COMMANDS), partition=account_partition(1, 2), offset=0,
        value=encode_command(CODEC, deposit), key=b"1",
    )  # fmt: skip
    assert len(processor.process([message])) == 1
    assert processor.stats.decided == 1
    assert processor.stats.compiled == 0


def test_enum_symbols_that_differ_between_records_are_refused(monkeypatch) -> None:
    real = compiled.record_layout

    def moved(codec: Codec, name: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
        fields, symbols = real(codec, name)
        if name == "NewOrder":
            symbols = {**symbols, "side": ("SELL", "BUY")}
        return fields, symbols

    monkeypatch.setattr(compiled, "record_layout", moved)
    assert any(p.startswith("enum Side") for p in compiled.layout_problems(CODEC))


def test_event_ids_are_the_domain_layout() -> None:
    rng = random.Random(7)
    time_ns_max = min((UNIX_MS_MAX + 1) * 1_000_000 - 1, INT64_MAX)  # an int64 in the record
    cases = [(0, 0, 0, 0, 0), (time_ns_max, 63, PARTITION_MAX, OFFSET_MAX, 255)]
    for _ in range(2_000):
        cases.append(
            (
                rng.randrange(0, time_ns_max + 1),
                rng.choice((EventSource.ACCOUNT_COMMANDS, EventSource.SETTLEMENTS)),
                rng.randrange(PARTITION_MAX + 1),
                rng.choice((rng.randrange(1 << 40), rng.randrange(OFFSET_MAX + 1))),
                rng.randrange(256),
            )
        )
    for case in cases:
        assert _account_kernel.event_id(*case) == event_id(*case), case
    with pytest.raises(ValueError):
        _account_kernel.event_id(-1, 0, 0, 0, 0)


def test_accounts_are_routed_as_kafka_does() -> None:
    rng = random.Random(11)
    ids = [1, 7, 42, 10**6, 2**63 - 1, *(rng.randrange(1, 2**63) for _ in range(2_000))]
    for partitions in (1, 2, 3, 12, 4096):
        for account in ids:
            expected = account_partition(account, partitions)
            assert _account_kernel.account_partition(account, partitions) == expected


def test_an_event_keyed_by_the_account_whatever_the_record_key() -> None:
    """A record without the account as its key still gets events keyed by the account (the
    Python path routes by account id, not by the record's key)."""
    fast, slow = _processor(), _processor(compiled_path=False)
    topic = fast.settings.topic(ACCOUNT_COMMANDS)
    partition = account_partition(3, 2)
    values = [encode_command(CODEC, Deposit(f"d{i}", 3, T0, "USD", 5)) for i in range(4)]
    keys = (None, b"03", b"3", b"x")
    messages = [
        Message(topic=topic, partition=partition, offset=i, value=value, key=key)
        for i, (value, key) in enumerate(zip(values, keys, strict=True))
    ]
    got = fast.process(messages)
    assert got == slow.process(messages)
    assert [output.key for output in got] == [b"3"] * 4
    assert fast.stats.compiled == 4


def test_message_fields_are_read_in_place_or_through_the_methods(monkeypatch) -> None:
    """The probe finds where this confluent-kafka's Message keeps its fields; when it cannot
    (here: probes that disagree), the kernel calls the methods and decides the same."""
    processor = _processor()
    assert processor.kernel is not None
    layout = processor.kernel.message_layout()
    assert layout is not None
    assert len(set(layout)) == 5
    probes = compiled.message_probes()
    first = probes[0]
    wrong = (first[0], first[1], first[2], first[3], first[4], first[5] + 1)  # offset differs
    monkeypatch.setattr(compiled, "message_probes", lambda: (wrong, probes[1]))
    fast, slow = _processor(), _processor(compiled_path=False)
    assert fast.kernel is not None
    assert fast.kernel.message_layout() is None
    topic = fast.settings.topic(ACCOUNT_COMMANDS)
    messages = []
    for i, account in enumerate((1, 2, 3, 4)):
        value = encode_command(CODEC, Deposit(f"d{i}", account, T0, "USD", 5))
        partition = account_partition(account, 2)
        key = str(account).encode()
        messages.append(Message(topic=topic, partition=partition, offset=i, value=value, key=key))
    assert fast.process(messages) == slow.process(messages)
    assert fast.stats.compiled == 4


def test_a_processor_with_its_kernel_is_freed_without_the_collector() -> None:
    """The processor freezes the collector's generations after each batch: a reference cycle
    through the kernel would never be freed (the kernel holds none of the processor's
    objects but its live-partition dict)."""
    processor = _processor()
    topic = processor.settings.topic(ACCOUNT_COMMANDS)
    value = encode_command(CODEC, Deposit("d", 3, T0, "USD", 5))
    message = Message(topic=topic, partition=account_partition(3, 2), offset=0, value=value)
    assert processor.process([message])
    processor.committed({})
    assert processor.stats.compiled == 1
    alive = weakref.ref(processor)
    books = [live.book for live in processor.live.values()]
    del processor
    assert alive() is None
    held = [sys.getrefcount(books[0]), sys.getrefcount(books[1])]  # (outside pytest's rewrite)
    assert held == [2, 2]  # the list's reference and the call's


def test_decide_checks_its_arguments() -> None:
    kernel: Any = _processor().kernel
    with pytest.raises(TypeError):
        kernel.decide((), 0, [])
    with pytest.raises(TypeError):
        kernel.decide([], 0, ())
    with pytest.raises(IndexError):
        kernel.decide([], 1, [])
    assert kernel.decide([], 0, []) == 0
    assert kernel.take_counts() == (0, 0, 0)


def test_the_kernel_refuses_a_bad_spec() -> None:
    spec = compiled.kernel_spec(_processor(compiled_path=False))
    assert _account_kernel.Kernel(spec) is not None
    for key, value, error in (
        ("header_deposited", b"\x00\x00", ValueError),
        ("side_valid", b"", ValueError),
        ("partitions", 0, ValueError),
        ("lives", [], TypeError),
        ("empty_outcome", (1,), TypeError),
    ):
        with pytest.raises(error):
            _account_kernel.Kernel({**spec, key: value})
    broken = dict(spec)
    del broken["wire_deposit"]
    with pytest.raises(KeyError):
        _account_kernel.Kernel(broken)
