"""Endpoints as data, and the one path every request takes through them.

An :class:`Endpoint` declares its method, path, parameter model, response model, access
and rate-limit bucket; the OpenAPI document is generated from these declarations
(:mod:`.openapi`) and :func:`starlette_route` turns each into a Starlette route that does,
in order: count the caller's IP in the bucket → authenticate (private endpoints) →
count the caller (with an access token these three are one Redis round trip,
:func:`.auth.admit_token`) → validate the parameters → call the handler → JSON. Any
:class:`ApiError` on the way becomes the one error shape; nothing later in the chain runs,
so a rejected request writes nothing.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tradex.commands.async_client import CommandTimeout
from tradex.observability.metrics import observe_request
from tradex.projections.redis_read import NotLive
from tradex.queries.auth import (
    PUBLIC,
    Access,
    Principal,
    admit_token,
    authenticate,
    bearer_token,
    client_ip,
    counted,
)
from tradex.queries.errors import (
    MANDATORY_PARAM,
    NOT_LIVE,
    TIMEOUT,
    UNKNOWN,
    ApiError,
    param_error,
)
from tradex.queries.params import Raw, read_raw, validate
from tradex.queries.services import Services

log = logging.getLogger("tradex.api")


class SignedParams(BaseModel):
    """The signed-request parameters, well formed whenever they are sent (API keys check
    their values; with an access token they are not needed)."""

    model_config = ConfigDict(extra="ignore")
    timestamp: Annotated[int, Field(ge=0)] | None = None
    recvWindow: Annotated[int, Field(ge=1, le=60_000)] | None = None
    signature: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")] | None = None


IDEMPOTENCY_HEADER = "idempotency-key"
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
TRADEX_PREFIX = "/tradex/"


@dataclass
class Call:
    """What a handler gets."""

    request: Request
    services: Services
    endpoint: Endpoint
    raw: Raw
    params: Any  # the endpoint's query model, validated (None without one)
    body: Any  # the endpoint's body model, validated (None without one)
    principal: Principal | None

    @property
    def tradex(self) -> bool:
        return self.endpoint.tradex

    @property
    def user(self) -> Principal:
        assert self.principal is not None, "a private endpoint without a principal"
        return self.principal

    def idempotency_key(self) -> str | None:
        return self.request.headers.get(IDEMPOTENCY_HEADER)


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    query: type[BaseModel] | None = None  # parameters in the query string (or form body)
    body: type[BaseModel] | None = None  # a JSON (or form) body
    response: Any = None  # the 200 body's type (a pydantic model, or list[...] of one)
    access: Access = PUBLIC
    bucket: str = "read"  # rate-limit bucket
    weight: int = 1
    status: int = 200
    state_changing: bool = False  # takes Idempotency-Key

    @property
    def tradex(self) -> bool:
        return self.path.startswith(TRADEX_PREFIX)


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status, headers, media_type="application/json")


async def _handle(services: Services, endpoint: Endpoint, request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        tradex = endpoint.tradex
        limit = services.config.limit(endpoint.bucket)
        principal = None
        token = None if endpoint.access.public else bearer_token(request)
        if token is not None:  # counted and authenticated in one Redis round trip
            principal, usage = await admit_token(
                services, request, token, endpoint.access, limit, endpoint.weight
            )
            raw = await read_raw(request, tradex)
        else:
            usage = await counted(services, limit, f"ip:{client_ip(request)}", endpoint.weight)
            raw = await read_raw(request, tradex)
            if not endpoint.access.public:
                principal = await authenticate(services, request, raw, endpoint.access, tradex)
                mine = await counted(services, limit, principal.caller, endpoint.weight)
                usage = min(usage, mine, key=lambda u: u.remaining)
        if principal is not None and endpoint.access.keys:  # documented: checked for all
            validate(SignedParams, raw.values, tradex)
        headers.update(usage.headers())
        result = await run(services, endpoint, request, raw, principal, tradex)
    except ApiError as error:
        error.headers = {**headers, **error.headers}
        return error.response()
    except NotLive as exc:
        return ApiError(
            NOT_LIVE, f"The read model is not ready yet: {exc}.", headers=headers
        ).response()
    except CommandTimeout:
        return ApiError(TIMEOUT, headers=headers).response()
    except Exception:
        log.exception("%s %s failed", request.method, request.url.path)
        return ApiError(UNKNOWN, headers=headers).response()
    if isinstance(result, Response):
        _add_headers(result, headers)
        return result
    return json_response(result, endpoint.status, headers)


def _add_headers(response: Response, headers: dict[str, str]) -> None:
    """``headers`` set on a handler's own response: appended to its raw headers (Starlette's
    ``MutableHeaders`` rebuilds the list for each one, ~12 % of a public read's CPU), or
    replacing one the handler set under the same name."""
    raw = response.raw_headers
    names = {name for name, _ in raw}
    for name, value in headers.items():
        key = name.lower().encode("latin-1")
        if key in names:
            response.headers[name] = value
        else:
            raw.append((key, value.encode("latin-1")))


async def run(
    services: Services, endpoint: Endpoint, request: Request, raw: Raw,
    principal: Principal | None, tradex: bool,
) -> Any:  # fmt: skip
    """The last steps of every request once it is admitted and authenticated (REST, and
    the WebSocket API's methods): its Idempotency-Key's form, its parameters and body
    validated, the handler called with the :class:`Call`."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if endpoint.state_changing and key is not None and not IDEMPOTENCY_KEY.match(key):
        raise param_error(MANDATORY_PARAM, "Idempotency-Key",
                          "Idempotency-Key must be 1..64 of A-Z a-z 0-9 . _ : -", tradex)  # fmt: skip
    params = validate(endpoint.query, raw.values, tradex) if endpoint.query else None
    body = validate(endpoint.body, raw.values, tradex) if endpoint.body else None
    return await endpoint.handler(Call(request, services, endpoint, raw, params, body, principal))


def direct_asgi(
    services_of: Callable[[Request], Services], endpoint: Endpoint
) -> Callable[[Any, Any, Any], Awaitable[None]]:
    """``endpoint`` as a bare ASGI app for the app's exact-path dispatch (:mod:`.app`): the
    same :func:`_handle` and request metrics, without the router's and middlewares' layers."""
    method, path = endpoint.method, endpoint.path

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        response = await _handle(services_of(request), endpoint, request)
        await response(scope, receive, send)
        observe_request(method, path, response.status_code, time.perf_counter() - started)

    return asgi


def starlette_route(services_of: Callable[[Request], Services], endpoint: Endpoint) -> Route:
    async def asgi(request: Request) -> Response:
        return await _handle(services_of(request), endpoint, request)

    return Route(
        endpoint.path, asgi, methods=[endpoint.method], name=f"{endpoint.method} {endpoint.path}"
    )
