"""The WebSocket gateway: one connection, many subscriptions, fanned out from Redis.

Routes (in the API process, next to REST; docs/api.md *WebSocket*):

- ``/tradex/v1/ws``: the TradeX protocol (:mod:`.ws_protocol`): public ``book`` (snapshot,
  then updates with ``firstSeq``/``seq``), ``trades``, ``ticker``, ``candles:<interval>``;
  after ``auth`` (access token, or API key + signed timestamp; or an ``Authorization:
  Bearer`` header on the upgrade request) the caller's ``orders``, ``fills``,
  ``balances`` — while that credential lives (:mod:`.ws_guard`: a revoked session or key,
  an expired token end them with an error frame); ``ping`` → ``pong``.
- ``/ws``, ``/ws/<stream>[/<stream>…]``, ``/stream?streams=a/b``: Binance's stream names
  and frames (combined frames wrapped as ``{"stream", "data"}``), ``SUBSCRIBE`` /
  ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS``; a listenKey among the names is the account's
  user-data stream (:mod:`.ws_user`; the WebSocket API's ``/ws-api/v3``: :mod:`.ws_api`).

Each connection has a bounded outgoing queue drained by its own task
(:class:`.ws_fanout.Client`); a client that does not keep up is closed with code 1008 and
the reason. Protocol pings/pongs are uvicorn's (``ws_ping_interval``/``ws_ping_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets import protocol as sansio

from tradex.projections.redis_read import Channel, NotLive
from tradex.projections.timescale import INTERVALS_BY_NAME
from tradex.queries import (
    auth,
    binance_format,
    listen_keys,
    ws_format,
    ws_guard,
    ws_kline,
    ws_user,
)
from tradex.queries import ws_protocol as proto
from tradex.queries.errors import INVALID_LISTEN_KEY, REJECTED_MBX_KEY, TOKEN_INVALID, ApiError
from tradex.queries.market_data import ticker_body
from tradex.queries.markets import Market
from tradex.queries.params import Raw
from tradex.queries.services import Services
from tradex.queries.ws_fanout import Client, Entry, Fanout, FeedsFull, FrameWriter, Render, Sub
from tradex.queries.ws_format import dumps

log = logging.getLogger("tradex.ws")

SLOW_CLOSE_CODE = 1008  # policy violation: the reason says "slow consumer"
CLOSE_TIMEOUT_S = 30.0  # the close frame waits behind what the slow client has not read
PRIVATE_ACCESS = auth.TRADER  # read permission for API keys
SEND_BUFFER_BYTES = 131_072  # kernel send buffer of a WebSocket (Linux doubles it)
WRITE_BUFFER_BYTES = 65_536  # the event loop's buffer before a send waits
AUTH_GUARD = "auth"  # the TradeX connection's credential, among its guards (ws_guard)
TRANSPORT_KEY = "tradex.transport"
SEND_KEY = "tradex.send"  # the server's own ASGI send of a WebSocket


def bound_buffers(app: Any) -> Any:
    """ASGI middleware: WebSocket connections get bounded send buffers, so a client that
    does not read is found out after ~0.3 MiB rather than after the kernel's 4 MiB
    autotuned buffer (and holds that little memory meanwhile). It reaches the transport
    through uvicorn's ``send`` (a protocol method); served otherwise it does nothing. That
    ``send`` is kept too: the fan-out's messages go to it straight (:func:`_text_sender`)."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                scope = {**scope, TRANSPORT_KEY: transport, SEND_KEY: send}
        await app(scope, receive, send)

    return asgi


def _text_sender(websocket: WebSocket) -> Callable[[str], Awaitable[None]]:
    """How a connection's queued messages are sent: to the server's own ``send`` when
    :func:`bound_buffers` kept it (a message to 1,000 clients costs 1,000 sends: the
    Starlette WebSocket and the middlewares' wrappers add nothing a text frame needs after
    the accept), else ``websocket.send_text``. The server refuses a send after the
    disconnect (an ``OSError``), as Starlette would."""
    send = websocket.scope.get(SEND_KEY)
    if send is None:
        return websocket.send_text

    async def send_text(text: str) -> None:
        await send({"type": "websocket.send", "text": text})

    return send_text


def frame_writer(websocket: WebSocket) -> FrameWriter | None:
    """Writes a prepared frame (:func:`.ws_fanout.text_frame`) straight to the connection's
    transport when uvicorn's websockets-sansio protocol serves it (the one ``tradex run api``
    chooses) and the connection can take it now: open both ways, its write buffer under
    the high-water mark. A frame is written whole in one ``write``, so it never splits a
    frame of the protocol's own (pings, close). Served otherwise: None (every message goes
    through the server's ``send``)."""
    protocol: Any = getattr(websocket.scope.get(SEND_KEY), "__self__", None)
    conn = getattr(protocol, "conn", None)
    transport = getattr(protocol, "transport", None)
    writable = getattr(protocol, "writable", None)
    if not isinstance(conn, sansio.Protocol) or not isinstance(writable, asyncio.Event):
        return None
    if transport is None or not hasattr(protocol, "close_sent"):
        return None
    open_state = sansio.State.OPEN

    def write(frame: bytes) -> bool:
        if (
            conn.state is not open_state or protocol.close_sent or not writable.is_set()
            or transport.is_closing()
        ):  # fmt: skip
            return False
        transport.write(frame)
        return True

    return write


def bound_socket(websocket: WebSocket) -> None:
    """Bound the connection's send buffers (:func:`bound_buffers`)."""
    transport = websocket.scope.get(TRANSPORT_KEY)
    if transport is None:
        return
    try:
        transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    except (AttributeError, OSError, NotImplementedError) as exc:
        log.debug("cannot bound a WebSocket's buffers: %s", exc)


class Connection:
    """One WebSocket: its client queue, principal and subscriptions by name."""

    def __init__(self, websocket: WebSocket, services: Services, fanout: Fanout,
                 combined: bool = False) -> None:  # fmt: skip
        self.ws = websocket
        self.services = services
        self.fanout = fanout
        self.combined = combined
        self.client = Client(
            _text_sender(websocket), services.config.ws_queue_max, frame_writer(websocket)
        )
        self.principal: auth.Principal | None = None
        self.subs: dict[str, list[Sub]] = {}
        self.tasks: list[asyncio.Task[Any]] = []  # the connection's own, cancelled at its end
        self.guards = ws_guard.Guards(services.config.ws_auth_check_ms / 1_000, services.clock_ns)

    def send(self, message: Any) -> None:
        self.client.offer(dumps(message))

    def now_ms(self) -> int:
        return self.services.clock_ns() // 1_000_000

    async def serve(self, handle: Callable[[str], Awaitable[None]]) -> None:
        """Receive and handle messages until the client leaves or is dropped."""
        self.fanout.clients += 1
        self.fanout.open.add(self.client)
        sender: asyncio.Task[Any] = asyncio.create_task(self.client.run())
        receiver: asyncio.Task[Any] = asyncio.create_task(self._receive(handle))
        gone: asyncio.Task[Any] = asyncio.create_task(self.client.gone.wait())
        try:
            done, _ = await asyncio.wait({sender, receiver, gone},
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            for task in (sender, receiver, gone, *self.tasks):
                task.cancel()
            self.guards.close()
            reason = self.client.dropped
            self.client.drop("closed")
            self.fanout.clients -= 1
            self.fanout.open.discard(self.client)
            self.fanout.sent_closed += self.client.sent
        if reason is not None and reason != "closed":
            self.fanout.dropped += 1
            log.info("dropping a WebSocket client: %s", reason)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(SLOW_CLOSE_CODE, reason[:120]),
                                       CLOSE_TIMEOUT_S)  # fmt: skip
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if not isinstance(exc, WebSocketDisconnect | RuntimeError | OSError):
                    log.error("WebSocket connection failed", exc_info=exc)

    async def close_normally(self) -> None:
        """Close with 1000 (a stream that ended, e.g. an expired listenKey)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(1000), CLOSE_TIMEOUT_S)
        self.client.drop("closed")

    async def _receive(self, handle: Callable[[str], Awaitable[None]]) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                raw = message.get("bytes") or b""
                try:
                    text = raw.decode()
                except UnicodeDecodeError:
                    text = "\x00"  # refused by the parser as not JSON
            await handle(text)

    # -- subscriptions --------------------------------------------------------------------

    def _room(self, name: str, request_id: Any) -> None:
        if name in self.subs:
            raise proto.WsError(-1130, "ALREADY_SUBSCRIBED", f"Already subscribed to {name}.",
                                request_id)  # fmt: skip
        if len(self.subs) >= proto.STREAMS_MAX:
            raise proto.WsError(*proto.TOO_MANY_STREAMS,
                                f"At most {proto.STREAMS_MAX} subscriptions.", request_id)  # fmt: skip

    def unsubscribe(self, name: str) -> bool:
        self.guards.remove(name)
        subs = self.subs.pop(name, None)
        for sub in subs or []:
            sub.detach()
        return subs is not None

    async def _attach(self, channel: Channel, head: Callable[[], Awaitable[int]], sub: Sub,
                      live: bool = False) -> None:  # fmt: skip
        await self.fanout.attach(channel, head, sub, live=live)
        self.subs.setdefault(sub.name, []).append(sub)

    async def market(self, symbol: str, request_id: Any) -> Market:
        try:
            return await self.services.catalog.market(symbol)
        except ApiError as exc:
            raise proto.WsError(*proto.BAD_SYMBOL, exc.msg, request_id) from exc

    def _heads(self, instrument_id: int) -> tuple[Callable[[], Awaitable[int]], ...]:
        reader = self.services.market

        async def book_seq() -> int:
            return int((await reader.market(instrument_id)).get("book_seq", 0))

        async def trade_seq() -> int:
            return int((await reader.market(instrument_id)).get("trade_seq", 0))

        return book_seq, trade_seq

    def ticker_render(self, market: Market, key: Any, binance: str | None) -> Render:
        """Driven by the trades channel; each batch reads the ticker once."""
        reader = self.services.market

        async def render(entries: list[Entry]) -> list[str]:
            body = await ticker_body(reader, market)
            if binance is not None or key[-1] == "binance":
                return [
                    dumps(ws_format.wrap(binance, ws_format.binance_ticker(body, self.now_ms())))
                ]
            return [dumps({"type": "ticker", "channel": "ticker", "symbol": market.binance,
                           "seq": entries[-1][0] if entries else 0, **body})]  # fmt: skip

        return Render(key, render)

    def mini_ticker_render(self, market: Market, binance: str | None) -> Render:
        """Binance's ``<symbol>@miniTicker``: driven by the trades channel, like the ticker."""
        reader = self.services.market

        async def render(entries: list[Entry]) -> list[str]:
            body = await ticker_body(reader, market)
            return [
                dumps(ws_format.wrap(binance, ws_format.binance_mini_ticker(body, self.now_ms())))
            ]

        return Render(("miniTicker", market.instrument_id, binance), render)

    def book_top_render(self, market: Market, stream: proto.Stream, binance: str | None) -> Render:
        """Binance's ``<symbol>@bookTicker`` (the best bid and ask) and ``<symbol>@depth<N>``
        (the best N levels a side): driven by the book channel, each batch of changes reads
        the top once and sends it when it differs from the last one sent (a change deeper in
        the book moves neither); called with no entries, the current top (a new subscriber's
        first message)."""
        reader = self.services.market
        iid = market.instrument_id
        last: Any = None

        async def render(entries: list[Entry]) -> list[str]:
            nonlocal last
            if stream.kind == "bookTicker":
                bbo = await reader.bbo(iid)
                top: Any = bbo[2:]
                payload = ws_format.binance_book_ticker(market, bbo)
            else:
                book = await reader.book(iid, depth=stream.levels)
                top = (book.bids, book.asks)
                payload = binance_format.depth(market, book)
            if entries and top == last:
                return []
            last = top
            return [dumps(ws_format.wrap(binance, payload))]

        return Render((stream.kind, iid, stream.levels, binance), render)

    def kline_render(self, market: Market, interval: str, key: Any, binance: str | None,
                     native: bool) -> Render:  # fmt: skip
        """The candle of the last trade's interval, per batch of trades (``x``/``closed``
        false), and its final state once its interval has ended (true): by the clock
        (the render's ``tick``, called by the feed for every subscriber of ``key`` at
        once) or, when a trade of a later interval comes first, just before it
        (:mod:`.ws_kline`)."""
        reader = self.services.market
        iid = market.instrument_id
        seconds = INTERVALS_BY_NAME[interval].seconds
        closer = ws_kline.KlineCloser(seconds * 1_000_000_000)
        clock_ns = self.services.clock_ns

        def text(opened: int, candle: list[int], seq: int, trade_id: int, closed: bool) -> str:
            if native:
                return dumps(ws_format.candle(market, interval, seconds, seq, opened, candle,
                                              closed))  # fmt: skip
            payload = ws_format.binance_kline(market, interval, seconds, opened, candle,
                                              trade_id, clock_ns() // 1_000_000, closed)  # fmt: skip
            return dumps(ws_format.wrap(binance, payload))

        async def close(candle: ws_kline.OpenCandle) -> list[str]:
            found = ws_format.kline_of(await reader.candles(iid), candle.opened_ns, seconds)
            if found is None or found[0] != candle.opened_ns:
                return []
            return [text(found[0], found[1], candle.seq, candle.trade_id, True)]

        async def render(entries: list[Entry]) -> list[str]:
            row = await reader.market(iid)
            if not row.get("trade_seq"):
                return []
            found = ws_format.kline_of(await reader.candles(iid),
                                       int(row["last_trade_time_ns"]), seconds)  # fmt: skip
            if found is None:
                return []
            opened, candle = found
            seq = entries[-1][0] if entries else int(row["trade_seq"])
            trade_id = int(row["last_trade_id"])
            texts = []
            earlier = closer.close_before(opened, entries)
            if earlier is not None:
                texts += await close(earlier)
            closed = closer.sent(opened, seq, trade_id, clock_ns())
            return [*texts, text(opened, candle, seq, trade_id, closed)]

        async def tick() -> list[str]:
            due = closer.due(clock_ns())
            return [] if due is None else await close(due)

        return Render(key, render, tick)


# -- the TradeX protocol ------------------------------------------------------------------


class TradexConnection(Connection):
    async def handle(self, text: str) -> None:
        request_id = None
        try:
            request = proto.parse_native(text)
            request_id = request.request_id
            if request.op == "ping":
                self.send({"type": "pong", "id": request_id, "time": self.now_ms()})
            elif request.op == "auth":
                await self.authenticate(request)
            elif request.op == "subscribe":
                await self.subscribe(request)
            else:
                name = self.name_of(request)
                names = [n for n in self.subs if n == name or n.startswith(name + ":")]
                if not names:
                    raise proto.WsError(-1130, "NOT_SUBSCRIBED", f"Not subscribed to {name}.",
                                        request_id)  # fmt: skip
                for found in names:
                    self.unsubscribe(found)
                self.send({"type": "unsubscribed", "id": request_id, "channel": request.channel,
                           "symbol": request.symbol, "accountId": request.account_id})  # fmt: skip
        except proto.WsError as error:
            self.send(error.frame())
        except ApiError as error:
            self.send({"type": "error", **error.body(), "id": request_id})
        except FeedsFull as exc:
            self.send({"type": "error", "code": proto.TOO_MANY_STREAMS[0],
                       "error": proto.TOO_MANY_STREAMS[1], "msg": str(exc), "id": request_id})  # fmt: skip
        except NotLive as exc:
            self.send({"type": "error", "code": -70012, "error": "NOT_LIVE",
                       "msg": f"The read model is not ready yet: {exc}.", "id": request_id})  # fmt: skip

    def name_of(self, request: proto.NativeRequest) -> str:
        if request.private:
            base = str(request.channel)
            return base if request.account_id is None else f"{base}:{request.account_id}"
        return f"{request.channel}:{str(request.symbol).upper().replace('-', '')}"

    async def authenticate(self, request: proto.NativeRequest) -> None:
        if request.token is not None:
            principal = await principal_of_token(self.services, request.token, self.ws)
        else:
            assert request.api_key is not None and request.timestamp is not None
            payload = proto.signed_payload(request.api_key, request.timestamp)
            query = f"{payload}&signature={request.signature}".encode()
            raw = Raw(query, b"", {"timestamp": request.timestamp})
            principal = await auth._by_key(
                self.services, self.ws, raw, request.api_key, PRIVATE_ACCESS, True, "ws auth"
            )
        if not principal.roles & PRIVATE_ACCESS.roles:
            raise proto.WsError(-70004, "FORBIDDEN", "Private channels are for traders.",
                                request.request_id)  # fmt: skip
        self.trust(principal, request.api_key, request.request_id)
        accounts = await self.accounts(None)
        self.send({"type": "authenticated", "id": request.request_id,
                   "userId": principal.user_id, "accountIds": accounts})  # fmt: skip

    def trust(self, principal: auth.Principal, api_key: str | None = None,
              request_id: Any = None) -> None:  # fmt: skip
        """Serve ``principal``'s private channels while its credential lives: its session
        (or API key) is looked up every ``ws_auth_check_ms`` and the token's expiry is a
        deadline (:mod:`.ws_guard`); once dead, :meth:`end_private`. A new ``auth`` for the
        same user and account scope replaces the credential (a refreshed token); another
        one while private subscriptions are open is refused (they were granted to the
        first)."""
        old = self.principal
        if (
            old is not None and self.private_names()
            and (old.user_id, old.key_account) != (principal.user_id, principal.key_account)
        ):  # fmt: skip
            raise proto.WsError(-70004, "FORBIDDEN", "Unsubscribe from the private channels "
                                "before authenticating as another user or API key account.",
                                request_id)  # fmt: skip
        if principal.session_id is not None:
            alive = ws_guard.session_alive(self.services, principal.session_id)
        else:
            assert api_key is not None, "an API key's principal is checked by its key"
            alive = ws_guard.key_alive(self.services, api_key)
        self.principal = principal
        self.guards.add(AUTH_GUARD, alive, self.end_private, principal.expires_ns)

    def private_names(self) -> list[str]:
        return sorted(n for n in self.subs if n.partition(":")[0] in proto.PRIVATE_CHANNELS)

    async def end_private(self, verdict: ws_guard.Verdict, request_id: Any = None) -> None:
        """The credential has expired or was revoked: forget it, end every private
        subscription (public ones stay) and say so in an error frame (``TOKEN_INVALID``,
        or ``REJECTED_MBX_KEY`` for an API key) naming them."""
        principal, self.principal = self.principal, None
        self.guards.remove(AUTH_GUARD)
        names = self.private_names()
        for name in names:
            self.unsubscribe(name)
        if verdict == "expired":
            code, why = TOKEN_INVALID, "The access token has expired"
        elif principal is not None and principal.session_id is None:
            code, why = REJECTED_MBX_KEY, "The API key was revoked"
        else:
            code, why = TOKEN_INVALID, auth.SESSION_REVOKED.rstrip(".")
        dropped = f"; unsubscribed from {', '.join(names)}" if names else ""
        error = ApiError(code, f"{why}{dropped}. Authenticate again for private channels.")
        self.send({"type": "error", **error.body(), "id": request_id})

    async def accounts(self, account_id: int | None) -> list[int]:
        principal = self.principal
        assert principal is not None
        if account_id is not None:
            return [await auth.own_account(self.services, principal, account_id)]
        if principal.key_account is not None:
            return [principal.key_account]
        return list(await self.services.store.accounts_of(principal.user_id))

    async def subscribe(self, request: proto.NativeRequest) -> None:
        request_id, channel = request.request_id, str(request.channel)
        if request.private:
            await self.subscribe_private(request)
            return
        market = await self.market(str(request.symbol), request_id)
        name = f"{channel}:{market.binance}"
        self._room(name, request_id)
        iid = market.instrument_id
        book_head, trade_head = self._heads(iid)
        reader = self.services.market
        subscribed = {"type": "subscribed", "id": request_id, "channel": channel,
                      "symbol": market.binance}  # fmt: skip
        if channel == "book":

            async def update(entries: list[Entry]) -> list[str]:
                return [dumps(ws_format.book_update(market, entries))]

            sub = Sub(self.client, Render(("book", iid), update), name=name)
            await self._attach(Channel.book(iid), book_head, sub)
            book = await reader.book(iid, request.depth)
            self.send({**subscribed, "seq": book.book_seq})
            self.send(ws_format.book_snapshot(market, book.book_seq, book.bids, book.asks))
            await sub.activate(book.book_seq)
        elif channel == "trades":

            async def batch(entries: list[Entry]) -> list[str]:
                return [dumps(ws_format.trades(market, entries))]

            sub = Sub(self.client, Render(("trades", iid), batch), name=name)
            await self._attach(Channel.trades(iid), trade_head, sub)
            seq = await trade_head()
            self.send({**subscribed, "seq": seq})
            await sub.activate(seq)
        else:  # ticker, candles:<interval>: moved by trades; the current one at once
            if channel == "ticker":
                render = self.ticker_render(market, ("ticker", iid, "native"), None)
            else:
                interval = channel.split(":", 1)[1]
                render = self.kline_render(market, interval, ("candles", iid, interval), None,
                                           native=True)  # fmt: skip
            sub = Sub(self.client, render, name=name)
            await self._attach(Channel.trades(iid), trade_head, sub, live=True)
            seq = await trade_head()
            self.send({**subscribed, "seq": seq})
            if seq:
                for text in await render.fn([(seq, {})]):
                    self.client.offer(text)

    async def subscribe_private(self, request: proto.NativeRequest) -> None:
        request_id, channel = request.request_id, str(request.channel)
        if self.principal is None:
            raise proto.WsError(*proto.UNAUTHORIZED,
                                f"Authenticate ({{'op': 'auth'}}) before subscribing to {channel}.",
                                request_id)  # fmt: skip
        verdict = await self.guards.verdict(AUTH_GUARD)
        if verdict != "alive":
            await self.end_private(verdict, request_id)
            return
        accounts = await self.accounts(request.account_id)
        name = self.name_of(request)
        self._room(name, request_id)
        reader, catalog = self.services.market, self.services.catalog
        await catalog.refresh()
        for account in accounts:

            async def head(account: int = account) -> int:
                return (await reader.balances(account)).seq

            async def render(entries: list[Entry], account: int = account) -> list[str]:
                return await private_texts(catalog, channel, account, entries)

            sub = Sub(self.client, Render((channel, account), render), name=name)
            await self._attach(Channel.account(account), head, sub)
            snapshot = await reader.balances(account)
            self.send({"type": "subscribed", "id": request_id, "channel": channel,
                       "accountId": account, "seq": snapshot.seq})  # fmt: skip
            if channel == "balances":
                self.send(ws_format.balances(account, snapshot.seq, catalog.scales,
                                             snapshot.assets, snapshot=True))  # fmt: skip
            await sub.activate(snapshot.seq)


async def private_texts(
    catalog: Any, channel: str, account: int, entries: list[Entry]
) -> list[str]:
    texts = []
    for seq, fields in entries:
        kind = fields["type"]
        if channel == "balances":
            if fields["balances"]:
                if any(asset not in catalog.scales for asset in fields["balances"]):
                    await catalog.refresh(force=True)
                texts.append(dumps(ws_format.balances(account, seq, catalog.scales,
                                                      fields["balances"], snapshot=False)))  # fmt: skip
            continue
        wanted = ws_format.ORDER_EVENTS if channel == "orders" else ws_format.FILL_EVENTS
        if kind not in wanted:
            continue
        market = None
        if "instrument_id" in fields:
            market = await catalog.by_instrument(int(fields["instrument_id"]))
        texts.append(dumps(ws_format.account_event(channel, account, seq, fields, market,
                                                   catalog.scales)))  # fmt: skip
    return texts


async def principal_of_token(services: Services, token: str, ws: WebSocket) -> auth.Principal:
    claims = await services.tokens.verify(token)
    if not await services.sessions.alive(claims.session_id):
        raise ApiError(TOKEN_INVALID, auth.SESSION_REVOKED)
    return auth.Principal(claims.user_id, claims.roles, "jwt", auth.client_ip(ws),
                          session_id=claims.session_id, expires_ns=claims.expires_ns)  # fmt: skip


# -- the Binance dialect ------------------------------------------------------------------


class BinanceConnection(Connection):
    async def handle(self, text: str) -> None:
        request_id = None
        try:
            call = proto.parse_binance(text)
            request_id = call.request_id
            if call.method == "SUBSCRIBE":
                first: list[str] = []
                for stream in call.streams:
                    if stream.name not in self.subs:
                        first += await self.subscribe(stream, request_id)
                self.send({"result": None, "id": request_id})
                for text in first:
                    self.client.offer(text)
            elif call.method == "UNSUBSCRIBE":
                for stream in call.streams:
                    self.unsubscribe(stream.name)
                self.send({"result": None, "id": request_id})
            else:
                self.send({"result": sorted(self.subs), "id": request_id})
        except proto.WsError as error:
            self.send(error.binance_frame())
        except (NotLive, FeedsFull) as exc:
            self.send({"error": {"code": 2, "msg": f"Not possible now: {exc}."}, "id": request_id})

    async def subscribe(self, stream: proto.Stream, request_id: Any = None) -> list[str]:
        """Follow ``stream``; the current ticker or candle to send after the answer."""
        self._room(stream.name, request_id)
        market = await self.market(stream.symbol, request_id)
        iid = market.instrument_id
        wrapped = stream.name if self.combined else None
        book_head, trade_head = self._heads(iid)
        if stream.kind == "depth":

            async def depth(entries: list[Entry]) -> list[str]:
                payload = ws_format.depth_update(market, entries, self.now_ms())
                return [dumps(ws_format.wrap(wrapped, payload))]

            sub = Sub(self.client, Render(("depth", iid, wrapped), depth), name=stream.name)
            await self._attach(Channel.book(iid), book_head, sub, live=True)
        elif stream.kind in ("partialDepth", "bookTicker"):
            render = self.book_top_render(market, stream, wrapped)
            sub = Sub(self.client, render, name=stream.name)
            await self._attach(Channel.book(iid), book_head, sub, live=True)
            return await render.fn([])  # the current top at once, then on every change
        elif stream.kind in ("trade", "aggTrade"):
            shape = (
                ws_format.binance_trade if stream.kind == "trade" else ws_format.binance_agg_trade
            )

            async def each(entries: list[Entry]) -> list[str]:
                return [dumps(ws_format.wrap(wrapped, shape(market, t))) for _, t in entries]

            render = Render((stream.kind, iid, wrapped), each)
            sub = Sub(self.client, render, name=stream.name)
            await self._attach(Channel.trades(iid), trade_head, sub, live=True)
        else:
            if stream.kind == "ticker":
                render = self.ticker_render(market, ("ticker", iid, wrapped, "binance"), wrapped)
            elif stream.kind == "miniTicker":
                render = self.mini_ticker_render(market, wrapped)
            else:
                interval = str(stream.interval)
                render = self.kline_render(market, interval, ("kline", iid, interval, wrapped),
                                           wrapped, native=False)  # fmt: skip
            sub = Sub(self.client, render, name=stream.name)
            await self._attach(Channel.trades(iid), trade_head, sub, live=True)
            seq = await trade_head()  # the current ticker (zeros before a trade), or candle
            return await render.fn([(seq, {})]) if seq or stream.kind != "kline" else []
        return []


# -- routes -------------------------------------------------------------------------------


def routes(
    services_of: Callable[[Any], Services], fanout_of: Callable[[Any], Fanout]
) -> list[WebSocketRoute]:
    async def tradex_ws(websocket: WebSocket) -> None:
        services = services_of(websocket)
        bound_socket(websocket)
        await websocket.accept()
        connection = TradexConnection(websocket, services, fanout_of(websocket))
        scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                connection.trust(await principal_of_token(services, token.strip(), websocket))
            except ApiError as error:
                connection.send({"type": "error", **error.body(), "id": None})
        await connection.serve(connection.handle)

    async def binance(websocket: WebSocket, names: str, combined: bool) -> None:
        bound_socket(websocket)
        await websocket.accept()
        connection = BinanceConnection(websocket, services_of(websocket), fanout_of(websocket),
                                       combined)  # fmt: skip
        try:
            # a number in the path names a connection, not a stream: ccxt.pro opens
            # /ws/0, /ws/1, ... and subscribes on each (Binance serves those paths)
            parts = [n for n in names.split("/") if n and (combined or not n.isdigit())]
            keys = [n for n in parts if listen_keys.looks_like_key(n)]
            public = "/".join(n for n in parts if not listen_keys.looks_like_key(n))
            streams = proto.parse_stream_list(public) if public else []
            for key in dict.fromkeys(keys):  # a user-data stream (listenKey), ws_user
                wrap = functools.partial(ws_format.wrap, key if combined else None)
                if not await ws_user.follow_key(connection, key, wrap):
                    raise proto.WsError(
                        INVALID_LISTEN_KEY.code, INVALID_LISTEN_KEY.name, INVALID_LISTEN_KEY.msg
                    )
            first: list[str] = []
            for stream in streams:
                if stream.name not in connection.subs:
                    first += await connection.subscribe(stream)
            for text in first:
                connection.client.offer(text)
        except (proto.WsError, NotLive, FeedsFull) as exc:
            error = exc if isinstance(exc, proto.WsError) else proto.WsError(2, "", str(exc))
            with contextlib.suppress(Exception):
                await websocket.send_text(dumps(error.binance_frame()))
                await websocket.close(1008, error.msg[:120])
            connection.client.drop("closed")
            for sub_list in connection.subs.values():
                for sub in sub_list:
                    sub.detach()
            for task in connection.tasks:
                task.cancel()
            connection.guards.close()
            return
        await connection.serve(connection.handle)

    async def binance_raw(websocket: WebSocket) -> None:
        await binance(websocket, str(websocket.path_params.get("streams", "")), False)

    async def binance_combined(websocket: WebSocket) -> None:
        await binance(websocket, websocket.query_params.get("streams", ""), True)

    return [
        WebSocketRoute("/tradex/v1/ws", tradex_ws),
        WebSocketRoute("/ws", binance_raw),
        WebSocketRoute("/ws/{streams:path}", binance_raw),
        WebSocketRoute("/stream", binance_combined),
    ]
