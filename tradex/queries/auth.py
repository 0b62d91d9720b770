"""Who is calling: an API key with a signed request, or an access token; what they may do.

``X-MBX-APIKEY`` + a signed request (:mod:`.signatures`) → the key's user, its one
account and its permissions; ``Authorization: Bearer <JWT>`` (:mod:`.tokens`) → the
user, every account they own, every permission. Then the endpoint's roles (trader,
admin, auditor): none of them → 403. A user sees only their own accounts: anything else
is "not found" (404), never "forbidden", so ids of others cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from tradex.queries import api_keys, signatures
from tradex.queries.auth_store import PERMISSIONS
from tradex.queries.config import RateLimit
from tradex.queries.errors import (
    BAD_API_KEY_FMT,
    FORBIDDEN,
    INVALID_PARAMETER,
    INVALID_SIGNATURE,
    INVALID_TIMESTAMP,
    NOT_FOUND,
    PERMISSION_DENIED,
    REJECTED_MBX_KEY,
    SIGNATURE_REPLAYED,
    TOKEN_INVALID,
    TOO_MANY_ORDERS,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    ApiError,
    param_error,
)
from tradex.queries.params import Raw
from tradex.queries.rate_limits import Usage

if TYPE_CHECKING:
    from tradex.queries.services import Services

API_KEY_HEADER = "x-mbx-apikey"
SESSION_REVOKED = "The session of this access token was revoked."


@dataclass(frozen=True)
class Access:
    """What an endpoint requires: one of ``roles`` (empty: public), the API-key
    permission, and whether API keys are accepted at all (else tokens only)."""

    roles: frozenset[str] = frozenset()
    permission: str = "read"
    keys: bool = True
    signed: bool = True  # False: the API key header alone (Binance's USER_STREAM endpoints)

    @property
    def public(self) -> bool:
        return not self.roles


PUBLIC = Access()
TRADER = Access(frozenset({"trader"}))
TRADER_TRADE = Access(frozenset({"trader"}), "trade")
TRADER_WITHDRAW = Access(frozenset({"trader"}), "withdraw")
ANY_USER = Access(frozenset({"trader", "admin", "auditor"}), keys=False)
ADMIN = Access(frozenset({"admin"}), "trade", keys=False)
AUDITOR = Access(frozenset({"auditor", "admin"}), keys=False)
USER_STREAM = Access(frozenset({"trader"}), signed=False)  # listenKeys: key only, as Binance


@dataclass(frozen=True)
class Principal:
    user_id: int
    roles: frozenset[str]
    via: str  # jwt | key
    ip: str | None
    session_id: str | None = None
    key_id: str | None = None
    key_account: int | None = None
    permissions: frozenset[str] = frozenset(PERMISSIONS)
    expires_ns: int | None = None  # an access token's expiry (None: an API key)

    @property
    def caller(self) -> str:
        """The rate-limit identity: the key, else the user."""
        return f"key:{self.key_id}" if self.key_id else f"user:{self.user_id}"


def client_ip(request: HTTPConnection) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: HTTPConnection) -> str | None:
    """The access token of a request that sends one (and no API key)."""
    if request.headers.get(API_KEY_HEADER) is not None:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def admit_token(
    services: Services, request: HTTPConnection, token: str, access: Access, limit: RateLimit,
    weight: int,
) -> tuple[Principal, Usage]:  # fmt: skip
    """A request with an access token through the same steps as :func:`authenticate` with
    the rate limits around it — the IP counted, the token and its session checked, the
    roles, the user counted — with one Redis round trip (``RateLimiter.admit``). Answers
    the principal and the tighter usage; raises 429, 401 or 403 as the steps would."""
    ip = f"ip:{client_ip(request)}"
    try:
        claims = await services.tokens.verify(token)
    except ApiError:
        usage = await services.limiter.count(limit, [ip], weight)
        if usage.exceeded:
            raise too_many(usage) from None
        raise
    principal = Principal(claims.user_id, claims.roles, "jwt", client_ip(request),
                          session_id=claims.session_id, expires_ns=claims.expires_ns)  # fmt: skip
    allowed = bool(principal.roles & access.roles)
    found = await services.limiter.admit(
        limit, ip, services.sessions.key(claims.session_id), principal.caller, allowed, weight
    )
    if found.by_ip.exceeded:
        raise too_many(found.by_ip)
    if not found.alive:
        raise ApiError(TOKEN_INVALID, SESSION_REVOKED)
    if found.mine is None:
        raise ApiError(FORBIDDEN, f"This request needs one of the roles {sorted(access.roles)}.")
    if found.mine.exceeded:
        raise too_many(found.mine)
    return principal, min(found.by_ip, found.mine, key=lambda u: u.remaining)


async def counted(services: Services, limit: RateLimit, caller: str, weight: int) -> Usage:
    """``caller`` (``ip:<address>`` or :attr:`Principal.caller`) counted in the bucket;
    429 once it is over."""
    usage = await services.limiter.count(limit, [caller], weight)
    if usage.exceeded:
        raise too_many(usage)
    return usage


def too_many(usage: Usage) -> ApiError:
    code = TOO_MANY_ORDERS if usage.limit.name == "order" else TOO_MANY_REQUESTS
    msg = (
        f"Too many requests: {usage.used} of {usage.limit.limit} per {usage.limit.window_s} s "
        f"in the '{usage.limit.name}' bucket; retry after {usage.headers()['Retry-After']} s."
    )
    return ApiError(code, msg, headers=usage.headers())  # fmt: skip


async def authenticate(
    services: Services, request: HTTPConnection, raw: Raw, access: Access, tradex: bool
) -> Principal:
    api_key = request.headers.get(API_KEY_HEADER)
    if api_key is not None:
        if not access.keys:
            raise ApiError(UNAUTHORIZED, "This endpoint takes an access token, not an API key.")
        target = f"{request.scope.get('method', '')} {request.url.path}"
        principal = await _by_key(services, request, raw, api_key, access, tradex, target)
    else:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(UNAUTHORIZED)
        claims = await services.tokens.verify(token.strip())
        if not await services.sessions.alive(claims.session_id):
            raise ApiError(TOKEN_INVALID, SESSION_REVOKED)
        principal = Principal(claims.user_id, claims.roles, "jwt", client_ip(request),
                              session_id=claims.session_id, expires_ns=claims.expires_ns)  # fmt: skip
    if not principal.roles & access.roles:
        raise ApiError(FORBIDDEN, f"This request needs one of the roles {sorted(access.roles)}.")
    return principal


async def _by_key(
    services: Services,
    request: HTTPConnection,
    raw: Raw,
    api_key: str,
    access: Access,
    tradex: bool,
    target: str,
) -> Principal:
    """``target``: what the signature is used for (an endpoint's method and path, or a
    WebSocket operation): a signature is accepted once per target (``ReplayGuard``)."""
    if not api_keys.KEY_TEXT.match(api_key):
        raise ApiError(BAD_API_KEY_FMT)
    row = await services.store.key(api_keys.key_hash(api_key))
    ip = client_ip(request)
    if row is None or not api_keys.ip_allowed(list(row["ip_allow"]), ip):
        raise ApiError(REJECTED_MBX_KEY)
    if access.signed:
        await _check_signed(services, raw, row, api_key, tradex, target)
    permissions = frozenset(row["permissions"])
    if access.permission not in permissions:
        raise ApiError(
            PERMISSION_DENIED, f"This API key lacks the '{access.permission}' permission."
        )
    return Principal(int(row["user_id"]), frozenset(row["roles"]), "key", ip,
                     key_id=str(row["key_id"]), key_account=int(row["account_id"]),
                     permissions=permissions)  # fmt: skip


async def _check_signed(
    services: Services, raw: Raw, row: Any, api_key: str, tradex: bool, target: str
) -> None:
    """A signed request's timestamp, signature and first use (else 401)."""
    payload, signature = signatures.split_signature(raw.query, raw.body)
    if signature is None:
        raise ApiError(INVALID_SIGNATURE, "Mandatory parameter 'signature' was not sent once.",
                       "signature")  # fmt: skip
    config = services.config
    timestamp = _int(raw.values.get("timestamp"))
    if timestamp is None:
        raise ApiError(INVALID_TIMESTAMP, "Mandatory parameter 'timestamp' was not sent.",
                       "timestamp")  # fmt: skip
    window = _int(raw.values.get("recvWindow", config.recv_window_ms_default))
    if window is None or not 0 < window <= config.recv_window_ms_max:
        raise param_error(INVALID_PARAMETER, "recvWindow",
                          f"recvWindow must be 1..{config.recv_window_ms_max}.", tradex)  # fmt: skip
    now_ms = services.clock_ns() // 1_000_000
    if not signatures.in_window(timestamp, window, now_ms, config.clock_skew_ms_max):
        raise ApiError(INVALID_TIMESTAMP, field="timestamp")
    secret = api_keys.secret_of(services.master, api_key, bytes(row["salt"]))
    if not signatures.valid(secret, payload, signature):
        raise ApiError(INVALID_SIGNATURE, field="signature")
    if not await services.replays.first_use(target, signature, window + config.clock_skew_ms_max):
        raise ApiError(SIGNATURE_REPLAYED, field="signature")


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


async def own_account(services: Services, principal: Principal, account_id: int | None) -> int:
    """The account a trader acts for: the key's, or one the user owns (the lowest when
    none is named). Another's account, or none: 404."""
    if principal.key_account is not None:
        if account_id is not None and account_id != principal.key_account:
            raise ApiError(NOT_FOUND, "Account not found.", "accountId")
        return principal.key_account
    owned = await services.store.owned(principal.user_id, account_id)
    if account_id is None:
        if not owned:
            raise ApiError(NOT_FOUND, "You have no account.", "accountId")
        return owned[0]
    if account_id not in owned:
        raise ApiError(NOT_FOUND, "Account not found.", "accountId")
    return account_id
