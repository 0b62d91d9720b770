"""``tradex api set-roles --username NAME --roles admin[,auditor,trader]``: the operator
gives a user exactly these roles (``--roles ""``: none) — e.g. a second admin, or an
auditor. ``ChangeUserRoles`` goes on the log with actor 0 (the operator) through the
reference processor, which must be running; the auth schema mirrors the roles and the
user's sessions end (:func:`tradex.queries.auth_routes.change_user_roles`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from typing import Any

from tradex.queries.auth_store import ROLES
from tradex.queries.errors import ApiError
from tradex.queries.services import Services
from tradex.queries.users_cli import parse_roles, with_services


class UnknownUser(Exception):
    pass


async def set_roles(username: str, roles: list[str]) -> dict[str, Any]:
    return await with_services(lambda services: _set_roles(services, username, roles))


async def _set_roles(services: Services, username: str, roles: list[str]) -> dict[str, Any]:
    from tradex.queries.auth_routes import change_user_roles

    user = await services.store.user_by_name(username)
    if user is None:
        raise UnknownUser(username)
    command_id = f"cli/roles/{uuid.uuid4()}"
    event = await change_user_roles(services, command_id, int(user["user_id"]), roles, 0)
    return {"userId": event.user.user_id, "username": username,
            "roles": [r for r in event.user.roles.split(",") if r],
            "commandId": command_id}  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex api set-roles", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--username", required=True)
    parser.add_argument("--roles", required=True, help=f"comma-separated of {','.join(ROLES)}")
    args = parser.parse_args(argv)
    roles = parse_roles(parser, args.roles, at_least_one=False)
    try:
        print(asyncio.run(set_roles(args.username, roles)))
    except UnknownUser:
        print(f"tradex api set-roles: no user named {args.username!r}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"tradex api set-roles: {exc.msg}", file=sys.stderr)
        return 1
    return 0
