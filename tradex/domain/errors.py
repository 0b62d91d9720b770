"""Named domain errors. Command methods return rejection events; these are for broken records."""

from __future__ import annotations

from tradex.domain.types import Reason


class DomainError(Exception):
    """A command cannot be decided; ``reason`` is the code the rejection event carries."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class InvalidRecord(ValueError):
    """A command, event or order request violates its own field rules (validate())."""
