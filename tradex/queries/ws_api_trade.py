"""Binance's trading, order and account methods on the WebSocket API (``/ws-api/v3``).

Each method is a REST endpoint (:data:`METHODS`: ``order.place`` is ``POST
/api/v3/order``, …) run through the REST path's steps with that endpoint's own
declaration (:func:`.routing._handle`): the caller's IP counted in the endpoint's
rate-limit bucket and weight → the API key and the signature (:func:`.auth._by_key`:
format, IP allow-list, timestamp and ``recvWindow``, HMAC, first use of the signature,
the key's permission) → the endpoint's roles → the key counted → the parameters checked
by the endpoint's model → the endpoint's handler with the :class:`.routing.Call` REST
would build. So the result is REST's JSON body and an error is REST's code and status;
a refused request sends nothing to the log (every check comes before the handler).

Signing (Binance's rule, as ccxt.pro's ``binance`` and python-binance do it): the
parameters other than ``signature``, sorted by name, as ``name=value`` joined by ``&``
(booleans ``true``/``false``). ccxt.pro signs the values as sent, python-binance
percent-encoded; when the two differ both are tried (a signature matches one of them).
There are no headers: ``newClientOrderId`` is the only idempotency key here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.websockets import WebSocket

from tradex.queries import account, auth, order_changes, orders
from tradex.queries.errors import (
    FORBIDDEN,
    ILLEGAL_CHARS,
    INVALID_SIGNATURE,
    MANDATORY_PARAM,
    ApiError,
    param_error,
)
from tradex.queries.params import Raw, validate
from tradex.queries.rate_limits import Usage
from tradex.queries.routing import Endpoint, SignedParams, run
from tradex.queries.services import Services

TEXT_CHARS_MAX = 512  # one parameter's text
ROUTES = {
    "order.place": ("POST", "/api/v3/order"),
    "order.status": ("GET", "/api/v3/order"),
    "order.cancel": ("DELETE", "/api/v3/order"),
    "order.cancelReplace": ("POST", "/api/v3/order/cancelReplace"),
    "order.amend.keepPriority": ("PUT", "/api/v3/order/amend/keepPriority"),
    "openOrders.status": ("GET", "/api/v3/openOrders"),
    "openOrders.cancelAll": ("DELETE", "/api/v3/openOrders"),
    "allOrders": ("GET", "/api/v3/allOrders"),
    "account.status": ("GET", "/api/v3/account"),
    "myTrades": ("GET", "/api/v3/myTrades"),
}


def _endpoints() -> dict[str, Endpoint]:
    declared = {(e.method, e.path): e
                for e in (*orders.ENDPOINTS, *order_changes.ENDPOINTS, *account.ENDPOINTS)}  # fmt: skip
    found = {method: declared[route] for method, route in ROUTES.items()}
    for endpoint in found.values():
        assert endpoint.body is None, endpoint.path  # parameters only, as Binance's
        assert not endpoint.access.public and endpoint.access.keys, endpoint.path
    return found


METHODS: dict[str, Endpoint] = _endpoints()


def text_of(value: Any) -> str:
    """A parameter's value as it is signed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def checked_values(params: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters (JSON null: not sent); a value that is not a string,
    number or boolean, an empty text, or an illegal character is refused (400) as REST's
    parameter reader refuses them."""
    values: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise param_error(MANDATORY_PARAM, name, f"Parameter '{name}' must be a string, "
                              "a number or a boolean.", False)  # fmt: skip
        if value == "":
            raise param_error(MANDATORY_PARAM, name, f"Parameter '{name}' was empty.", False)
        text = text_of(value)
        if len(text) > TEXT_CHARS_MAX or "\x00" in text or not _encodes(text):
            raise param_error(ILLEGAL_CHARS, name,
                              f"Illegal characters found in parameter '{name}'.", False)  # fmt: skip
        values[name] = value
    assert all(v is not None for v in values.values()), "null is not sent"
    return values


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def payloads(values: dict[str, Any]) -> list[bytes]:
    """The texts a signature may be over: as sent, and percent-encoded when different."""
    pairs = sorted((name, text_of(value)) for name, value in values.items() if name != "signature")
    plain = "&".join(f"{name}={text}" for name, text in pairs)
    encoded = urlencode(pairs)
    found = [plain.encode()] if plain == encoded else [plain.encode(), encoded.encode()]
    assert 1 <= len(found) <= 2, found
    return found


async def signed_principal(
    services: Services, ws: WebSocket, values: dict[str, Any], access: auth.Access, target: str
) -> tuple[auth.Principal, Raw]:
    """The caller of a signed WebSocket API request (``apiKey``, ``timestamp``,
    ``signature``, ``recvWindow``) with REST's checks of an API key, then the roles;
    and the :class:`Raw` the signature was found valid over."""
    api_key, signature = values.get("apiKey"), values.get("signature")
    if not isinstance(api_key, str):
        raise ApiError(MANDATORY_PARAM, "Mandatory parameter 'apiKey' was not sent.", "apiKey")
    if not isinstance(signature, str):
        raise ApiError(MANDATORY_PARAM, "Mandatory parameter 'signature' was not sent.",
                       "signature")  # fmt: skip
    candidates = payloads(values)
    for number, payload in enumerate(candidates):
        raw = Raw(payload + b"&signature=" + signature.encode(), b"", values)
        try:
            principal = await auth._by_key(services, ws, raw, api_key, access, False, target)
        except ApiError as error:
            if error.code != INVALID_SIGNATURE or number == len(candidates) - 1:
                raise
            continue
        if not principal.roles & access.roles:
            roles = sorted(access.roles)
            raise ApiError(FORBIDDEN, f"This request needs one of the roles {roles}.")
        assert principal.key_account is not None, "an API key has its account"
        return principal, raw
    raise AssertionError("unreachable: the last candidate raises or returns")


def _request(ws: WebSocket, endpoint: Endpoint, raw: Raw) -> Request:
    """The HTTP request REST would have had: the endpoint's method and path, the caller's
    address, the signed parameters as its query string, no headers."""
    scope: dict[str, Any] = {"type": "http", "method": endpoint.method, "path": endpoint.path,
             "root_path": "", "scheme": "http", "query_string": raw.query, "headers": [],
             "client": ws.scope.get("client"), "server": ws.scope.get("server")}  # fmt: skip
    return Request(scope)


async def call(
    services: Services, ws: WebSocket, method: str, params: dict[str, Any]
) -> tuple[Any, Usage]:
    """Run ``method`` as its REST endpoint; its JSON result and the caller's tighter usage
    of the endpoint's rate-limit bucket (raises :class:`ApiError` as REST would)."""
    endpoint = METHODS[method]
    values = checked_values(params)
    limit = services.config.limit(endpoint.bucket)
    by_ip = await auth.counted(services, limit, f"ip:{auth.client_ip(ws)}", endpoint.weight)
    principal, raw = await signed_principal(
        services, ws, values, endpoint.access, f"{endpoint.method} {endpoint.path}"
    )
    mine = await auth.counted(services, limit, principal.caller, endpoint.weight)
    validate(SignedParams, values, False)
    request = _request(ws, endpoint, raw)
    assert request.headers.get("idempotency-key") is None, "no headers on the WebSocket API"
    result = await run(services, endpoint, request, raw, principal, False)
    return result, min(by_ip, mine, key=lambda u: u.remaining)


def rate_limits(usage: Usage) -> list[dict[str, Any]]:
    """Binance's ``rateLimits`` of an answer: the bucket the request was counted in."""
    window_s = usage.limit.window_s
    assert window_s > 0, usage
    if window_s % 86_400 == 0:
        interval, number = "DAY", window_s // 86_400
    elif window_s % 60 == 0:
        interval, number = "MINUTE", window_s // 60
    else:
        interval, number = "SECOND", window_s
    kind = "ORDERS" if usage.limit.name == "order" else "REQUEST_WEIGHT"
    return [{"rateLimitType": kind, "interval": interval, "intervalNum": number,
             "limit": usage.limit.limit, "count": usage.used}]  # fmt: skip
