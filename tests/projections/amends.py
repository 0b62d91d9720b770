"""An order amended, its amend confirmed by the engine, then ended: one account's events
written by hand (the hold rises with ``OrderAmended``, falls with the ``AmendSettled`` of
the engine's ``AmendConfirmed``, the rest goes back with ``HoldReleased``), encoded and
decoded as a projector's runner gets them: row events and a columnar batch.

USD of account :data:`ACCOUNT`, (available, held) after each event (:data:`BALANCES`):
deposit 100,000 → a buy of 10 lots at 100 holding 10,000 → amended to 15 lots at 60,
held for the bounds (15 lots at 100): +5,000 → the engine's terms confirmed, held for 15
at 60: 6,000 released → a confirmation releasing nothing → the end, 9,000 released (fees
left out: the folds do not look at them).
"""

from __future__ import annotations

from typing import Any

from tradex import domain
from tradex.domain.types import EndReason, OrderKind, Side, StpMode
from tradex.log.batch import RecordBatch
from tradex.log.records import LogRecord, Place
from tradex.log.topics import ACCOUNT_EVENTS
from tradex.projections.projector import ColumnarBatch, Event, Projector
from tradex.schemas.codec import Codec, EnvelopeFields
from tradex.schemas.columns import STATUS_DECODED, ColumnReader

CODEC = Codec.offline()
T0 = 1_800_000_000_000_000_000
ACCOUNT, ORDER, INSTRUMENT = 7_001, 9_001, 1
PARTITION = 0
FIRST_OFFSET = 40  # the records' offsets from here (a partition's log need not start at 0)
RELEASED = 6_000  # by the first AmendSettled
AMEND_SETTLED_AT = 3  # its index among the events
BALANCES = ((100_000, 0), (90_000, 10_000), (85_000, 15_000), (91_000, 9_000),
            (91_000, 9_000), (100_000, 0))  # fmt: skip


def _settled(at_ns: int, amend_ns: int, price: int, qty: int, released: int) -> Any:
    return domain.AmendSettled(
        command_id=f"amend/{ORDER}/{amend_ns}", account_id=ACCOUNT, event_time_ns=at_ns,
        order_id=ORDER, instrument_id=INSTRUMENT, price=price, qty=qty, price_bound=price,
        qty_bound=qty, hold_asset="USD", hold_released=released, amend_time_ns=amend_ns,
    )  # fmt: skip


def bodies() -> list[Any]:
    """The account's events, in log order."""
    external = domain.EXTERNAL_ACCOUNT
    return [
        domain.Deposited("a-d", ACCOUNT, T0, "USD", 100_000, (
            domain.Posting(ACCOUNT, "USD", 100_000), domain.Posting(external, "USD", -100_000),
        )),
        domain.OrderAccepted(
            "a-o", ACCOUNT, T0 + 1, ORDER, INSTRUMENT, Side.BUY, OrderKind.GTC, 100, 10, 0,
            StpMode.DECREMENT, "BTC", "USD", 10, 1_000, 1_000, 2_000, "USD", 10_000,
        ),
        domain.OrderAmended(
            "a-m", ACCOUNT, T0 + 2, ORDER, INSTRUMENT, 60, 15, 100, 15, "USD", 5_000,
        ),
        _settled(T0 + 3, T0 + 2, 60, 15, RELEASED),
        # a later amend that changed nothing (its OrderAmended, adding nothing, left out)
        _settled(T0 + 4, T0 + 4, 60, 15, 0),
        domain.HoldReleased("end/9001", ACCOUNT, T0 + 5, ORDER, "USD", 9_000, EndReason.CANCELLED),
    ]  # fmt: skip


def settlements() -> list[Any]:
    """The engine's records on ``settlements`` the account settled: the two
    ``AmendConfirmed`` (settled by the AmendSettled), the ``OrderEnded`` (the HoldReleased)."""
    return [
        domain.AmendConfirmed(ACCOUNT, ORDER, INSTRUMENT, 60, 15, T0 + 2, T0 + 3),
        domain.AmendConfirmed(ACCOUNT, ORDER, INSTRUMENT, 60, 15, T0 + 4, T0 + 4),
        domain.OrderEnded(ACCOUNT, ORDER, INSTRUMENT, EndReason.CANCELLED, T0 + 5),
    ]


def records(found: list[Any] | None = None) -> list[LogRecord]:
    """The events as records of ``account-events[PARTITION]``, each its own event id."""
    out = []
    for i, body in enumerate(bodies() if found is None else found):
        event_id = f"0190f0c2-0000-7000-8000-{i + 1:012d}"
        envelope = EnvelopeFields(event_id, "cause", "corr", "accounts/0", i + 1)
        data = CODEC.encode_domain(body, envelope).data
        out.append(LogRecord(ACCOUNT_EVENTS, PARTITION, FIRST_OFFSET + i, 0, b"7", data))
    return out


def as_read(
    model: type[Projector], found: list[LogRecord] | None = None
) -> tuple[list[Event], ColumnarBatch, dict[Place, int]]:
    """What ``model`` gets from its runner for the records: row events, the columnar batch
    (decoded in C by ``model``'s specs), and the positions they bring it to."""
    log = records() if found is None else found
    events = []
    for record in log:
        envelope, body = CODEC.decode_domain(record.value or b"")
        events.append(Event(record.topic, record.partition, record.offset, envelope, body))
    batch = RecordBatch.from_records(log, model.topics)
    decoded = ColumnReader(CODEC, model.column_specs, model.ignores).decode(
        batch.values, batch.value_offsets
    )
    assert set(decoded.status.tolist()) == {STATUS_DECODED}
    positions = {(ACCOUNT_EVENTS, PARTITION): log[-1].offset + 1}
    return events, ColumnarBatch(batch, decoded.types), positions
