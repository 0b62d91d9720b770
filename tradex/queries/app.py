"""The Starlette application: every endpoint, /openapi.json, /docs, /health.

    app = create_app(settings, config)      # an ASGI app; services open in its lifespan

Endpoints are declared in their modules (``ENDPOINTS``) and routed through
:mod:`.routing`; the OpenAPI document is generated from the same list.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.websockets import WebSocket

from tradex import console
from tradex.infra import redis_client
from tradex.infra.settings import Settings
from tradex.observability import metrics, metrics_server, tracing
from tradex.projections.redis_read import AsyncMarketReader
from tradex.queries import (
    account,
    admin,
    audit_status,
    auth_routes,
    docs_page,
    key_routes,
    ledger_routes,
    market_data,
    openapi,
    order_changes,
    orders,
    user_stream_routes,
    withdrawals,
    ws_api,
    ws_fanout,
    ws_gateway,
)
from tradex.queries.config import ApiConfig
from tradex.queries.errors import NOT_FOUND, ApiError
from tradex.queries.routing import Endpoint, direct_asgi, json_response, starlette_route
from tradex.queries.services import Services
from tradex.queries.ws_fanout import Fanout

ENDPOINTS: list[Endpoint] = [
    *market_data.ENDPOINTS,
    *orders.ENDPOINTS,
    *account.ENDPOINTS,
    *auth_routes.ENDPOINTS,
    *key_routes.ENDPOINTS,
    *ledger_routes.ENDPOINTS,
    *audit_status.ENDPOINTS,
    *withdrawals.ENDPOINTS,
    *admin.ENDPOINTS,
    *order_changes.ENDPOINTS,
    *user_stream_routes.ENDPOINTS,
]


def create_app(
    settings: Settings, config: ApiConfig, clock_ns: Callable[[], int] = time.time_ns
) -> Starlette:
    document = openapi.document(ENDPOINTS)
    page = docs_page.render(document)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        profiler = cProfile.Profile() if config.profile_path is not None else None
        if profiler is not None:  # this thread: the event loop's, every request's handler
            profiler.enable()
        services = await Services.open(settings, config, clock_ns)
        app.state.services = services
        feeds = redis_client.async_client(settings, max_connections=ws_fanout.FEED_CONNECTIONS_MAX)
        app.state.fanout = Fanout(AsyncMarketReader(settings, feeds))
        services.fanout = app.state.fanout  # the hot reads' cache follows its feeds
        metrics.register_fanout(app.state.fanout)
        metrics_server.report_audit(settings)
        # What start-up made lives as long as the worker: out of the collector's sight, so
        # its full collections do not walk the modules and caches again and again.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.fanout.close()
            await feeds.aclose()
            await services.close()
            if profiler is not None and config.profile_path is not None:
                profiler.disable()
                profiler.dump_stats(f"{config.profile_path}.{os.getpid()}")

    def services_of(request: Request | WebSocket) -> Services:
        found: Services = request.app.state.services
        return found

    def fanout_of(connection: Any) -> Fanout:
        found: Fanout = connection.app.state.fanout
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
        found["websocket"] = request.app.state.fanout.stats()
        return json_response(found)

    async def not_found(request: Request, _exc: Exception) -> Response:
        return ApiError(NOT_FOUND, f"No endpoint {request.method} {request.url.path}.").response()

    async def not_allowed(request: Request, _exc: Exception) -> Response:
        error = ApiError(NOT_FOUND, f"{request.method} is not allowed on {request.url.path}.")
        error.status = 405
        return error.response()

    routes: list[BaseRoute] = [starlette_route(services_of, e) for e in ENDPOINTS]
    routes += [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics.metrics_endpoint, methods=["GET"]),
        *ws_gateway.routes(services_of, fanout_of),
        *ws_api.routes(services_of, fanout_of),
        *console.routes(),
    ]
    app = _App(
        routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_allowed}
    )
    app.add_middleware(metrics.ApiMetrics)
    app.add_middleware(_BoundBuffers)
    if tracing.enabled():
        app.add_middleware(tracing.TraceRequests)  # outermost: a span per request
    else:  # spans need the middleware: with tracing on, every request takes the stack
        app.direct = {(e.method, e.path): direct_asgi(services_of, e) for e in ENDPOINTS}
    return app


class _App(Starlette):
    """Starlette, with an exact-path dispatch in front: an HTTP request whose method and
    path are an endpoint's goes straight to it (:func:`.routing.direct_asgi`: the same
    checks, handler and metrics), skipping the router's search over ~70 routes and the
    middlewares' wrappers — about a third of a public read's CPU. Anything else (another
    method on a path, WebSockets, /docs, the console) takes Starlette's stack."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct: dict[tuple[str, str], Callable[[Any, Any, Any], Any]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            found = self.direct.get((scope["method"], scope["path"]))
            if found is not None:
                scope["app"] = self
                await found(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class _BoundBuffers:
    """:func:`.ws_gateway.bound_buffers` as a Starlette middleware (outermost, so it sees
    the server's own ``send``)."""

    def __init__(self, app: Any) -> None:
        self.asgi = ws_gateway.bound_buffers(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.asgi(scope, receive, send)
