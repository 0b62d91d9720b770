"""Opening an archive for the audit tools: ``open_archive(path) -> LogSource``.

The archive reader itself is :class:`tradex.log.archive.ArchiveLog` (the log's second
:class:`~tradex.log.source.LogSource`); docs/archive.md.
"""

from __future__ import annotations

from pathlib import Path

from tradex.log.archive import ArchiveError, ArchiveLog
from tradex.log.source import LogSource

__all__ = ["ArchiveError", "ArchiveLog", "open_archive"]


def open_archive(path: str | Path) -> LogSource:
    """The log held by the archive at ``path``; ArchiveError (naming the file and place)
    when it is not a complete TradeX archive."""
    return ArchiveLog(Path(path))
