"""Command ids at the edge: ``Idempotency-Key`` (or ``newClientOrderId``) → the command id.

Every state-changing request becomes a command with an id the client can choose: the
``Idempotency-Key`` header, or Binance's ``newClientOrderId``, else a random one. The log
makes a repeated id harmless — the processors decide a command id once and a duplicate
returns the first outcome — and the auth schema records which request each id was used
for (a fingerprint of its parameters): the same id for a *different* request is refused
(409, on /api/v3/order Binance's "Duplicate order sent."), before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from tradex.domain.types import ID_TEXT_LENGTH_MAX
from tradex.queries.errors import IDEMPOTENCY_CONFLICT, MANDATORY_PARAM, ApiError, Code, param_error
from tradex.queries.routing import IDEMPOTENCY_KEY, Call

KEY_TEXT = IDEMPOTENCY_KEY
RESERVED_PREFIXES = ("fill/", "end/")  # the settlement inputs' command ids (matcher-chosen)


def fingerprint(kind: str, fields: dict[str, Any]) -> bytes:
    text = json.dumps({"kind": kind, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).digest()


async def command_id(
    call: Call, scope: str, kind: str, fields: dict[str, Any], *, client_id: str | None = None,
    prefix: str = "", conflict: Code = IDEMPOTENCY_CONFLICT,
) -> str:  # fmt: skip
    """The command id of this request, recorded for ``scope`` (``account:<id>`` or
    ``user:<id>``); ``prefix`` namespaces ids that must be unique beyond the scope."""
    key = call.idempotency_key()
    if key is not None and not KEY_TEXT.match(key):
        raise param_error(MANDATORY_PARAM, "Idempotency-Key",
                          "Idempotency-Key must be 1..64 of A-Z a-z 0-9 . _ : -", call.tradex)  # fmt: skip
    if key is not None and client_id is not None and key != client_id:
        raise param_error(MANDATORY_PARAM, "Idempotency-Key",
                          "Idempotency-Key and newClientOrderId differ: send one.", call.tradex)  # fmt: skip
    chosen = client_id or key
    if chosen is not None and chosen.startswith(RESERVED_PREFIXES):
        field = "newClientOrderId" if client_id else "Idempotency-Key"
        raise param_error(MANDATORY_PARAM, field,
                          f"Ids starting with {' or '.join(RESERVED_PREFIXES)} are reserved.",
                          call.tradex)  # fmt: skip
    identifier = prefix + (chosen if chosen is not None else secrets.token_hex(12))
    assert len(identifier) <= ID_TEXT_LENGTH_MAX, identifier
    services = call.services
    claim = await services.store.claim_command(
        scope, identifier, fingerprint(kind, fields), call.user.user_id, kind, services.clock_ns()
    )
    if claim == "conflict":
        raise ApiError(conflict, f"{conflict.msg} (id {chosen!r} was used for another request)",
                       "Idempotency-Key" if key else "newClientOrderId", 409)  # fmt: skip
    return identifier
