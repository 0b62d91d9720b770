"""The matching re-run: ``order-requests`` through fresh engines, compared byte for byte.

For every ``order-requests`` partition p, its inputs up to the matcher group's committed
position (the inputs whose outputs are on the log: offsets and outputs commit in one
transaction; the end of the partition if the group never committed) go through a fresh
:class:`~tradex.matching.partition.PartitionEngine` — the service's own code, the C fold —
and what it writes is compared with the log, per output stream of ``matcher/<p>``:
``engine-events[p]`` and, in every ``settlements`` partition, the records whose envelope
producer is ``matcher/<p>`` (the scan's chains, :mod:`.scan`). Each stream is compared as
one concatenation of its records (one ``memcmp``); on a difference, the first differing
record is named (``rerun``). ``tradex matching verify`` does the same per partition,
record by record; this is its fast form over the scan the audit already made.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradex.audit.findings import Findings
from tradex.audit.scan import Gathered, fingerprints_of
from tradex.log.batch import FLAG_KEY_NULL, FLAG_VALUE_NULL
from tradex.log.source import LogSource, Place
from tradex.log.topics import (
    DEAD_LETTERS,
    ENGINE_EVENTS,
    MATCHER_GROUP,
    ORDER_REQUESTS,
    SETTLEMENTS,
)
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, PartitionEngine, Topics
from tradex.matching.recovery import REPLAY_BATCH_MAX
from tradex.matching.verify import summary
from tradex.schemas.codec import Codec

LOGICAL_TOPICS = Topics(ORDER_REQUESTS, ENGINE_EVENTS, SETTLEMENTS, DEAD_LETTERS)


@dataclass
class RerunFigures:
    inputs: int = 0
    outputs: int = 0
    seconds: float = 0.0
    input_ends: dict[int, int] = field(default_factory=dict)  # per partition

    @property
    def inputs_per_s(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0


def input_ends(source: LogSource, ends: Mapping[Place, int]) -> dict[int, int]:
    """Per ``order-requests`` partition, how far to re-run: the matcher group's committed
    position, else (never committed, or a source without groups) the end."""
    partitions = [p for (topic, p) in ends if topic == ORDER_REQUESTS]
    try:
        committed = source.committed(MATCHER_GROUP, ORDER_REQUESTS, partitions)
    except Exception:  # an archive may hold no consumer groups
        committed = {}
    found = {}
    for p in partitions:
        end = ends[(ORDER_REQUESTS, p)]
        position = committed.get(p, -1)
        found[p] = end if position < 0 else min(position, end)
    return found


def rerun_matching(
    source: LogSource,
    codec: Codec,
    found: Gathered,
    ends: Mapping[Place, int],
    out: Findings,
    config: BookConfig | None = None,
    progress: object = None,
) -> RerunFigures:
    """Re-run every partition (module doc); findings go to ``out``."""
    config = config or BookConfig()
    figures = RerunFigures(input_ends=input_ends(source, ends))
    settlement_partitions = sum(1 for (topic, _p) in ends if topic == SETTLEMENTS)
    started = time.perf_counter()
    for partition, end in sorted(figures.input_ends.items()):
        engine = PartitionEngine(
            partition, codec, LOGICAL_TOPICS, max(settlement_partitions, 1),
            OutputBuffers(config.orders_max), config,
        )  # fmt: skip
        engine_out: list[bytes] = []
        settle_out: list[list[bytes]] = [[] for _ in range(settlement_partitions)]
        place = (ORDER_REQUESTS, partition)
        if end > 0:
            for batch in source.read_columns({place: 0}, {place: end}, REPLAY_BATCH_MAX):
                n = len(batch)
                outputs = engine.apply_columns(
                    batch.offset.tolist(), _items(batch.keys, batch.key_offsets, batch.flags,
                    FLAG_KEY_NULL), _items(batch.values, batch.value_offsets, batch.flags,
                    FLAG_VALUE_NULL), lambda i, b=batch: int(b.timestamp_ms[i]),  # type: ignore[misc]
                )  # fmt: skip
                figures.inputs += n
                figures.outputs += len(outputs)
                engine_out += [o.value for o in outputs if o.topic == ENGINE_EVENTS]
                for o in outputs:
                    if o.topic == SETTLEMENTS and settle_out:
                        settle_out[o.partition].append(o.value)
                if callable(progress):
                    progress(n)
        compare(codec, found, (ENGINE_EVENTS, partition, ""), engine_out, out)
        for s, values in enumerate(settle_out):
            compare(codec, found, (SETTLEMENTS, s, engine.producer), values, out)
    figures.seconds = time.perf_counter() - started
    return figures


def _items(data: bytes, offsets: np.ndarray, flags: np.ndarray, null: int) -> list[Any]:
    """The items of a concatenation as bytes (None where ``flags`` mark them null)."""
    bounds = offsets.tolist()
    items: list[Any] = [data[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]
    for i in np.flatnonzero(flags & null).tolist():
        items[i] = None
    return items


def compare(
    codec: Codec,
    found: Gathered,
    stream: tuple[str, int, str],
    expected: list[bytes],
    out: Findings,
) -> bool:
    """The log's records of ``stream`` against the re-run's, by fingerprint (length, header,
    hash: see :class:`~tradex.audit.scan.Fingerprints`); a finding at the first
    difference. True if identical."""
    gs = found.chains.get(stream, np.zeros(0, np.int64))
    logged = found.fingerprints(gs)
    at = logged.first_difference(fingerprints_of(expected))
    if at < 0:
        return True
    topic, partition, producer = stream
    whose = f" of {producer}" if producer else ""
    n_log = len(logged)
    if at < min(n_log, len(expected)):
        got = found.value(int(gs[at]))
        out.add("rerun", int(gs[at]),
                f"the matching re-run writes a different record{whose} here: expected "
                f"{summary(codec, expected[at])}; the log has {summary(codec, got)}")  # fmt: skip
    elif n_log > len(expected):
        out.add("rerun", int(gs[at]),
                f"the log holds {n_log - len(expected)} records{whose} the matching re-run "
                "does not write, from here")  # fmt: skip
    else:
        out.add("rerun", -1,
                f"the matching re-run writes {len(expected) - n_log} records{whose} the log "
                f"does not hold (after its {n_log} records), the first: "
                f"{summary(codec, expected[n_log])}", (topic, partition))  # fmt: skip
    return False
