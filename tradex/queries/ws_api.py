"""Binance's WebSocket API (``/ws-api/v3``): user-data subscriptions, trading, orders.

ccxt.pro's ``binance`` and python-binance no longer use listenKeys for spot user data, and
trading bots send orders over this socket for latency: they open
``wss://ws-api.binance.com/ws-api/v3`` and send ``{"id", "method", "params"}``. Signed
methods carry ``apiKey``, ``timestamp``, ``signature`` (HMAC of the other parameters
sorted by name, as a query string; :mod:`.ws_api_trade`) and optionally ``recvWindow``.

- ``userDataStream.subscribe.signature``: ``{"id", "status": 200, "result":
  {"subscriptionId": n}}``; then every event of the key's account comes as
  ``{"subscriptionId": n, "event": <payload>}`` (the payloads of :mod:`.user_events`);
  ``userDataStream.unsubscribe`` (one subscription by ``subscriptionId``, or all).
- ``order.place``, ``order.status``, ``order.cancel``, ``order.cancelReplace``,
  ``order.amend.keepPriority``, ``openOrders.status``, ``openOrders.cancelAll``,
  ``allOrders``, ``account.status``, ``myTrades``: the REST endpoint of the same name
  (:data:`.ws_api_trade.METHODS`) with REST's checks, rate limits and replay protection,
  its body as ``result`` (with ``rateLimits`` unless ``returnRateLimits`` is false).
- ``ping``, ``time``.

Any other method, or a refused request: ``{"id", "status": 4xx, "error": {"code",
"msg"}}`` with REST's code and status. Requests on one connection are answered one at a
time, in order. Not served: ``session.logon`` (Ed25519 sessions), ``order.test``, order
lists, market data.

A subscription's API key is looked up again every ``ws_auth_check_ms`` (:mod:`.ws_guard`):
once revoked (or its user deactivated) the subscription ends with Binance's
``{"subscriptionId": n, "event": {"e": "eventStreamTerminated", "E": ms}}``; the
connection and its other subscriptions stay.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tradex.commands.async_client import CommandTimeout
from tradex.projections.redis_read import NotLive
from tradex.queries import auth, ws_api_trade, ws_guard, ws_user
from tradex.queries.errors import (
    INVALID_PARAMETER,
    MANDATORY_PARAM,
    NOT_LIVE,
    TIMEOUT,
    UNKNOWN,
    ApiError,
)
from tradex.queries.listen_keys import Bound
from tradex.queries.params import PARAMS_MAX  # parameters of one request, as REST
from tradex.queries.ws_fanout import Fanout, FeedsFull
from tradex.queries.ws_gateway import Connection, bound_socket

log = logging.getLogger("tradex.ws")

SUBSCRIPTIONS_MAX = 8  # user-data subscriptions on one connection
METHODS = ("ping", "time", "userDataStream.subscribe.signature", "userDataStream.unsubscribe",
           *ws_api_trade.METHODS)  # fmt: skip


class WsApiConnection(Connection):
    def __init__(self, websocket: WebSocket, services: Any, fanout: Fanout) -> None:
        super().__init__(websocket, services, fanout)
        self.next_subscription = 0

    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            message = None
        if not isinstance(message, dict):
            self.send({"id": None, "status": 400,
                       "error": {"code": -1102, "msg": "The message is not a JSON object."}})  # fmt: skip
            return
        request_id = message.get("id")
        try:
            if not isinstance(request_id, str | int | None) or isinstance(request_id, bool):
                raise ApiError(INVALID_PARAMETER, "'id' must be a string or an integer.", "id")
            self.send({"id": request_id, "status": 200,
                       **await self.call(message.get("method"), message.get("params", {}))})  # fmt: skip
        except ApiError as error:
            self.send(self.error(request_id, error))
        except (NotLive, FeedsFull) as exc:
            self.send(self.error(request_id, ApiError(NOT_LIVE, f"Not possible now: {exc}.")))
        except CommandTimeout:
            self.send(self.error(request_id, ApiError(TIMEOUT)))
        except Exception:  # as REST: -1000, and the connection stays
            log.exception("WebSocket API request %r failed", request_id)
            self.send(self.error(request_id, ApiError(UNKNOWN)))

    @staticmethod
    def error(request_id: Any, error: ApiError) -> dict[str, Any]:
        found: dict[str, Any] = {"code": error.code.code, "msg": error.msg}
        if error.data is not None:  # cancel-replace: both outcomes, as Binance
            found["data"] = error.data
        return {"id": request_id, "status": error.status, "error": found}

    async def call(self, method: Any, params: Any) -> dict[str, Any]:
        """The answer's ``result`` (and ``rateLimits``) of one request."""
        if method not in METHODS:
            raise ApiError(INVALID_PARAMETER, f"Unsupported method {str(method)[:60]!r}: this "
                           f"WebSocket API serves {', '.join(METHODS)}.", "method")  # fmt: skip
        if not isinstance(params, dict) or len(params) > PARAMS_MAX:
            raise ApiError(MANDATORY_PARAM, f"'params' must be an object of at most {PARAMS_MAX} "
                           "parameters.", "params")  # fmt: skip
        if method in ws_api_trade.METHODS:
            result, usage = await ws_api_trade.call(self.services, self.ws, method, params)
            if params.get("returnRateLimits") in (False, "false"):
                return {"result": result}
            return {"result": result, "rateLimits": ws_api_trade.rate_limits(usage)}
        if method == "ping":
            return {"result": {}}
        if method == "time":
            return {"result": {"serverTime": self.now_ms()}}
        if method == "userDataStream.unsubscribe":
            return {"result": self.unsubscribe_user(params.get("subscriptionId"))}
        return {"result": await self.subscribe_user(params)}

    async def subscribe_user(self, params: dict[str, Any]) -> dict[str, Any]:
        values = ws_api_trade.checked_values(params)
        principal, _raw = await ws_api_trade.signed_principal(
            self.services, self.ws, values, auth.TRADER, "userDataStream.subscribe.signature"
        )
        api_key = values["apiKey"]
        assert principal.key_account is not None, "an API key has its account"
        if len(self.subs) >= SUBSCRIPTIONS_MAX:
            raise ApiError(INVALID_PARAMETER, f"At most {SUBSCRIPTIONS_MAX} subscriptions.")
        number = self.next_subscription
        self.next_subscription += 1

        def wrap(payload: dict[str, Any]) -> dict[str, Any]:
            return {"subscriptionId": number, "event": payload}

        bound = Bound(principal.key_account, principal.user_id)
        name = f"subscription:{number}"
        await ws_user.follow(self, name, bound, wrap)

        async def terminated(_verdict: ws_guard.Verdict) -> None:
            if self.unsubscribe(name):  # Binance: the event, then nothing more of it
                self.send(wrap({"e": "eventStreamTerminated", "E": self.now_ms()}))

        self.guards.add(name, ws_guard.key_alive(self.services, api_key), terminated)
        return {"subscriptionId": number}

    def unsubscribe_user(self, number: Any) -> dict[str, Any]:
        if number is None:
            for name in list(self.subs):
                self.unsubscribe(name)
            return {}
        if not self.unsubscribe(f"subscription:{number}"):
            raise ApiError(INVALID_PARAMETER, "No such subscriptionId.", "subscriptionId")
        return {}


def routes(services_of: Any, fanout_of: Any) -> list[WebSocketRoute]:
    async def ws_api(websocket: WebSocket) -> None:
        bound_socket(websocket)
        await websocket.accept()
        connection = WsApiConnection(websocket, services_of(websocket), fanout_of(websocket))
        await connection.serve(connection.handle)

    return [WebSocketRoute("/ws-api/v3", ws_api)]
