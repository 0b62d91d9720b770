"""The part of Binance's WebSocket API (``/ws-api/v3``) that user-data clients need.

ccxt.pro's ``binance`` and python-binance's user socket no longer use listenKeys for spot:
they open ``wss://ws-api.binance.com/ws-api/v3`` and send
``userDataStream.subscribe.signature`` (``apiKey``, ``timestamp``, ``signature`` = HMAC
of the other parameters sorted by name, as a query string; ``recvWindow`` optional). The
answer is ``{"id", "status": 200, "result": {"subscriptionId": n}}``; then every event of
the key's account comes as ``{"subscriptionId": n, "event": <payload>}`` (the payloads
of :mod:`.user_events`). Also served: ``userDataStream.unsubscribe`` (one subscription by
``subscriptionId``, or all), ``ping``, ``time``. Any other method, or a refused
signature: ``{"id", "status": 4xx, "error": {"code", "msg"}}`` with Binance's code. Not
served: trading over this socket (``order.place`` …), ``session.logon``.

A subscription's API key is looked up again every ``ws_auth_check_ms`` (:mod:`.ws_guard`):
once revoked (or its user deactivated) the subscription ends with Binance's
``{"subscriptionId": n, "event": {"e": "eventStreamTerminated", "E": ms}}``; the
connection and its other subscriptions stay.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tradex.projections.redis_read import NotLive
from tradex.queries import auth, ws_guard, ws_user
from tradex.queries.errors import FORBIDDEN, INVALID_PARAMETER, MANDATORY_PARAM, NOT_LIVE, ApiError
from tradex.queries.listen_keys import Bound
from tradex.queries.params import Raw
from tradex.queries.ws_fanout import Fanout, FeedsFull
from tradex.queries.ws_gateway import Connection, bound_socket

SUBSCRIPTIONS_MAX = 8  # user-data subscriptions on one connection
PARAMS_MAX = 8
METHODS = ("ping", "time", "userDataStream.subscribe.signature", "userDataStream.unsubscribe")


class WsApiConnection(Connection):
    def __init__(self, websocket: WebSocket, services: Any, fanout: Fanout) -> None:
        super().__init__(websocket, services, fanout)
        self.next_subscription = 0

    async def handle(self, text: str) -> None:
        request_id: Any = None
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ValueError("not an object")
            request_id = message.get("id")
            if not isinstance(request_id, str | int | None) or isinstance(request_id, bool):
                raise ApiError(INVALID_PARAMETER, "'id' must be a string or an integer.", "id")
            result = await self.call(message.get("method"), message.get("params", {}))
            self.send({"id": request_id, "status": 200, "result": result})
        except ApiError as error:
            self.send({"id": request_id, "status": error.status,
                       "error": {"code": error.code.code, "msg": error.msg}})  # fmt: skip
        except (NotLive, FeedsFull) as exc:
            self.send({"id": request_id, "status": NOT_LIVE.status,
                       "error": {"code": NOT_LIVE.code, "msg": f"Not possible now: {exc}."}})  # fmt: skip
        except (ValueError, RecursionError):
            self.send({"id": request_id, "status": 400,
                       "error": {"code": -1102, "msg": "The message is not a JSON object."}})  # fmt: skip

    async def call(self, method: Any, params: Any) -> dict[str, Any]:
        if method not in METHODS:
            raise ApiError(INVALID_PARAMETER, f"Unsupported method {str(method)[:60]!r}: this "
                           f"WebSocket API serves {', '.join(METHODS)}.", "method")  # fmt: skip
        if not isinstance(params, dict) or len(params) > PARAMS_MAX:
            raise ApiError(MANDATORY_PARAM, "'params' must be an object.", "params")
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.now_ms()}
        if method == "userDataStream.unsubscribe":
            return self.unsubscribe_user(params.get("subscriptionId"))
        return await self.subscribe_user(params)

    async def subscribe_user(self, params: dict[str, Any]) -> dict[str, Any]:
        api_key, signature = params.get("apiKey"), params.get("signature")
        if not isinstance(api_key, str) or not isinstance(signature, str):
            raise ApiError(MANDATORY_PARAM, "'apiKey' and 'signature' are mandatory.", "apiKey")
        signed = sorted((k, str(v)) for k, v in params.items() if k != "signature")
        query = f"{urlencode(signed)}&signature={signature}".encode()
        values: dict[str, Any] = {k: params[k] for k in ("timestamp", "recvWindow") if k in params}
        principal = await auth._by_key(self.services, self.ws, Raw(query, b"", values), api_key,
                                       auth.TRADER, False)  # fmt: skip
        if not principal.roles & auth.TRADER.roles or principal.key_account is None:
            raise ApiError(FORBIDDEN, "User data streams are for traders.")
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
