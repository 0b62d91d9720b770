"""Rebuild one partition's accounts: newest snapshot, then the events after it.

While folding, every event's link in the hash chain and its per-account ``seq`` are
checked: a processor refuses to continue a chain it cannot verify.
"""

from __future__ import annotations

import logging

from tradex.commands import snapshots
from tradex.commands.snapshots import PartitionState, SnapshotError
from tradex.domain.book import AccountBook
from tradex.domain.reference import ReferenceData
from tradex.log.source import LogSource
from tradex.log.topics import ACCOUNT_EVENTS
from tradex.log.typed import read_typed
from tradex.schemas.chain import HASH_SIZE, ZERO_HASH, hash_ok
from tradex.schemas.codec import Codec

log = logging.getLogger(__name__)


class ChainBroken(RuntimeError):
    """``account-events`` does not verify: a changed, removed or reordered record."""


def rebuild_partition(
    source: LogSource,
    codec: Codec,
    reference: ReferenceData,
    partition: int,
    use_snapshot: bool = True,
) -> tuple[PartitionState, int]:
    """The partition's state and the number of events folded after the snapshot."""
    state: PartitionState | None = None
    if use_snapshot:
        try:
            state = snapshots.latest(source, partition, reference)
        except SnapshotError as exc:
            log.warning("partition %d: snapshot ignored, full replay: %s", partition, exc)
    if state is None:
        state = PartitionState(partition, 0, ZERO_HASH, AccountBook(reference))
    book, last_hash, events_next = state.book, state.last_hash, state.events_next
    folded = 0
    topic = ACCOUNT_EVENTS
    for record in read_typed(source, codec, topic, partition, events_next):
        data, offset = record.value, record.offset
        envelope, event = record.checked()  # an undecodable event: the chain is not ours
        if envelope.prev_hash != last_hash or not hash_ok(last_hash, data):
            raise ChainBroken(f"{topic}[{partition}] offset {offset}: hash chain broken")
        book.apply(event)
        if event.account_id > 0 and envelope.seq != book.accounts[event.account_id].version:
            raise ChainBroken(
                f"{topic}[{partition}] offset {offset}: seq {envelope.seq} out of order"
            )
        last_hash = data[-HASH_SIZE:]
        events_next = offset + 1
        folded += 1
    return PartitionState(partition, events_next, last_hash, book), folded
