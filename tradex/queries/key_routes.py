"""API keys: create (the secret is shown once), list, revoke — with an access token only
(a key cannot make keys)."""

from __future__ import annotations

from typing import Any

from tradex.queries import api_keys
from tradex.queries import tradex_models as tm
from tradex.queries.auth import Access, own_account
from tradex.queries.errors import INVALID_PARAMETER, NOT_FOUND, ApiError, param_error
from tradex.queries.listen_keys import key_owner
from tradex.queries.routing import Call, Endpoint

TAG = "API keys (TradeX)"
KEYS = Access(frozenset({"trader"}), keys=False)


def _key(row: Any) -> dict[str, Any]:
    revoked = row["revoked_ns"]
    return {"keyId": row["key_id"], "accountId": row["account_id"],
            "permissions": list(row["permissions"]), "ipAllowList": list(row["ip_allow"]),
            "label": row["label"], "createdTime": row["created_ns"] // 1_000_000,
            "revokedTime": None if revoked is None else revoked // 1_000_000}  # fmt: skip


async def create_key(call: Call) -> dict[str, Any]:
    """A key for one of your accounts with the given permissions and IP allow-list. The
    response holds the secret; TradeX keeps no copy of it."""
    body: tm.NewKeyBody = call.body
    services = call.services
    account = await own_account(services, call.user, body.accountId)
    try:
        api_keys.parse_networks(body.ipAllowList)
    except ValueError as exc:
        raise param_error(INVALID_PARAMETER, "ipAllowList", str(exc), True) from exc
    new = api_keys.create(services.master, call.user.user_id, account, list(body.permissions),
                          body.ipAllowList, body.label, services.clock_ns())  # fmt: skip
    if not await services.store.add_key(new.row):
        raise param_error(INVALID_PARAMETER, "apiKey",
                          f"At most {api_keys.IP_ALLOW_MAX} live keys per user.", True)  # fmt: skip
    row = {**new.row, "revoked_ns": None}
    return {**_key(row), "apiKey": new.api_key, "secretKey": new.secret}


async def list_keys(call: Call) -> list[dict[str, Any]]:
    return [_key(row) for row in await call.services.store.keys_of(call.user.user_id)]


async def revoke_key(call: Call) -> dict[str, Any]:
    """Revoke a key now: requests signed with it get 401 and the listenKey it opened is
    closed; within ``ws_auth_check_ms`` that listenKey's open streams end
    (``listenKeyExpired``), as do the key's WebSocket API subscriptions
    (``eventStreamTerminated``) and TradeX WebSocket private channels."""
    params: tm.KeyParams = call.params
    services = call.services
    if not await services.store.revoke_key(call.user.user_id, params.keyId, services.clock_ns()):
        raise ApiError(NOT_FOUND, "No live API key with this keyId.", "keyId")
    await services.listen_keys.close_owner(key_owner(params.keyId))
    return {"ok": True}


ENDPOINTS = [
    Endpoint("POST", "/tradex/v1/apiKeys", create_key, "Create an API key", TAG,
             body=tm.NewKeyBody, response=tm.NewApiKey, access=KEYS),
    Endpoint("GET", "/tradex/v1/apiKeys", list_keys, "Your API keys", TAG,
             response=list[tm.ApiKey], access=KEYS),
    Endpoint("DELETE", "/tradex/v1/apiKeys", revoke_key, "Revoke an API key", TAG,
             tm.KeyParams, response=tm.Done, access=KEYS),
]  # fmt: skip
