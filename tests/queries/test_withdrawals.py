"""Withdrawals name who requested and who decided (the events' ``actor``, folded into the
postgres read model) in every list, on the real stack; the requester's own decision is
refused and leaves the row undecided."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.queries.exchange import PASSWORD, Exchange, wait_until

pytestmark = pytest.mark.integration


def _admin(exchange: Exchange, prefix: str) -> tuple[dict[str, Any], str]:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    user = exchange.admin("/tradex/v1/admin/users",
                          {"username": name, "password": PASSWORD, "roles": ["admin", "trader"]})  # fmt: skip
    return user, exchange.login(name)["accessToken"]


def _queue(exchange: Exchange, token: str, status: str) -> dict[str, dict[str, Any]]:
    with exchange.client(token) as http:
        answer = http.get("/tradex/v1/admin/withdrawals", params={"status": status, "limit": 1000})
    assert answer.status_code == 200, answer.text
    return {w["withdrawalId"]: w for w in answer.json()}


def test_requested_by_and_decided_by_in_every_list(exchange: Exchange) -> None:
    trader = exchange.register("wd")
    exchange.deposit(trader.account, "USD", "100")
    checker, checker_token = _admin(exchange, "checker")
    with trader.http() as http:
        asked = [http.post("/tradex/v1/withdrawals", json={"asset": "USD", "amount": amount},
                           headers={"Idempotency-Key": f"wd-{i}"})
                 for i, amount in enumerate(("10.5", "2"))]  # fmt: skip
    for answer in asked:
        assert answer.status_code == 200, answer.text
        assert answer.json()["requestedBy"] == {
            "userId": trader.user_id,
            "username": trader.username,
        }
        assert answer.json()["decidedBy"] is None
    paid_id, released_id = (a.json()["withdrawalId"] for a in asked)
    waiting = wait_until(lambda: {paid_id, released_id} <= set(_queue(exchange, checker_token,
                                                                        "REQUESTED")) and
                         _queue(exchange, checker_token, "REQUESTED"), what="the queue")  # fmt: skip
    assert waiting[paid_id]["requestedBy"] == {
        "userId": trader.user_id,
        "username": trader.username,
    }
    assert (waiting[paid_id]["amount"], waiting[paid_id]["decidedBy"]) == ("10.50", None)
    with exchange.client(checker_token) as http:
        paid = http.post("/tradex/v1/admin/withdrawals/approve",
                         json={"accountId": trader.account, "withdrawalId": paid_id})  # fmt: skip
        released = http.post("/tradex/v1/admin/withdrawals/reject",
                             json={"accountId": trader.account, "withdrawalId": released_id})  # fmt: skip
    me = {"userId": checker["userId"], "username": checker["username"]}
    assert (paid.status_code, paid.json()["status"], paid.json()["decidedBy"]) == (200, "PAID", me)
    assert (released.json()["status"], released.json()["decidedBy"]) == ("RELEASED", me)
    done = wait_until(lambda: paid_id in _queue(exchange, checker_token, "PAID")
                      and _queue(exchange, checker_token, "PAID"), what="paid in the read model")  # fmt: skip
    row = done[paid_id]
    assert row["requestedBy"]["userId"] == trader.user_id
    assert row["decidedBy"] == me
    assert row["decidedTime"] >= row["requestedTime"] > 0
    rejected = wait_until(lambda: _queue(exchange, checker_token, "RELEASED").get(released_id),
                          what="released in the read model")  # fmt: skip
    assert (rejected["requestedBy"]["username"], rejected["decidedBy"]) == (trader.username, me)
    with trader.http() as http:
        mine = {w["withdrawalId"]: w for w in http.get("/tradex/v1/withdrawals").json()}
    assert (mine[paid_id]["status"], mine[paid_id]["decidedBy"]) == ("PAID", me)
    assert mine[released_id]["requestedBy"]["username"] == trader.username


def test_the_makers_own_decision_leaves_the_row_undecided(exchange: Exchange) -> None:
    maker, maker_token = _admin(exchange, "maker")
    (account,) = maker["accountIds"]
    exchange.deposit(account, "USD", "50")
    with exchange.client(maker_token) as http:
        asked = http.post("/tradex/v1/withdrawals", json={"asset": "USD", "amount": "5"})
        assert asked.status_code == 200, asked.text
        decide = {"accountId": account, "withdrawalId": asked.json()["withdrawalId"]}
        for path in ("approve", "reject"):
            own = http.post(f"/tradex/v1/admin/withdrawals/{path}", json=decide)
            assert (own.status_code, own.json()["error"]) == (403, "MAKER_CHECKER"), own.text
            assert "MAKER_CHECKER" in own.json()["msg"]
    row = wait_until(lambda: _queue(exchange, maker_token, "REQUESTED").get(decide["withdrawalId"]),
                     what="the request in the queue")  # fmt: skip
    assert row["requestedBy"] == {"userId": maker["userId"], "username": maker["username"]}
    assert (row["status"], row["decidedBy"], row["decidedTime"]) == ("REQUESTED", None, None)
