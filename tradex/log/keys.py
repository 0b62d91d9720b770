"""Record keys and where a key lives: one place for every stage.

Keys are the entity id as ASCII decimal (``b"42"``), so standard Kafka tooling shows them
and every client (Java or librdkafka, murmur2) puts a key on the same partition
(:func:`tradex.infra.partitioner.partition_for`):

- account-keyed topics (``account-commands``, ``settlements``, ``account-events``): the
  account id. An account's commands, settlements, events and snapshots all live on
  partition :func:`account_partition` of their topics (the same partition count);
- ``order-requests`` and ``engine-events``: the instrument id;
- reference topics: the entity, ``asset/BTC``, ``instrument/1``, ``user/7``, ``account/42``
  (:func:`reference_key`);
- ``dead-letters``: the source topic's (real) name.

A stage that routes many records caches ``(partition, key)`` per account in a
:class:`Routes` (murmur2 in Python costs ~1 µs a key).
"""

from __future__ import annotations

from tradex.domain.reference import (
    ChangeUserRoles,
    CreateAsset,
    OpenAccount,
    ReferenceCommand,
    RegisterUser,
)
from tradex.infra.partitioner import partition_for

ROUTES_MAX = 1_000_000  # cached account -> (partition, key) entries of one Routes


def decimal_key(entity_id: int) -> bytes:
    """The key of an entity with an integer id: the id in ASCII decimal."""
    return str(entity_id).encode()


account_key = decimal_key
instrument_key = decimal_key


def reference_key(command: ReferenceCommand) -> bytes:
    """The key of a reference command and of its events: the entity it is about."""
    if isinstance(command, CreateAsset):
        return f"asset/{command.code}".encode()
    if isinstance(command, RegisterUser | ChangeUserRoles):
        return f"user/{command.user_id}".encode()
    if isinstance(command, OpenAccount):
        return f"account/{command.account_id}".encode()
    instrument_id = getattr(command, "instrument_id", None)
    assert isinstance(instrument_id, int), f"not a reference command: {command!r}"
    return f"instrument/{instrument_id}".encode()


def account_partition(account_id: int, partitions: int) -> int:
    """The partition of every account-keyed topic (``partitions`` of them) that holds
    ``account_id``."""
    return partition_for(account_key(account_id), partitions)


class Routes:
    """``account id -> (partition, key)`` on account-keyed topics of ``partitions``
    partitions, cached; at most :data:`ROUTES_MAX` entries (the cache starts over when full).

    Hot loops read :attr:`cache` directly and call :meth:`route` on a miss::

        found = cache.get(account_id)
        partition, key = found if found is not None else route(account_id)
    """

    __slots__ = ("cache", "partitions")

    def __init__(self, partitions: int) -> None:
        assert partitions > 0, partitions
        self.partitions = partitions
        self.cache: dict[int, tuple[int, bytes]] = {}

    def route(self, account_id: int) -> tuple[int, bytes]:
        """(partition, key) of ``account_id``."""
        cache = self.cache
        found = cache.get(account_id)
        if found is None:
            if len(cache) >= ROUTES_MAX:
                cache.clear()
            key = account_key(account_id)
            found = cache[account_id] = (partition_for(key, self.partitions), key)
        return found
