"""A blocking client for reference commands: submit one, wait for its outcome.

Reference commands (create asset / instrument, update rules, halt / resume, register user,
open account) go to ``reference-commands``; their outcome is the reference processor's
event carrying the command id on ``reference-events`` (a duplicate id: the original one).
The protocol is :class:`tradex.commands.async_client.AsyncCommandClient`'s on its
``REFERENCE`` route (the API awaits it directly); this wraps it for code that blocks —
tools, scripts, tests — with a private event loop on one thread, so there is one
implementation of waiting for an outcome.

    with ReferenceClient(settings) as client:
        outcome = client.execute(CreateAsset("a-btc", now, "BTC", 8), timeout_s=10)
        outcome.events      # (AssetCreated(...),) or (ReferenceCommandRejected(...),)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from tradex.commands.async_client import REFERENCE, AsyncCommandClient
from tradex.commands.client import Outcome
from tradex.domain.reference import ReferenceCommand
from tradex.infra.settings import Settings
from tradex.schemas.codec import Codec

T = TypeVar("T")


class ReferenceClient:
    """Submits reference commands and waits for their outcomes (thread-safe ``execute``)."""

    def __init__(
        self, settings: Settings, codec: Codec | None = None, name: str = "reference-client"
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()
        try:
            self.client = self._run(AsyncCommandClient.open(settings, REFERENCE, codec, name))
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def execute(self, command: ReferenceCommand, timeout_s: float = 10.0) -> Outcome:
        """Submit ``command`` and wait for its outcome (at most ``timeout_s``; raises
        :class:`tradex.commands.async_client.CommandTimeout` after)."""
        return self._run(self.client.execute(command, timeout_s))

    def close(self) -> None:
        try:
            self._run(self.client.aclose())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    def __enter__(self) -> ReferenceClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
