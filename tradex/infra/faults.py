"""Fault injection for crash tests: ``TRADEX_FAULT=<point>:<n>`` makes the process exit
abruptly (``os._exit(137)``, as a SIGKILL would leave it) when it reaches ``point`` for the
n-th time (counted by the caller, e.g. its n-th batch).

Points: ``after_produce`` and ``before_commit`` (a Kafka stage, :mod:`tradex.infra.stage`),
``sink_before_commit`` (a projector: its batch's rows written, the sink transaction not
committed, :mod:`tradex.projections`).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

POINTS = ("after_produce", "before_commit", "sink_before_commit")


class Fault:
    """Parsed ``TRADEX_FAULT`` (empty: never fires)."""

    def __init__(self, spec: str) -> None:
        self.point = ""
        self.count = 0
        if spec:
            point, _, count = spec.partition(":")
            if point not in POINTS or not count.isdigit():
                raise ValueError(f"TRADEX_FAULT must be <{'|'.join(POINTS)}>:<n>, got {spec!r}")
            self.point, self.count = point, int(count)

    @classmethod
    def from_env(cls) -> Fault:
        return cls(os.environ.get("TRADEX_FAULT", ""))

    def check(self, point: str, index: int) -> None:
        """Exit if ``point`` is the chosen one and this is its ``index``-th time (0-based)
        or later."""
        assert point in POINTS, point
        if self.point == point and index + 1 >= self.count:
            log.error("TRADEX_FAULT: exiting at %s, time %d", point, index + 1)
            os._exit(137)
