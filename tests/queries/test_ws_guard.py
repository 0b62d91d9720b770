"""The credential checks of open WebSockets without a store: a dead credential is ended
once within a period, a deadline ends it on time whatever its look-up says, a replaced or
removed one is not ended, and a failing look-up is tried again rather than ending it."""

from __future__ import annotations

import asyncio

import pytest

from tradex.queries.ws_guard import Guards, Verdict

PERIOD_S = 0.05
NS = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_ns = 1_000 * NS

    def __call__(self) -> int:
        return self.now_ns


class Credential:
    """A look-up that answers ``alive`` (or raises), counting the calls."""

    def __init__(self) -> None:
        self.alive = True
        self.failing = False
        self.looked_up = 0
        self.ended: list[Verdict] = []

    async def check(self) -> bool:
        self.looked_up += 1
        if self.failing:
            raise ConnectionError("store unavailable")
        return self.alive

    async def end(self, verdict: Verdict) -> None:
        self.ended.append(verdict)


def test_a_dead_credential_is_ended_once_within_a_period() -> None:
    async def run() -> None:
        guards, credential = Guards(PERIOD_S, Clock()), Credential()
        guards.add("key", credential.check, credential.end)
        await asyncio.sleep(PERIOD_S * 3)
        assert credential.ended == [] and credential.looked_up >= 2
        credential.alive = False
        await asyncio.sleep(PERIOD_S * 3)
        assert credential.ended == ["ended"]
        assert "key" not in guards.guards and await guards.verdict("key") == "ended"
        guards.close()

    asyncio.run(run())


def test_a_deadline_ends_the_credential_without_a_look_up() -> None:
    async def run() -> None:
        clock = Clock()
        guards, credential = Guards(3600.0, clock), Credential()  # no period in this test
        guards.add("token", credential.check, credential.end, clock.now_ns + NS // 10)
        assert guards.wait_s() == pytest.approx(0.1)
        assert await guards.verdict("token") == "alive"
        looked_up = credential.looked_up
        clock.now_ns += NS // 10  # the injected clock reaches the deadline ...
        await asyncio.sleep(0.3)  # ... and the task wakes at it (real time)
        assert credential.ended == ["expired"] and credential.looked_up == looked_up
        guards.close()

    asyncio.run(run())


def test_a_replaced_or_removed_credential_is_not_ended() -> None:
    async def run() -> None:
        guards, old, new, gone = Guards(PERIOD_S, Clock()), Credential(), Credential(), Credential()
        guards.add("auth", old.check, old.end)
        guards.add("auth", new.check, new.end)  # a second auth replaces the first
        guards.add("sub", gone.check, gone.end)
        guards.remove("sub")  # unsubscribed
        old.alive = gone.alive = False
        await asyncio.sleep(PERIOD_S * 3)
        assert old.ended == [] and old.looked_up == 0 and gone.ended == []
        assert new.ended == [] and new.looked_up >= 2
        guards.close()
        assert guards.task is not None
        await asyncio.sleep(0)
        assert guards.task.cancelled() and guards.guards == {}

    asyncio.run(run())


def test_a_failing_look_up_is_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        guards, credential = Guards(PERIOD_S, Clock()), Credential()
        credential.failing = True
        guards.add("key", credential.check, credential.end)
        await asyncio.sleep(PERIOD_S * 3)
        assert credential.ended == [] and credential.looked_up >= 2
        credential.failing, credential.alive = False, False
        await asyncio.sleep(PERIOD_S * 3)
        assert credential.ended == ["ended"]
        guards.close()

    asyncio.run(run())
    assert "looking up the credential of a WebSocket" in caplog.text
