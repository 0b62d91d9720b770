"""Binance's user-data stream keys: ``POST/PUT/DELETE /api/v3/userDataStream``.

As on Binance the endpoints take the ``X-MBX-APIKEY`` header alone (no signature; the
key's ``read`` permission is enough; an access token works too, and its key lives no
longer than its login session). POST answers the
caller's live key if it has one (and extends it), PUT keeps a key alive for another
``LISTEN_KEY_TTL_S`` (60 min), DELETE closes it (its streams get ``listenKeyExpired``).
A key that does not exist, has expired or is somebody else's: ``-1125 This listenKey does
not exist.`` (400). The keys themselves: :mod:`.listen_keys`; the stream: :mod:`.ws_user`.
"""

from __future__ import annotations

from typing import Any

from tradex.queries import binance_models as bm
from tradex.queries.auth import USER_STREAM, Principal, own_account
from tradex.queries.errors import INVALID_LISTEN_KEY, ApiError
from tradex.queries.listen_keys import Bound, key_owner
from tradex.queries.routing import Call, Endpoint

TAG = "User data stream (Binance v3)"


def owner_of(principal: Principal, account_id: int) -> str:
    """Whose listenKey a POST answers: the API key's, else the user's for that account."""
    assert account_id > 0, account_id
    assert principal.user_id > 0, principal
    if principal.key_id is not None:
        return key_owner(principal.key_id)
    assert principal.session_id, principal
    return f"session:{principal.session_id}:{account_id}"


async def _bound(call: Call, account_id: int | None) -> Bound:
    """A key opened with an access token is bound to its session (ended by logout)."""
    account = await own_account(call.services, call.user, account_id)
    return Bound(account, call.user.user_id, call.user.session_id or "")


async def create(call: Call) -> dict[str, Any]:
    """A listenKey for the caller's account (its live one if it has one, extended)."""
    p: bm.UserStreamParams = call.params
    bound = await _bound(call, p.accountId)
    keys = call.services.listen_keys
    return {"listenKey": await keys.open(owner_of(call.user, bound.account_id), bound)}


async def keep_alive(call: Call) -> dict[str, Any]:
    """Keep a listenKey alive for another 60 minutes."""
    p: bm.ListenKeyParams = call.params
    if not await call.services.listen_keys.keep_alive(p.listenKey, await _mine(call, p)):
        raise ApiError(INVALID_LISTEN_KEY, field="listenKey")
    return {}


async def close(call: Call) -> dict[str, Any]:
    """Close a listenKey: its streams get ``listenKeyExpired`` and end."""
    p: bm.ListenKeyParams = call.params
    if not await call.services.listen_keys.close(p.listenKey, await _mine(call, p)):
        raise ApiError(INVALID_LISTEN_KEY, field="listenKey")
    return {}


async def _mine(call: Call, p: bm.ListenKeyParams) -> Bound:
    """The key's binding when it is the caller's; anyone else's reads as not existing."""
    found = await call.services.listen_keys.bound(p.listenKey)
    if found is None or found.user_id != call.user.user_id:
        raise ApiError(INVALID_LISTEN_KEY, field="listenKey")
    if call.user.key_account is not None and found.account_id != call.user.key_account:
        raise ApiError(INVALID_LISTEN_KEY, field="listenKey")
    return found


ENDPOINTS = [
    Endpoint("POST", "/api/v3/userDataStream", create, "Start a user data stream", TAG,
             bm.UserStreamParams, response=bm.ListenKey, access=USER_STREAM, weight=2),
    Endpoint("PUT", "/api/v3/userDataStream", keep_alive, "Keep a user data stream alive", TAG,
             bm.ListenKeyParams, response=bm.Empty, access=USER_STREAM, weight=2),
    Endpoint("DELETE", "/api/v3/userDataStream", close, "Close a user data stream", TAG,
             bm.ListenKeyParams, response=bm.Empty, access=USER_STREAM, weight=2),
]  # fmt: skip
