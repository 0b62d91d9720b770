"""Credentials of open WebSockets, looked up again while they stream.

A WebSocket is authenticated once — a listenKey in its URL (:mod:`.ws_user`), a signed
WebSocket API subscription (:mod:`.ws_api`), the TradeX gateway's ``auth``
(:mod:`.ws_gateway`) — and may then stream for hours. A connection holding credentials
has one :class:`Guards`: a task that every ``period_s`` (``ws_auth_check_ms``) asks each
credential whether it is still alive — one Redis ``EXISTS`` for a listenKey or a login
session, one indexed PostgreSQL lookup for an API key — and wakes at a credential's
deadline (an access token's expiry). A credential found dead or past its deadline is
forgotten and its ``ended`` called once, with the verdict: the connection says so in its
dialect and ends what that credential opened. The cost is one look-up per credential per
period, not per message; a failed look-up (Redis or PostgreSQL unavailable) is logged and
tried again at the next period (the stream goes on meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tradex.queries import api_keys

if TYPE_CHECKING:
    from tradex.queries.services import Services

log = logging.getLogger("tradex.ws")

GUARDS_MAX = 1_024  # credentials on one connection: one per subscription at most (STREAMS_MAX)
WAIT_S_MIN = 0.01  # the shortest sleep between two rounds (a deadline just reached)
NS_PER_S = 1_000_000_000

Verdict = Literal["alive", "expired", "ended"]  # expired: past its deadline
Alive = Callable[[], Awaitable[bool]]
Ended = Callable[[Verdict], Awaitable[None]]


@dataclass(frozen=True, eq=False)
class Guard:
    alive: Alive
    ended: Ended
    deadline_ns: int | None  # the credential ends then whatever alive() says (None: never)


class Guards:
    """One connection's credentials by name, checked by one task (started with the first)."""

    def __init__(self, period_s: float, clock_ns: Callable[[], int]) -> None:
        assert period_s > 0, period_s
        self.period_s = period_s
        self.clock_ns = clock_ns
        self.guards: dict[str, Guard] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, name: str, alive: Alive, ended: Ended, deadline_ns: int | None = None) -> None:
        """Guard ``name`` (a guard of that name is replaced): ``ended(verdict)`` is called
        once when ``alive()`` answers False or ``deadline_ns`` (the injected clock's) has
        passed, unless :meth:`remove` came first."""
        assert name, name
        assert name in self.guards or len(self.guards) < GUARDS_MAX, len(self.guards)
        self.guards[name] = Guard(alive, ended, deadline_ns)
        if self.task is None:
            self.task = asyncio.create_task(self.run())

    def remove(self, name: str) -> None:
        self.guards.pop(name, None)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.guards.clear()

    async def verdict(self, name: str) -> Verdict:
        """Whether ``name``'s credential is alive now (a name not guarded: ended)."""
        guard = self.guards.get(name)
        if guard is None:
            return "ended"
        return await self._verdict(guard)

    async def _verdict(self, guard: Guard) -> Verdict:
        if guard.deadline_ns is not None and guard.deadline_ns <= self.clock_ns():
            return "expired"
        return "alive" if await guard.alive() else "ended"

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.wait_s())
            await self.check()

    def wait_s(self) -> float:
        """Until the next round: the period, or the nearest deadline if sooner."""
        wait_s = self.period_s
        deadlines = [g.deadline_ns for g in self.guards.values() if g.deadline_ns is not None]
        if deadlines:
            wait_s = min(wait_s, (min(deadlines) - self.clock_ns()) / NS_PER_S)
        assert wait_s <= self.period_s, wait_s
        return max(wait_s, WAIT_S_MIN)

    async def check(self) -> None:
        """One round: every credential looked up once; the dead ones ended."""
        for name, guard in list(self.guards.items()):
            try:
                verdict = await self._verdict(guard)
            except Exception:  # the store is unavailable: look again next round
                log.exception("looking up the credential of a WebSocket (%s)", name)
                continue
            if verdict == "alive" or self.guards.get(name) is not guard:
                continue  # alive, or replaced or removed meanwhile
            del self.guards[name]
            try:
                await guard.ended(verdict)
            except Exception:
                log.exception("ending what a WebSocket credential opened (%s)", name)


def session_alive(services: Services, session_id: str) -> Alive:
    """An access token's login session (Redis)."""
    assert session_id, session_id

    async def alive() -> bool:
        return await services.sessions.alive(session_id)

    return alive


def key_alive(services: Services, api_key: str) -> Alive:
    """An API key: not revoked, its user still active (the auth schema, PostgreSQL)."""
    digest = api_keys.key_hash(api_key)

    async def alive() -> bool:
        return await services.store.key(digest) is not None

    return alive
