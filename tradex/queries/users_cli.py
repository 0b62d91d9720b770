"""``tradex api create-user --username NAME --roles admin[,auditor,trader]``: a user made
from the command line — the first admin of a new exchange. The password is read from
standard input (one line) or from the environment variable named by ``--password-env``.
The user goes on the log (RegisterUser, and OpenAccount for a trader) through the
reference processor, which must be running; the credentials go to the auth schema."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tradex.infra import settings as settings_module
from tradex.queries import config as config_module
from tradex.queries.auth_store import ROLES
from tradex.queries.errors import ApiError
from tradex.queries.passwords import PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN
from tradex.queries.services import Services

T = TypeVar("T")


async def with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    """``work`` on the API's services of this stack (settings from the environment),
    closed after: the operator's commands run what the API's endpoints run."""
    settings = settings_module.load()
    services = await Services.open(settings, config_module.load(settings))
    try:
        return await work(services)
    finally:
        await services.close()


async def create(username: str, password: str, roles: list[str]) -> dict[str, Any]:
    from tradex.queries.auth_routes import create_user

    return await with_services(
        lambda services: create_user(services, username, password, roles, "trader" in roles)
    )


def parse_roles(parser: argparse.ArgumentParser, text: str, at_least_one: bool = True) -> list[str]:
    """``--roles`` as a sorted list (the parser exits on an unknown role)."""
    roles = sorted({r.strip() for r in text.split(",") if r.strip()})
    if (at_least_one and not roles) or any(role not in ROLES for role in roles):
        parser.error(f"--roles must be a comma-separated subset of {','.join(ROLES)}")
    return roles


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex api create-user", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--username", required=True)
    parser.add_argument("--roles", default="trader", help=f"comma-separated of {','.join(ROLES)}")
    parser.add_argument("--password-env", default=None, metavar="VAR")
    args = parser.parse_args(argv)
    roles = parse_roles(parser, args.roles)
    if not re.match(r"^[a-z0-9_.-]{3,32}$", args.username):
        parser.error("--username must be 3-32 of a-z 0-9 _ . -")
    password = os.environ.get(args.password_env, "") if args.password_env else sys.stdin.readline()
    password = password.rstrip("\n")
    if not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        parser.error(f"the password must be {PASSWORD_CHARS_MIN}..{PASSWORD_CHARS_MAX} characters")
    try:
        user = asyncio.run(create(args.username, password, roles))
    except ApiError as exc:
        print(f"tradex api create-user: {exc.msg}", file=sys.stderr)
        return 1
    print(user)
    return 0
