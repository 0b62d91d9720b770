"""Coalesce concurrent asyncio calls into batches: one round trip for many callers.

    claims = Coalescer(store.claim_many, batch_max=1_000)
    outcome = await claims.submit(item)   # from many tasks at once

``run_many(items)`` returns one result per item, in order. While a batch is in flight
the items submitted meanwhile wait and go together in the next one, so an idle server
sends each item at once and a busy one sends a batch per round trip (the batch grows with
the load, as the stages' transactions do). A batch that raises fails each of its callers
with that error; the next batch still runs. A caller cancelled while waiting gets nothing;
its item may still have been sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """One batch in flight at a time; items arriving meanwhile form the next."""

    def __init__(
        self, run_many: Callable[[list[Item]], Awaitable[list[Result]]], batch_max: int
    ) -> None:
        assert batch_max > 0, batch_max
        self.run_many = run_many
        self.batch_max = batch_max
        self.pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self.sending: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if self.sending is None:
            self.sending = asyncio.get_running_loop().create_task(self._send())
        return await future

    async def _send(self) -> None:
        try:
            while self.pending:
                batch = self.pending[: self.batch_max]
                del self.pending[: self.batch_max]
                try:
                    results = await self.run_many([item for item, _future in batch])
                    assert len(results) == len(batch), (len(results), len(batch))
                except BaseException as exc:  # each caller gets the batch's error
                    for _item, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_item, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self.sending = None
