"""What a projector is: the topics it reads, a pure fold, and a sink that keeps positions.

A projector turns a batch of decoded log records into rows of its read model and writes
those rows **and the log positions they bring it to in one sink transaction**, so a
read model always reflects exactly a prefix of each partition it reads. On start it
resumes from the positions stored in its sink (never from consumer-group offsets), so
replaying records it has already folded changes nothing.

Each read model exists in numbered *versions* side by side in its store (a PostgreSQL
schema, a Redis key prefix, a ClickHouse database per version). Readers see the *live*
version; a rebuild fills the next version from the start of the log and then makes it
live in one atomic step (:meth:`Projector.make_live`).

Store-specific bases (:mod:`.pg_store`, ...) implement positions, versions and the
switch; a concrete projector adds its tables and its fold.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from tradex.infra.settings import Settings
from tradex.log.batch import RecordBatch
from tradex.log.source import Place
from tradex.schemas.columns import ColumnSpec, TypeColumns
from tradex.schemas.envelope import Envelope

VERSION_MAX = 1_000_000
BATCH_RECORDS_MAX = 20_000  # records per batch (one sink transaction) of a row projector
# of a columnar projector: no object per record, and a sink insert costs per batch too
COLUMNAR_BATCH_RECORDS_MAX = 1_000_000
NAMESPACE_CHARS_MAX = 40  # room for "_v<version>" and a table name in a 63-char identifier


class Event(NamedTuple):
    """One decoded record of the log, where it was read."""

    topic: str  # logical name
    partition: int
    offset: int
    envelope: Envelope
    body: Any  # the domain record (tradex.domain NamedTuple)


@dataclass(frozen=True)
class ColumnarBatch:
    """A batch for a columnar projector: the records read (positions of every record) and
    the decoded ones by type (each a :class:`~tradex.schemas.columns.TypeColumns` whose
    ``rows`` index ``records``). Records dead-lettered or of types the projector ignores
    are in ``records`` only."""

    records: RecordBatch
    types: dict[type, TypeColumns]

    def __len__(self) -> int:
        """The decoded records (events)."""
        return sum(len(columns) for columns in self.types.values())

    def partition(self, cls: type) -> np.ndarray:
        """The partition of each record of type ``cls`` (int32)."""
        return self.records.partition[self.types[cls].rows]

    def offset(self, cls: type) -> np.ndarray:
        """The offset of each record of type ``cls`` (int64)."""
        return self.records.offset[self.types[cls].rows]

    def select(self, keep: np.ndarray) -> ColumnarBatch:
        """The decoded records where ``keep`` (bool per record of ``records``) is true."""
        types = {}
        for cls, columns in self.types.items():
            kept = keep[columns.rows]
            if kept.any():
                types[cls] = columns if kept.all() else columns.select(kept)
        return ColumnarBatch(self.records, types)


class Versions(NamedTuple):
    """The versions of one read model in its store (None: there is none)."""

    live: int | None
    building: int | None


class SchemaOutdated(RuntimeError):
    """A read model version made by older code, in a shape this code does not write (a
    table without a column it writes, entries of an older layout): refused with the
    rebuild command, never written to half old and half new."""


class ProjectorBusy(RuntimeError):
    """Another process is writing this version of the read model."""


class VersionSwitched(RuntimeError):
    """A live writer's version is no longer live (a rebuild switched readers): reopen at
    the live version."""


class SinkReset(RuntimeError):
    """The sink lost what the projector set up when it opened (Redis restarted or its
    scripts were flushed: the batch's script is unknown) and the batch wrote nothing:
    reopen and go on from the stored positions."""


_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]")


def namespace(settings: Settings, name: str) -> str:
    """The name of a read model in its store: the topic prefix (one exchange per prefix)
    and the projector name, as a plain lower-case identifier."""
    text = _NOT_IDENTIFIER.sub("_", f"{settings.topic_prefix}{name}".lower())
    if text[0].isdigit():
        text = f"x{text}"
    if len(text) > NAMESPACE_CHARS_MAX:
        raise ValueError(
            f"read model namespace {text!r} is longer than {NAMESPACE_CHARS_MAX} characters: "
            "use a shorter topic prefix"
        )
    return text


class Projector(ABC):
    """One version of one read model: open it, apply batches, switch readers to it."""

    name: ClassVar[str]  # the CLI name: `tradex run projector NAME`
    topics: ClassVar[tuple[str, ...]]  # logical names of the topics it reads
    # Record types it has no use for: the runner skips them by their wire header, without
    # decoding them (positions still move past them).
    ignores: ClassVar[frozenset[type]] = frozenset()
    # A columnar projector takes batches as columns (apply_columns): the runner reads them
    # in C and decodes each type of ``column_specs`` into columns, no object per record.
    columnar: ClassVar[bool] = False
    column_specs: ClassVar[Mapping[type, ColumnSpec]] = {}
    # records per batch when the caller does not say (at most BATCH_RECORDS_MAX, or
    # COLUMNAR_BATCH_RECORDS_MAX for a columnar projector)
    batch_records: ClassVar[int] = BATCH_RECORDS_MAX
    # A live follower begins a batch at most this often: under light load records then
    # gather for that long instead of going one small sink transaction each (whose fixed
    # cost, in this process and in the store, is most of a light load's CPU); under heavy
    # load a batch takes longer than this anyway. Its read model is that much later.
    batch_interval_s: ClassVar[float] = 0.0

    def __init__(self, settings: Settings, version: int) -> None:
        assert 0 < version <= VERSION_MAX, version
        self.settings = settings
        self.version = version
        self.namespace = namespace(settings, self.name)
        # True for the process that keeps the live version current: each batch then checks
        # (in its transaction) that this version is still live, else VersionSwitched.
        self.live_writer = False
        # True while a rebuild fills this version: the store may defer what only readers
        # need (secondary indexes) until finish().
        self.bulk_load = False
        self._stored: dict[Place, int] = {}  # positions as of the last batch written

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> dict[Place, int]:
        """Create this version's tables if missing, take the writer's lock (raise
        :class:`ProjectorBusy` if another process holds it), load what the fold needs, and
        return the stored positions (next offsets; a place not listed starts at 0)."""
        self._stored = self._open()
        return dict(self._stored)

    def apply(self, events: Sequence[Event], positions: Mapping[Place, int]) -> None:
        """Fold ``events`` (log order within each partition) and write their rows together
        with ``positions`` (the next offsets they bring each place to) in one transaction.

        Events below the stored positions were applied before: they are dropped, so a
        replayed prefix changes nothing. Positions never move back."""
        stored = self._stored
        fresh = [e for e in events if e.offset >= stored.get((e.topic, e.partition), 0)]
        moved = {p: o for p, o in positions.items() if o > stored.get(p, 0)}
        for event in fresh:
            place = (event.topic, event.partition)
            assert event.offset < moved.get(place, stored.get(place, 0)), (
                f"{place}@{event.offset} is not below the position the batch moves to"
            )
        if not moved:
            return
        self._apply(fresh, moved)
        stored.update(moved)

    def apply_columns(self, batch: ColumnarBatch, positions: Mapping[Place, int]) -> None:
        """:meth:`apply` for a columnar projector: the same guarantees (records below the
        stored positions dropped, positions never move back, one transaction), the records
        as columns."""
        assert self.columnar, f"{self.name} is not columnar"
        stored = self._stored
        records = batch.records
        fresh = records.offset >= records.bounds(stored, 0)
        moved = {p: o for p, o in positions.items() if o > stored.get(p, 0)}
        limit = records.bounds({**stored, **moved}, 0)
        for columns in batch.types.values():
            rows = columns.rows[fresh[columns.rows]]
            late = rows[records.offset[rows] >= limit[rows]]
            assert not len(late), (
                f"{records.place(int(late[0]))}@{int(records.offset[late[0]])} is not below "
                "the position the batch moves to"
            )
        if not moved:
            return
        self._apply_columns(batch if fresh.all() else batch.select(fresh), moved)
        stored.update(moved)

    def _apply_columns(self, batch: ColumnarBatch, positions: Mapping[Place, int]) -> None:
        """:meth:`apply_columns` of the store, given only new records and forward positions."""
        raise NotImplementedError(f"{self.name} is not columnar")

    @abstractmethod
    def _open(self) -> dict[Place, int]:
        """:meth:`open` of the store: the stored positions."""

    @abstractmethod
    def _apply(self, events: Sequence[Event], positions: Mapping[Place, int]) -> None:
        """:meth:`apply` of the store, given only new events and forward positions."""

    def finish(self) -> None:  # noqa: B027 (optional hook)
        """Complete what a bulk load deferred (e.g. build indexes), once the version holds
        everything it was filled with and before readers see it. Idempotent."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection and the writer's lock (nothing unwritten is kept)."""

    # -- versions ---------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def versions(cls, settings: Settings) -> Versions:
        """The live version readers see and the version a rebuild is filling, if any."""

    @abstractmethod
    def mark_building(self) -> None:
        """Record this version as the one a rebuild is filling (an interrupted rebuild
        finds and resumes it)."""

    @abstractmethod
    def make_live(self) -> None:
        """Point readers at this version, in one atomic step; record it as live."""

    @abstractmethod
    def drop(self) -> None:
        """Delete this version's data (a version readers see is never dropped)."""

    @abstractmethod
    def positions(self) -> dict[Place, int]:
        """The stored positions of this version, read without the writer's lock."""

    # -- verification -----------------------------------------------------------------------

    @abstractmethod
    def frozen(self) -> Frozen:
        """A consistent read of this version as it stands: its positions and its tables
        at exactly those positions, however the writer moves on meanwhile."""


class Frozen(ABC):
    """One version of a read model read consistently at :attr:`positions` (close it)."""

    positions: dict[Place, int]

    @abstractmethod
    def digests(self) -> dict[str, tuple[int, str]]:
        """Per table: (rows, a digest of its rows in key order)."""

    @abstractmethod
    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of ``table`` in key order (to name the rows that differ)."""

    def finish(self) -> None:  # noqa: B027 (optional hook)
        """Complete what a bulk load deferred (e.g. build indexes), once the version holds
        everything it was filled with and before readers see it. Idempotent."""

    @abstractmethod
    def close(self) -> None:
        """Release the read."""

    def __enter__(self) -> Frozen:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
