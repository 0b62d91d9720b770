"""The Starlette application: every endpoint, /openapi.json, /docs, /health.

    app = create_app(settings, config)      # an ASGI app; services open in its lifespan

Endpoints are declared in their modules (``ENDPOINTS``) and routed through
:mod:`.routing`; the OpenAPI document is generated from the same list.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tradex.infra.settings import Settings
from tradex.queries import (
    account,
    admin,
    auth_routes,
    docs_page,
    key_routes,
    ledger_routes,
    market_data,
    openapi,
    order_changes,
    orders,
    withdrawals,
)
from tradex.queries.config import ApiConfig
from tradex.queries.errors import NOT_FOUND, ApiError
from tradex.queries.routing import Endpoint, json_response, starlette_route
from tradex.queries.services import Services

ENDPOINTS: list[Endpoint] = [
    *market_data.ENDPOINTS,
    *orders.ENDPOINTS,
    *account.ENDPOINTS,
    *auth_routes.ENDPOINTS,
    *key_routes.ENDPOINTS,
    *ledger_routes.ENDPOINTS,
    *withdrawals.ENDPOINTS,
    *admin.ENDPOINTS,
    *order_changes.ENDPOINTS,
]


def create_app(
    settings: Settings, config: ApiConfig, clock_ns: Callable[[], int] = time.time_ns
) -> Starlette:
    document = openapi.document(ENDPOINTS)
    page = docs_page.render(document)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await Services.open(settings, config, clock_ns)
        app.state.services = services
        try:
            yield
        finally:
            await services.close()

    def services_of(request: Request) -> Services:
        found: Services = request.app.state.services
        return found

    async def openapi_json(_request: Request) -> Response:
        return json_response(document)

    async def docs(_request: Request) -> Response:
        return HTMLResponse(page)

    async def health(request: Request) -> Response:
        """Up, with the read models' readiness (the stack's status asks this)."""
        services = services_of(request)
        found: dict[str, Any] = {"status": "ok", "prefix": settings.topic_prefix}
        try:
            found["instruments"] = len(await services.catalog.markets())
        except Exception as exc:  # a read model not live yet: still up
            found["instruments"] = f"unavailable: {exc}"
        return json_response(found)

    async def not_found(request: Request, _exc: Exception) -> Response:
        return ApiError(NOT_FOUND, f"No endpoint {request.method} {request.url.path}.").response()

    async def not_allowed(request: Request, _exc: Exception) -> Response:
        error = ApiError(NOT_FOUND, f"{request.method} is not allowed on {request.url.path}.")
        error.status = 405
        return error.response()

    routes = [starlette_route(services_of, endpoint) for endpoint in ENDPOINTS]
    routes += [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_allowed}
    )
