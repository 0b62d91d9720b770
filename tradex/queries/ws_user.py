"""One account's user-data stream on a WebSocket (Binance's ``/ws/<listenKey>``, the
combined ``/stream?streams=<listenKey>`` and the WebSocket API's
``userDataStream.subscribe.signature``, :mod:`.ws_api`).

It follows the account's Redis channel through the gateway's fan-out like the TradeX
``orders``/``fills``/``balances`` channels (one reader per stream, the connection's
bounded queue, a slow consumer dropped), from the channel's sequence at the time of the
subscription (Binance sends no snapshot either). Each subscription renders its own
entries (:class:`.user_events.UserEvents` keeps the orders' state per stream), so its
render key is its own. A listenKey's stream looks its key up every ``ws_auth_check_ms``
(:mod:`.ws_guard`); once expired, closed by DELETE or by revoking the API key that opened
it, or once the login session that opened it has ended (:func:`usable`), it sends
``listenKeyExpired`` and the connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tradex.projections.redis_read import Channel
from tradex.queries.listen_keys import Bound
from tradex.queries.services import Services
from tradex.queries.user_events import OrderState, UserEvents
from tradex.queries.ws_fanout import Client, Entry, Fanout, Render, Sub
from tradex.queries.ws_format import dumps
from tradex.queries.ws_guard import Guards, Verdict

log = logging.getLogger("tradex.ws")

DRAIN_WAIT_S = 5.0  # the listenKeyExpired message's time to leave before the close
FILLS_BEFORE_MAX = 1_000  # an order's earlier fills read when it is first met
Wrap = Callable[[dict[str, Any]], dict[str, Any]]


class UserConnection(Protocol):
    """What a subscription needs of its connection (:class:`.ws_gateway.Connection`)."""

    services: Services
    fanout: Fanout
    client: Client
    subs: dict[str, list[Sub]]
    tasks: list[asyncio.Task[Any]]
    guards: Guards

    async def close_normally(self) -> None: ...


def lookup_of(services: Services, account: int) -> Callable[[int, int | None],
                                                             Awaitable[OrderState | None]]:  # fmt: skip
    """The order as the PostgreSQL read model has it (for orders accepted before the stream
    started), its fills before ``trade_id`` summed from the fills read model. If that model
    has not yet caught up with earlier fills, the first report undercounts ``z``/``Z``; if
    it cannot be read, the order is unknown to the stream (its reports are left out, its
    balances still sent)."""

    async def lookup(order_id: int, trade_id: int | None) -> OrderState | None:
        try:
            return await _read(order_id, trade_id)
        except Exception:  # the stream goes on: this order's reports are left out
            log.exception("reading order %s of account %s for a user-data stream", order_id,
                          account)  # fmt: skip
            return None

    async def _read(order_id: int, trade_id: int | None) -> OrderState | None:
        row = await services.fetch(lambda conn: services.ledger.order(conn, order_id))
        if row is None or int(row["account_id"]) != account:
            return None
        market = await services.catalog.by_instrument(int(row["instrument_id"]))
        if market is None:
            return None
        filled, notional = int(row["filled_qty"]), int(row["filled_notional"])
        if trade_id is not None:
            fills = await services.fetch(lambda conn: services.ledger.fills_page(
                conn, account, order_id=order_id, to_trade_id=trade_id - 1,
                limit=FILLS_BEFORE_MAX,
            ))  # fmt: skip
            filled = sum(int(f["qty"]) for f in fills)
            notional = sum(int(f["price"]) * int(f["qty"]) for f in fills)
        return OrderState(
            market, str(row["command_id"] or ""), str(row["side"]), str(row["kind"]),
            int(row["amended_price"] or row["price"] or 0),
            int(row["amended_qty"] or row["qty"] or 0), int(row["created_time_ns"]) // 1_000_000,
            filled, notional, stp_mode=str(row["stp_mode"] or "NONE"),
        )  # fmt: skip

    return lookup


def events_of(services: Services, account: int) -> UserEvents:
    catalog = services.catalog

    async def scales() -> dict[str, int]:
        await catalog.refresh()
        return catalog.scales

    return UserEvents(catalog.by_instrument, scales, lookup_of(services, account))


async def follow(connection: UserConnection, name: str, bound: Bound, wrap: Wrap) -> Sub:
    """Subscribe ``connection`` to the account's events as Binance payloads (each through
    ``wrap``: combined-stream or WebSocket-API framing); ``name`` is the subscription's."""
    services = connection.services
    reader, account = services.market, bound.account_id
    events = events_of(services, account)

    async def render(entries: list[Entry]) -> list[str]:
        return [dumps(wrap(payload)) for payload in await events.render(entries)]

    async def head() -> int:
        return (await reader.balances(account)).seq

    sub = Sub(connection.client, Render(("user-data", object()), render), name=name)
    await connection.fanout.attach(Channel.account(account), head, sub)
    connection.subs.setdefault(name, []).append(sub)
    await sub.activate(await head())
    return sub


async def follow_key(connection: UserConnection, listen_key: str, wrap: Wrap) -> bool:
    """Follow a listenKey's account until the key expires; False: no such key."""
    services = connection.services
    bound = await usable(services, listen_key)
    if bound is None:
        return False
    await follow(connection, listen_key, bound, wrap)

    async def alive() -> bool:
        return await usable(services, listen_key) is not None

    async def expired(_verdict: Verdict) -> None:
        await _expire(connection, listen_key, wrap)

    connection.guards.add(listen_key, alive, expired)
    return True


async def usable(services: Services, listen_key: str) -> Bound | None:
    """What a live listenKey names, if the session that opened it (if any) is alive."""
    bound = await services.listen_keys.bound(listen_key)
    if bound is None or (bound.session_id and not await services.sessions.alive(bound.session_id)):
        return None
    return bound


async def _expire(connection: UserConnection, listen_key: str, wrap: Wrap) -> None:
    """Binance's ``listenKeyExpired``, then the connection closes (1000)."""
    clock_ns = connection.services.clock_ns
    for sub in connection.subs.pop(listen_key, []):
        sub.detach()
    message = {"e": "listenKeyExpired", "E": clock_ns() // 1_000_000, "listenKey": listen_key}
    connection.client.offer(dumps(wrap(message)))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_WAIT_S):
            client = connection.client
            while client.sent < client.offered and client.dropped is None:
                await asyncio.sleep(0.05)
    await connection.close_normally()
