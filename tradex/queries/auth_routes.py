"""People: register, log in, refresh, log out; the JWKS; who am I.

Registering writes ``RegisterUser`` and ``OpenAccount`` to the log through the reference
processor (waiting for each outcome) and the credentials to the auth schema, never to
the log. User and account ids come from the auth schema's sequence; an id the log already
has (someone registered it another way) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tradex.domain import ChangeUserRoles, OpenAccount, RegisterUser
from tradex.domain.reference import roles_text
from tradex.domain.types import Reason
from tradex.queries import tradex_models as tm
from tradex.queries.auth import ANY_USER
from tradex.queries.errors import (
    ALREADY_EXISTS,
    COMMAND_REJECTED,
    CREDENTIALS_INVALID,
    FORBIDDEN,
    LOGIN_LOCKED,
    MAKER_CHECKER,
    NOT_FOUND,
    REFRESH_INVALID,
    ApiError,
)
from tradex.queries.idempotency import KEY_TEXT, fingerprint
from tradex.queries.routing import Call, Endpoint
from tradex.queries.services import Services

TAG = "Auth (TradeX)"
ID_ATTEMPTS_MAX = 5  # ids tried when the log already has one
NS = 1_000_000_000


async def _reference(services: Services, make: Any) -> tuple[int, Any]:
    """Send ``make(new_id)`` until the log accepts an id; (id, event)."""
    for _attempt in range(ID_ATTEMPTS_MAX):
        entity_id = await services.store.next_id()
        outcome = await services.reference.execute(
            make(entity_id), services.config.command_timeout_s
        )
        event = outcome.events[0]
        if type(event).__name__ != "ReferenceCommandRejected":
            return entity_id, event
        if event.reason != Reason.ALREADY_EXISTS:
            raise ApiError(COMMAND_REJECTED, f"{event.reason}: {event.detail}")
    raise ApiError(COMMAND_REJECTED, f"no free id after {ID_ATTEMPTS_MAX} attempts")


async def create_user(
    services: Services, username: str, password: str, roles: Sequence[str], open_account: bool
) -> dict[str, Any]:
    """A user on the log and in the auth schema (and an account for a trader)."""
    password_hash = await services.passwords.hash(password)
    now = services.clock_ns()
    if await services.store.user_by_name(username) is not None:
        raise ApiError(ALREADY_EXISTS, f"The username {username!r} is taken.", "username")
    user_id = await services.store.next_id()
    if not await services.store.reserve_user(user_id, username, password_hash, roles, now):
        raise ApiError(ALREADY_EXISTS, f"The username {username!r} is taken.", "username")
    try:
        outcome = await services.reference.execute(
            RegisterUser(f"api/user/{user_id}", now, user_id, username, roles_text(roles)),
            services.config.command_timeout_s,
        )
        event = outcome.events[0]
        if type(event).__name__ != "UserRegistered":
            raise ApiError(COMMAND_REJECTED, f"{event.reason}: {event.detail}")
    except BaseException:
        await services.store.drop_user(user_id)
        raise
    accounts = []
    if open_account:
        account_id, _event = await _reference(
            services, lambda i: OpenAccount(f"api/account/{i}", now, i, user_id)
        )
        await services.store.add_account(account_id, user_id, now)
        accounts.append(account_id)
    await services.store.activate_user(user_id)
    return {"userId": user_id, "username": username, "roles": list(roles), "accountIds": accounts}


async def change_user_roles(
    services: Services, command_id: str, user_id: int, roles: Sequence[str], actor: int
) -> Any:
    """Give ``user_id`` exactly ``roles`` (``ChangeUserRoles`` on the log: the reference
    processor checks that ``actor`` is another admin, 0 the operator), then mirror them in
    the auth schema and end the user's sessions, so a dropped role stops working now and
    the next login carries the new roles. API keys read the roles on each request. A
    retry with the same command id gets the first outcome and mirrors it again."""
    outcome = await services.reference.execute(
        ChangeUserRoles(command_id, services.clock_ns(), user_id, roles_text(roles), actor),
        services.config.command_timeout_s,
    )
    event = outcome.events[0]
    if type(event).__name__ != "UserRolesChanged":
        why = f"{event.reason}: {event.detail}"
        if event.reason == Reason.UNKNOWN_USER:
            raise ApiError(NOT_FOUND, why, "userId")
        code = {Reason.MAKER_CHECKER: MAKER_CHECKER, Reason.FORBIDDEN: FORBIDDEN}
        raise ApiError(code.get(event.reason, COMMAND_REJECTED), why)
    logged = [role for role in event.user.roles.split(",") if role]
    await services.store.set_roles(user_id, logged)
    await services.sessions.revoke_all(user_id)
    return event


async def register(call: Call) -> dict[str, Any]:
    """A trader with one account. With Idempotency-Key, a retry of the same registration
    answers the user it created."""
    body: tm.RegisterBody = call.body
    services = call.services
    key = call.idempotency_key()
    if key is not None and KEY_TEXT.match(key):
        claim = await services.store.claim_command(
            "register", key, fingerprint("register", {"username": body.username}), 0,
            "register", services.clock_ns(),
        )  # fmt: skip
        row = await services.store.user_by_name(body.username)
        if claim == "same" and row is not None and row["active"]:
            accounts = await services.store.accounts_of(row["user_id"])
            return {"userId": row["user_id"], "username": row["username"],
                    "roles": list(row["roles"]), "accountIds": accounts}  # fmt: skip
    return await create_user(services, body.username, body.password, ["trader"], True)


async def _session(services: Services, user: Any) -> dict[str, Any]:
    await services.tokens.refresh()  # sign with the newest key another worker may have made
    session_id, refresh = await services.sessions.open(int(user["user_id"]))
    roles = frozenset(user["roles"])
    token, _expires = services.tokens.issue(int(user["user_id"]), session_id, roles)
    return {"accessToken": token, "tokenType": "Bearer",
            "expiresIn": services.config.access_token_ttl_s, "refreshToken": refresh,
            "userId": int(user["user_id"]), "roles": sorted(roles)}  # fmt: skip


def _locked_text(wait_s: int) -> str:
    return f"Too many failed logins; try again in {wait_s} s."


async def login(call: Call) -> dict[str, Any]:
    """An access token (JWT, short-lived) and a refresh token. After
    ``login_failures_max`` wrong passwords in a row the user is locked out for a while."""
    body: tm.LoginBody = call.body
    services, config = call.services, call.services.config
    row = await services.store.user_by_name(body.username)
    now = services.clock_ns()
    if row is not None and row["locked_until_ns"] > now:
        wait_s = (row["locked_until_ns"] - now) // NS + 1
        raise ApiError(LOGIN_LOCKED, _locked_text(wait_s), headers={"Retry-After": str(wait_s)})
    stored = row["password_hash"] if row is not None and row["active"] else None
    if not await services.passwords.verify(stored, body.password):
        if row is not None:
            locked = await services.store.login_failed(
                row["user_id"], now, config.login_failures_max, config.lockout_s * NS
            )
            if locked > now:
                raise ApiError(LOGIN_LOCKED, _locked_text(config.lockout_s),
                               headers={"Retry-After": str(config.lockout_s)})  # fmt: skip
        raise ApiError(CREDENTIALS_INVALID)
    assert row is not None, "verified against a stored hash"
    await services.store.login_succeeded(row["user_id"])
    return await _session(services, row)


async def refresh(call: Call) -> dict[str, Any]:
    """A new access token and a new refresh token; the one presented is used up. Presenting
    a used one revokes the whole session."""
    body: tm.RefreshBody = call.body
    services = call.services
    rotated = await services.sessions.rotate(body.refreshToken)
    if rotated is None:
        raise ApiError(REFRESH_INVALID)
    user_id, session_id, fresh = rotated
    row = await services.store.user(user_id)
    if row is None or not row["active"]:
        await services.sessions.revoke(session_id)
        raise ApiError(REFRESH_INVALID)
    roles = frozenset(row["roles"])
    await services.tokens.refresh()
    token, _expires = services.tokens.issue(user_id, session_id, roles)
    return {"accessToken": token, "tokenType": "Bearer",
            "expiresIn": services.config.access_token_ttl_s, "refreshToken": fresh,
            "userId": user_id, "roles": sorted(roles)}  # fmt: skip


async def logout(call: Call) -> dict[str, Any]:
    """Revokes the session: its access and refresh tokens stop working now."""
    session_id = call.user.session_id
    assert session_id is not None, "tokens only"
    await call.services.sessions.revoke(session_id)
    return {"ok": True}


async def logout_all(call: Call) -> dict[str, Any]:
    """Revokes every session of the caller (this one too): "log out everywhere"."""
    assert call.user.session_id is not None, "tokens only"
    revoked = await call.services.sessions.revoke_all(call.user.user_id)
    return {"ok": True, "sessions": revoked}


async def me(call: Call) -> dict[str, Any]:
    services = call.services
    row = await services.store.user(call.user.user_id)
    assert row is not None, call.user.user_id
    return {"userId": row["user_id"], "username": row["username"], "roles": list(row["roles"]),
            "accountIds": await services.store.accounts_of(row["user_id"])}  # fmt: skip


async def jwks(call: Call) -> dict[str, Any]:
    """The public keys that verify access tokens (Ed25519, by ``kid``)."""
    await call.services.tokens.refresh()
    return call.services.tokens.jwks()


ENDPOINTS = [
    Endpoint("POST", "/tradex/v1/auth/register", register, "Register a trader", TAG,
             body=tm.RegisterBody, response=tm.User, bucket="auth", state_changing=True),
    Endpoint("POST", "/tradex/v1/auth/login", login, "Log in", TAG, body=tm.LoginBody,
             response=tm.Tokens, bucket="auth"),
    Endpoint("POST", "/tradex/v1/auth/refresh", refresh, "Rotate the refresh token", TAG,
             body=tm.RefreshBody, response=tm.Tokens, bucket="auth"),
    Endpoint("POST", "/tradex/v1/auth/logout", logout, "Log out (revoke the session)", TAG,
             response=tm.Done, access=ANY_USER),
    Endpoint("POST", "/tradex/v1/auth/logoutAll", logout_all,
             "Log out everywhere (revoke every session of the user)", TAG,
             response=tm.SessionsRevoked, access=ANY_USER),
    Endpoint("GET", "/tradex/v1/me", me, "Who am I", TAG, response=tm.User, access=ANY_USER),
    Endpoint("GET", "/tradex/v1/auth/jwks", jwks, "Token signing keys (JWKS)", TAG,
             response=tm.Jwks),
    Endpoint("GET", "/.well-known/jwks.json", jwks, "Token signing keys (JWKS)", TAG,
             response=tm.Jwks),
]  # fmt: skip
