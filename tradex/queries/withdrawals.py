"""Withdrawals: a trader requests (the amount is held); an admin approves (paid) or rejects
(released). Maker/checker: the user who requested a withdrawal cannot decide it (403).
The account processor is the authority: commands carry their ``actor``, it refuses the
requester's decision with ``MAKER_CHECKER`` and the refusal is on the log (who tried, and
why); the API maps that refusal to 403."""

from __future__ import annotations

from typing import Any

from tradex.domain import ApproveWithdrawal, Reason, RejectWithdrawal, RequestWithdrawal
from tradex.queries import idempotency
from tradex.queries import tradex_models as tm
from tradex.queries.auth import ADMIN, TRADER, TRADER_WITHDRAW, own_account
from tradex.queries.errors import COMMAND_REJECTED, MAKER_CHECKER, ApiError
from tradex.queries.markets import amount_minor, fmt_amount
from tradex.queries.routing import Call, Endpoint

TAG = "Withdrawals (TradeX)"
ADMIN_TAG = "Admin (TradeX)"
NS_PER_MS = 1_000_000


def _user(user_id: int | None, name: str | None) -> dict[str, Any] | None:
    """Who did it, from the event's ``actor`` (0: the system, no name)."""
    return None if user_id is None else {"userId": user_id, "username": name}


async def _withdrawal(call: Call, row: Any) -> dict[str, Any]:
    scale = await call.services.catalog.scale(row["asset"])
    requested, decided = row["requested_time_ns"], row["decided_time_ns"]
    return {"withdrawalId": row["withdrawal_id"], "accountId": row["account_id"],
            "asset": row["asset"], "amount": fmt_amount(row["amount"], scale),
            "status": row["status"],
            "requestedTime": None if requested is None else requested // NS_PER_MS,
            "requestedBy": _user(row["requested_by"], row["requested_by_name"]),
            "decidedTime": None if decided is None else decided // NS_PER_MS,
            "decidedBy": _user(row["decided_by"], row["decided_by_name"])}  # fmt: skip


async def _caller(call: Call) -> dict[str, Any]:
    row = await call.services.store.user(call.user.user_id)
    return {"userId": call.user.user_id, "username": None if row is None else row["username"]}


def rejected(event: Any) -> ApiError:
    return ApiError(COMMAND_REJECTED, f"{event.reason}: {event.detail}")


async def request(call: Call) -> dict[str, Any]:
    """Request a withdrawal: the amount is held until an admin decides. The withdrawal id is
    the command id (``wd-<account>-<Idempotency-Key>``)."""
    body: tm.WithdrawBody = call.body
    services = call.services
    scale = await services.catalog.scale(body.asset)
    amount = amount_minor(body.amount, scale, "amount")
    account = await own_account(services, call.user, body.accountId)
    command_id = await idempotency.command_id(
        call, f"account:{account}", "RequestWithdrawal",
        {"asset": body.asset, "amount": amount}, prefix=f"wd-{account}-",
    )  # fmt: skip
    command = RequestWithdrawal(command_id, account, services.clock_ns(), body.asset, amount,
                                call.user.user_id)  # fmt: skip
    outcome = await services.accounts.execute(command, services.config.command_timeout_s)
    event = outcome.events[0]
    if type(event).__name__ != "WithdrawalRequested":
        raise rejected(event)
    return {"withdrawalId": event.withdrawal_id, "accountId": account, "asset": event.asset,
            "amount": fmt_amount(event.amount, scale), "status": "REQUESTED",
            "requestedTime": event.event_time_ns // NS_PER_MS, "requestedBy": await _caller(call),
            "decidedTime": None, "decidedBy": None}  # fmt: skip


async def mine(call: Call) -> list[dict[str, Any]]:
    p: tm.AccountParams = call.params
    services = call.services
    account = await own_account(services, call.user, p.accountId)
    rows = await services.fetch(lambda conn: services.ledger.withdrawals(conn, account))
    return [await _withdrawal(call, row) for row in rows]


async def pending(call: Call) -> list[dict[str, Any]]:
    """Withdrawals of every account in a status (default REQUESTED: to decide)."""
    p: tm.WithdrawalStatusParams = call.params
    services = call.services
    rows = await services.fetch(
        lambda conn: services.ledger.withdrawals_by_status(conn, p.status, p.limit)
    )
    return [await _withdrawal(call, row) for row in rows]


async def _decide(call: Call, approve: bool) -> dict[str, Any]:
    body: tm.DecideBody = call.body
    services = call.services
    kind = "ApproveWithdrawal" if approve else "RejectWithdrawal"
    command_id = await idempotency.command_id(
        call, f"account:{body.accountId}", kind, {"withdrawal": body.withdrawalId},
        prefix=f"{kind[:3].lower()}-",
    )  # fmt: skip
    make = ApproveWithdrawal if approve else RejectWithdrawal
    command = make(command_id, body.accountId, services.clock_ns(), body.withdrawalId,
                   call.user.user_id)  # fmt: skip
    outcome = await services.accounts.execute(command, services.config.command_timeout_s)
    event = outcome.events[0]
    if type(event).__name__ not in ("WithdrawalPaid", "WithdrawalReleased"):
        if event.reason == Reason.MAKER_CHECKER:  # the processor's refusal (the log says so)
            raise ApiError(MAKER_CHECKER, f"{event.reason}: {event.detail}")
        raise rejected(event)
    scale = await services.catalog.scale(event.asset)
    return {"withdrawalId": event.withdrawal_id, "accountId": body.accountId,
            "asset": event.asset, "amount": fmt_amount(event.amount, scale),
            "status": "PAID" if approve else "RELEASED", "requestedTime": None,
            "requestedBy": None, "decidedTime": event.event_time_ns // NS_PER_MS,
            "decidedBy": await _caller(call)}  # fmt: skip


async def approve(call: Call) -> dict[str, Any]:
    """Pay a requested withdrawal (not one you requested yourself)."""
    return await _decide(call, True)


async def reject(call: Call) -> dict[str, Any]:
    """Release a requested withdrawal's hold (not one you requested yourself)."""
    return await _decide(call, False)


ENDPOINTS = [
    Endpoint("POST", "/tradex/v1/withdrawals", request, "Request a withdrawal", TAG,
             body=tm.WithdrawBody, response=tm.Withdrawal, access=TRADER_WITHDRAW,
             bucket="order", state_changing=True),
    Endpoint("GET", "/tradex/v1/withdrawals", mine, "Your withdrawals", TAG,
             tm.AccountParams, response=list[tm.Withdrawal], access=TRADER),
    Endpoint("GET", "/tradex/v1/admin/withdrawals", pending, "Withdrawals by status",
             ADMIN_TAG, tm.WithdrawalStatusParams, response=list[tm.Withdrawal], access=ADMIN),
    Endpoint("POST", "/tradex/v1/admin/withdrawals/approve", approve, "Approve a withdrawal",
             ADMIN_TAG, body=tm.DecideBody, response=tm.Withdrawal, access=ADMIN,
             state_changing=True),
    Endpoint("POST", "/tradex/v1/admin/withdrawals/reject", reject, "Reject a withdrawal",
             ADMIN_TAG, body=tm.DecideBody, response=tm.Withdrawal, access=ADMIN,
             state_changing=True),
]  # fmt: skip
