"""Coalescer: concurrent calls batched, results in order, a failed batch fails its callers."""

from __future__ import annotations

import asyncio

import pytest

from tradex.infra.coalesce import Coalescer


def test_calls_made_while_a_batch_is_in_flight_go_together() -> None:
    batches: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        batches.append(list(items))
        await asyncio.sleep(0.01)
        return [2 * i for i in items]

    async def scenario() -> None:
        coalescer = Coalescer(double, batch_max=4)
        assert await coalescer.submit(1) == 2  # alone: sent at once
        results = await asyncio.gather(*(coalescer.submit(i) for i in range(10)))
        assert results == [2 * i for i in range(10)]
        assert coalescer.sending is None

    asyncio.run(scenario())
    assert batches[0] == [1]
    assert [len(b) for b in batches[1:]] == [4, 4, 2]  # bounded by batch_max, in order
    assert [i for b in batches[1:] for i in b] == list(range(10))


def test_a_failed_batch_fails_its_callers_and_the_next_batch_runs() -> None:
    async def picky(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 3 in items:
            raise ValueError("three")
        return items

    async def scenario() -> None:
        coalescer = Coalescer(picky, batch_max=2)
        results = await asyncio.gather(*(coalescer.submit(i) for i in range(6)),
                                       return_exceptions=True)  # fmt: skip
        assert results[0:2] == [0, 1]
        assert all(isinstance(r, ValueError) for r in results[2:4])
        assert results[4:] == [4, 5]
        assert await coalescer.submit(7) == 7

    asyncio.run(scenario())


def test_batch_max_must_be_positive() -> None:
    async def none(items: list[int]) -> list[int]:
        return items

    with pytest.raises(AssertionError):
        Coalescer(none, batch_max=0)
