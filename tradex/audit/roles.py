"""Who had which roles, when: users and their roles from ``reference-events`` alone.

    history = role_history(source, codec)      # [RoleEvent ...]: registered / changed / refused
    rows = users_at(history, time_ns)          # [UserRoles ...] as of a time (None: now)

Roles are on the log (docs/ledger.md, "Changing roles"): ``UserRegistered`` gives a user
its first roles, ``UserRolesChanged`` replaces them and names the admin who did it
(``actor``; 0: the operator); a ``ChangeUserRoles`` the reference processor refused is a
``ReferenceCommandRejected`` keyed by the user it was about (``user/<id>``), with the reason
(e.g. ``MAKER_CHECKER``: an admin on their own roles). An auditor answers "who could
approve withdrawals on that day, and who made them an admin" from an archive and this.
Events are taken in event-time order (then partition, offset): reference events of one
user share a key, so a partition keeps them in order.
"""

from __future__ import annotations

from typing import NamedTuple

from tradex.domain import ReferenceCommandRejected, UserRegistered, UserRolesChanged
from tradex.log.source import LogSource
from tradex.log.topics import REFERENCE_EVENTS
from tradex.schemas.codec import Codec, CodecError

USER_KEY_PREFIX = b"user/"
ROLE_COMMAND = "ChangeUserRoles"


class RoleEvent(NamedTuple):
    time_ns: int
    partition: int
    offset: int
    event_id: str
    user_id: int
    name: str  # "" for a refused change (the rejection does not repeat it)
    roles: str  # after the event ("" for a refused change: the roles stayed)
    actor: int  # who made the change (0: the operator, or a registration)
    outcome: str  # registered | changed | refused
    detail: str  # a refusal's reason and detail


class UserRoles(NamedTuple):
    user_id: int
    name: str
    roles: str
    registered_time_ns: int
    changed_time_ns: int  # 0: never changed
    changed_by: int


def _user_of_key(key: bytes | None) -> int:
    if key is None or not key.startswith(USER_KEY_PREFIX):
        return 0
    text = key[len(USER_KEY_PREFIX) :]
    return int(text) if text.isdigit() else 0


def role_history(source: LogSource, codec: Codec) -> list[RoleEvent]:
    """Every registration, role change and refused role change, in event-time order."""
    found: list[RoleEvent] = []
    for partition in range(source.partitions(REFERENCE_EVENTS)):
        for record in source.read(REFERENCE_EVENTS, partition):
            try:
                envelope, event = codec.decode_domain(record.value or b"")
            except CodecError:
                continue  # tradex audit verify reports it
            where = (event.event_time_ns, partition, record.offset, envelope.event_id)
            if isinstance(event, UserRegistered | UserRolesChanged):
                user = event.user
                changed = isinstance(event, UserRolesChanged)
                found.append(RoleEvent(
                    *where, user.user_id, user.name, user.roles,
                    event.actor if isinstance(event, UserRolesChanged) else 0,
                    "changed" if changed else "registered", "",
                ))  # fmt: skip
            elif isinstance(event, ReferenceCommandRejected) and event.command_type == ROLE_COMMAND:
                found.append(RoleEvent(
                    *where, _user_of_key(record.key), "", "", 0, "refused",
                    f"{event.reason}: {event.detail}",
                ))  # fmt: skip
    found.sort(key=lambda e: (e.time_ns, e.partition, e.offset))
    return found


def users_at(history: list[RoleEvent], time_ns: int | None = None) -> list[UserRoles]:
    """Every user registered at ``time_ns`` (events at or before it; None: all) with the
    roles they had then, by user id."""
    users: dict[int, UserRoles] = {}
    for event in history:
        if time_ns is not None and event.time_ns > time_ns:
            break
        if event.outcome == "registered":
            users[event.user_id] = UserRoles(event.user_id, event.name, event.roles,
                                             event.time_ns, 0, 0)  # fmt: skip
        elif event.outcome == "changed" and event.user_id in users:
            users[event.user_id] = users[event.user_id]._replace(
                name=event.name, roles=event.roles, changed_time_ns=event.time_ns,
                changed_by=event.actor,
            )  # fmt: skip
    return [users[u] for u in sorted(users)]
