"""Changes to a recorded ``order-requests`` stream, expressed as rewrites of its records.

Pure: a :class:`Rewriter` takes each decoded input (in log order) and returns the records
to feed the engine in its place — the record itself (same bytes when nothing changes), a
re-encoded copy, or extra ``InstrumentRules`` before it:

- ``band``: every ``InstrumentRules`` of the instrument carries this price band (bps);
- ``halts``: from a point of the stream (a position or a request time) to another, the
  instrument is halted: a halted copy of its last rules is inserted before the first input
  at or past the start, its own rules arriving meanwhile are rewritten as halted, and a
  copy with the status it would have had is inserted at the end;
- ``stp``: every ``NewOrder`` uses this self-trade-prevention mode.

Book capacities are not a rewrite of records but of the engine (``BookConfig``); fee rates
are applied afterwards (:mod:`.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tradex.audit.timetravel import AsOf
from tradex.domain.ids import SOURCE_MAX, event_id
from tradex.domain.orders import InstrumentRules, NewOrder
from tradex.domain.types import InstrumentStatus, StpMode
from tradex.log.keys import instrument_key
from tradex.schemas.codec import Codec
from tradex.schemas.envelope import Envelope, EnvelopeFields

# The event-id source of the inputs a backtest adds (rules copies, strategy orders): they
# are never on a log, so they take the last source number, far from the stages' own
# (tradex.log.ids.EventSource).
ADDED_INPUT_SOURCE = SOURCE_MAX


@dataclass(frozen=True)
class Halt:
    instrument_id: int
    start: AsOf
    end: AsOf | None  # None: to the end of the window

    def __post_init__(self) -> None:
        assert self.instrument_id > 0, self.instrument_id


@dataclass(frozen=True)
class Changes:
    band: dict[int, int] = field(default_factory=dict)  # instrument -> price band bps
    halts: tuple[Halt, ...] = ()
    stp: StpMode | None = None

    @property
    def empty(self) -> bool:
        return not self.band and not self.halts and self.stp is None

    def describe(self) -> list[str]:
        lines = [f"instrument {i}: price band {bps} bps" for i, bps in sorted(self.band.items())]
        for h in self.halts:
            end = "the end" if h.end is None else _point(h.end)
            lines.append(f"instrument {h.instrument_id}: halted from {_point(h.start)} to {end}")
        if self.stp is not None:
            lines.append(f"every new order: self-trade prevention {self.stp.value}")
        return lines


def _point(at: AsOf) -> str:
    return f"offset {at.offset}" if at.offset is not None else f"time {at.time_ns} ns"


def reached(at: AsOf, offset: int, time_ns: int) -> bool:
    """Is the input at ``offset`` with request time ``time_ns`` at or past ``at``?"""
    if at.offset is not None:
        return offset >= at.offset
    assert at.time_ns is not None
    return time_ns >= at.time_ns


class Rewriter:
    """Applies :class:`Changes` to one partition's inputs, in log order."""

    def __init__(self, codec: Codec, changes: Changes) -> None:
        self.codec = codec
        self.changes = changes
        self.rules: dict[int, InstrumentRules] = {}  # instrument -> its last rules as sent
        self.halted: dict[int, Halt] = {}  # halts in force
        self.done: set[Halt] = set()  # halts over
        self.inserted = 0
        self.rewritten = 0

    def records(
        self,
        offset: int,
        time_ns: int,
        decoded: tuple[Envelope, Any] | None,
        key: bytes | None,
        value: bytes | None,
    ) -> list[tuple[bytes | None, bytes | None]]:
        """(key, value) records to feed in place of this input (``decoded``: None when it
        does not decode as an order request; it then goes as it is)."""
        out: list[tuple[bytes | None, bytes | None]] = []
        for halt in self.changes.halts:
            if halt in self.done:
                continue
            if halt not in self.halted.values() and reached(halt.start, offset, time_ns):
                self.halted[halt.instrument_id] = halt
                out += self._rules_copy(halt.instrument_id, offset, time_ns)
            if halt.end is not None and reached(halt.end, offset, time_ns):
                if self.halted.get(halt.instrument_id) is halt:
                    del self.halted[halt.instrument_id]
                self.done.add(halt)
                out += self._rules_copy(halt.instrument_id, offset, time_ns)
        if decoded is None:
            return [*out, (key, value)]
        envelope, obj = decoded
        changed = obj
        if isinstance(obj, InstrumentRules):
            self.rules[obj.instrument_id] = obj
            changed = self._rules(obj)
        elif isinstance(obj, NewOrder) and self.changes.stp is not None:
            changed = obj._replace(stp_mode=self.changes.stp)
        if changed == obj:
            return [*out, (key, value)]
        self.rewritten += 1
        return [*out, (instrument_key(changed.instrument_id), self._encode(changed, envelope))]

    def _rules(self, rules: InstrumentRules) -> InstrumentRules:
        """The rules as the changes want them now."""
        band = self.changes.band.get(rules.instrument_id)
        if band is not None:
            rules = rules._replace(price_band_bps=band)
        if rules.instrument_id in self.halted:
            rules = rules._replace(status=InstrumentStatus.HALTED)
        return rules

    def _rules_copy(
        self, instrument_id: int, offset: int, time_ns: int
    ) -> list[tuple[bytes | None, bytes | None]]:
        """A copy of the instrument's last rules as the changes want them now (nothing
        before the instrument's first rules: its book does not exist yet)."""
        last = self.rules.get(instrument_id)
        if last is None:
            return []
        rules = self._rules(last)._replace(event_time_ns=time_ns)
        self.inserted += 1
        eid = event_id(time_ns, ADDED_INPUT_SOURCE, 0, offset, self.inserted % 256)
        fields = EnvelopeFields(eid, "", "", "backtest", 0)
        data = self.codec.encode_domain(rules, fields).data
        return [(instrument_key(instrument_id), data)]

    def _encode(self, obj: Any, envelope: Envelope) -> bytes:
        fields = EnvelopeFields(envelope.event_id, envelope.causation_id, envelope.correlation_id,
                                envelope.producer, envelope.seq, envelope.trace_parent)  # fmt: skip
        return self.codec.encode_domain(obj, fields, envelope.prev_hash).data
