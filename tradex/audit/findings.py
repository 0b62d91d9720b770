"""What a check finds before it is placed: a rule, a record number of the scan, a text.

Checks work on the scan's record numbers (``g``, see :mod:`.scan`); the verifier turns each
:class:`Finding` into a :class:`~tradex.audit.violations.Violation` naming the record's
topic, partition, offset and event id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

FINDINGS_PER_CHECK_MAX = 1_000  # kept per check and kind; the count goes on


class Finding(NamedTuple):
    check: str
    g: int  # the record's number in the scan; -1: a whole stream (``place``) or the log
    message: str
    place: tuple[str, int] | None = None  # (topic, partition) when g is -1


class Findings:
    """Findings of the checks, bounded per check (the count is exact)."""

    def __init__(self) -> None:
        self.kept: list[Finding] = []
        self.counts: dict[str, int] = {}

    def add(self, check: str, g: int, message: str, place: tuple[str, int] | None = None) -> None:
        count = self.counts.get(check, 0)
        self.counts[check] = count + 1
        if count < FINDINGS_PER_CHECK_MAX:
            self.kept.append(Finding(check, int(g), message, place))

    def many(self, check: str, gs: np.ndarray, message: str | Callable[[int], str]) -> None:
        """One finding per record of ``gs``: the same message, or ``message(j)`` for the
        j-th (asked only for the findings kept)."""
        count = self.counts.get(check, 0)
        self.counts[check] = count + len(gs)
        room = max(FINDINGS_PER_CHECK_MAX - count, 0)
        for j, g in enumerate(gs[:room].tolist()):
            text = message if isinstance(message, str) else message(j)
            self.kept.append(Finding(check, g, text))

    def total(self) -> int:
        return sum(self.counts.values())
