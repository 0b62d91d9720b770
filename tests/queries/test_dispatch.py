"""The app's exact-path dispatch and the kept query values, without services: a request
for an endpoint's method and path goes straight to it, anything else takes Starlette's
stack (405, 404, WebSockets); a GET's parameters are checked once per query string, a bad
one is refused every time, and each request gets its own values."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tradex.queries import params
from tradex.queries.app import _App
from tradex.queries.errors import ApiError


def test_an_endpoints_method_and_path_go_straight_to_it_and_the_rest_to_the_router() -> None:
    direct: list[str] = []

    async def routed(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("routed")

    async def straight(scope: Any, receive: Any, send: Any) -> None:
        direct.append(scope["path"])
        assert scope["app"] is app  # what a handler's request.app reads
        await PlainTextResponse("direct")(scope, receive, send)

    app = _App(routes=[Route("/api/v3/depth", routed, methods=["GET"])])
    app.direct = {("GET", "/api/v3/depth"): straight}
    with TestClient(app) as client:
        assert client.get("/api/v3/depth?symbol=X").text == "direct"
        assert client.post("/api/v3/depth").status_code == 405  # the router's answer
        assert client.get("/api/v3/nothing").status_code == 404
    assert direct == ["/api/v3/depth"]


def _request(query: bytes, method: str = "GET") -> Request:
    scope = {"type": "http", "method": method, "path": "/x", "query_string": query,
             "headers": []}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request(scope, receive)


def test_a_gets_checked_values_are_kept_by_query_string_and_copied_per_request() -> None:
    async def run() -> None:
        params._queries.clear()
        first = await params.read_raw(_request(b"symbol=BTCUSD&limit=5"), False)
        assert first.values == {"symbol": "BTCUSD", "limit": "5"}
        assert (b"symbol=BTCUSD&limit=5", False) in params._queries
        first.values["limit"] = "changed"  # a handler's change stays its own
        again = await params.read_raw(_request(b"symbol=BTCUSD&limit=5"), False)
        assert again.values == {"symbol": "BTCUSD", "limit": "5"}
        for _ in range(2):  # refused each time, never kept
            with pytest.raises(ApiError):
                await params.read_raw(_request(b"symbol=&limit=5"), False)
        assert (b"symbol=&limit=5", False) not in params._queries
        await params.read_raw(_request(b"a=1", "DELETE"), False)  # only GETs are kept
        assert (b"a=1", False) not in params._queries
        for k in range(params.QUERIES_KEPT_MAX + 5):  # bounded
            await params.read_raw(_request(f"n={k}".encode()), False)
        assert len(params._queries) <= params.QUERIES_KEPT_MAX

    asyncio.run(run())


def test_the_rate_limit_headers_join_a_handlers_response_and_replace_its_own() -> None:
    from tradex.queries.routing import _add_headers

    response = PlainTextResponse("x", headers={"X-RateLimit-Limit": "stale"})
    _add_headers(response, {"X-RateLimit-Limit": "1200", "X-MBX-USED-WEIGHT-1M": "7"})
    assert response.headers.getlist("x-ratelimit-limit") == ["1200"]
    assert response.headers["x-mbx-used-weight-1m"] == "7"
    assert response.headers["content-type"].startswith("text/plain")
