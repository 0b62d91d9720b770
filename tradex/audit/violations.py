"""What an audit check reports: one violation, naming the record it concerns."""

from __future__ import annotations

from typing import NamedTuple


class Violation(NamedTuple):
    """One broken rule at one place of the log.

    ``offset`` is the Kafka offset (or the archive's position) of the record at fault, -1
    when the violation concerns a whole stream (e.g. a missing tail); ``event_id`` is empty
    when the record has none or could not be decoded.
    """

    check: str  # a stable name, e.g. "chain", "journal_balanced", "checkpoint_signature"
    topic: str
    partition: int
    offset: int
    event_id: str
    message: str

    def place(self) -> str:
        where = f"{self.topic}[{self.partition}]"
        if self.offset >= 0:
            where += f"@{self.offset}"
        if self.event_id:
            where += f" ({self.event_id})"
        return where

    def __str__(self) -> str:
        return f"{self.check}: {self.place()}: {self.message}"
