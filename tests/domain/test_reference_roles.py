"""Roles change through the log: ``ChangeUserRoles`` decided by the reference table."""

from __future__ import annotations

from tradex.domain import (
    ChangeUserRoles,
    Reason,
    ReferenceCommandRejected,
    ReferenceData,
    RegisterUser,
    User,
    UserRolesChanged,
)

T0 = 1_700_000_000_000_000_000
ADMIN, OTHER_ADMIN, TRADER = 1, 2, 3


def _reference() -> ReferenceData:
    ref = ReferenceData()
    for command in (
        RegisterUser("u-1", T0, ADMIN, "ada", "admin"),
        RegisterUser("u-2", T0, OTHER_ADMIN, "bob", "admin,trader"),
        RegisterUser("u-3", T0, TRADER, "cy", "trader"),
    ):
        assert not isinstance(ref.decide(command).events[0], ReferenceCommandRejected)
    return ref


def _refused(ref: ReferenceData, command: ChangeUserRoles) -> ReferenceCommandRejected:
    before = dict(ref.users)
    event = ref.decide(command).events[0]
    assert isinstance(event, ReferenceCommandRejected), event
    assert event.command_type == "ChangeUserRoles"
    assert ref.users == before  # nothing changed
    return event


def test_an_admin_changes_another_users_roles() -> None:
    ref = _reference()
    decision = ref.decide(ChangeUserRoles("c-1", T0 + 1, TRADER, "auditor,trader", ADMIN))
    assert decision.events == (
        UserRolesChanged("c-1", T0 + 1, User(TRADER, "cy", "auditor,trader"), ADMIN),
    )
    assert ref.users[TRADER].has_role("auditor")
    # every reader folds the event the same way
    follower = _reference()
    follower.apply(decision.events[0])
    assert follower.users == ref.users
    # the same command id again: the first outcome, nothing new
    again = ref.decide(ChangeUserRoles("c-1", T0 + 2, TRADER, "", ADMIN))
    assert again.duplicate and again.events == decision.events
    assert ref.users[TRADER].roles == "auditor,trader"


def test_roles_can_be_dropped_and_the_operator_needs_no_actor() -> None:
    ref = _reference()
    event = ref.decide(ChangeUserRoles("c-2", T0, OTHER_ADMIN, "", 0)).events[0]
    assert isinstance(event, UserRolesChanged) and event.actor == 0
    assert ref.users[OTHER_ADMIN].roles == ""
    assert not ref.users[OTHER_ADMIN].has_role("admin")
    # no longer an admin: cannot change anyone's roles
    refused = _refused(ref, ChangeUserRoles("c-3", T0, TRADER, "admin", OTHER_ADMIN))
    assert refused.reason == Reason.FORBIDDEN


def test_refusals() -> None:
    ref = _reference()
    assert _refused(ref, ChangeUserRoles("r-1", T0, 99, "trader", ADMIN)).reason == (
        Reason.UNKNOWN_USER
    )
    assert _refused(ref, ChangeUserRoles("r-2", T0, TRADER, "root", ADMIN)).reason == (
        Reason.INVALID_COMMAND
    )
    assert _refused(ref, ChangeUserRoles("r-3", T0, TRADER, "trader,admin", ADMIN)).reason == (
        Reason.INVALID_COMMAND  # not sorted: the log carries one spelling of a set
    )
    # a trader cannot make themselves (or anyone) an admin
    assert _refused(ref, ChangeUserRoles("r-4", T0, TRADER, "admin,trader", TRADER)).reason == (
        Reason.FORBIDDEN
    )
    # nor can an unknown actor
    assert _refused(ref, ChangeUserRoles("r-5", T0, TRADER, "admin", 42)).reason == (
        Reason.FORBIDDEN
    )
    # an admin cannot change their own roles: another admin must (maker/checker)
    assert _refused(ref, ChangeUserRoles("r-6", T0, ADMIN, "admin,auditor", ADMIN)).reason == (
        Reason.MAKER_CHECKER
    )
    # a malformed command is refused as invalid, not raised
    assert _refused(ref, ChangeUserRoles("r-7", T0, 0, "trader", ADMIN)).reason == (
        Reason.INVALID_COMMAND
    )
    assert _refused(ref, ChangeUserRoles("r-8", T0, TRADER, "trader", -1)).reason == (
        Reason.INVALID_COMMAND
    )
