"""Admin: assets, instruments (create, rules, halt, resume), deposits, users and their
roles, signing keys.

Each reference command goes to the log through the reference processor and the answer is
its outcome (the event it decided, or the rejection with its reason). Instrument sizes are
given as Binance does — ``tickSize`` (price step), ``stepSize`` (quantity step),
``minNotional``, decimals — and turned into the int64 tick and lot sizes of the log; a
size that is not a whole number of minor units is refused with the field named.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tradex.domain import (
    CreateAsset,
    CreateInstrument,
    Deposit,
    HaltInstrument,
    InstrumentKind,
    ResumeInstrument,
    UpdateInstrumentRules,
)
from tradex.queries import idempotency
from tradex.queries import tradex_models as tm
from tradex.queries.auth import ADMIN
from tradex.queries.auth_routes import change_user_roles, create_user
from tradex.queries.errors import COMMAND_REJECTED, INVALID_PARAMETER, ApiError, param_error
from tradex.queries.markets import amount_minor, parse_decimal
from tradex.queries.routing import Call, Endpoint

TAG = "Admin (TradeX)"


def _detail(event: Any) -> dict[str, str | int | None]:
    found: dict[str, str | int | None] = {}
    for name, value in event._asdict().items():
        if name in ("command_id", "postings"):
            continue
        if hasattr(value, "_asdict"):
            for inner, item in value._asdict().items():
                found[inner] = item if isinstance(item, int | None) else str(item)
        else:
            found[name] = value if isinstance(value, int | None) else str(value)
    return found


async def _reference(call: Call, kind: str, fields: dict[str, Any], make: Any) -> dict[str, Any]:
    services = call.services
    user = call.user.user_id
    command_id = await idempotency.command_id(call, f"user:{user}", kind, fields,
                                              prefix=f"u{user}/")  # fmt: skip
    outcome = await services.reference.execute(
        make(command_id, services.clock_ns()), services.config.command_timeout_s
    )
    event = outcome.events[0]
    if type(event).__name__ == "ReferenceCommandRejected":
        raise ApiError(COMMAND_REJECTED, f"{event.reason}: {event.detail}")
    await services.catalog.refresh(force=True)
    return {"commandId": command_id, "event": type(event).__name__, "detail": _detail(event)}


async def create_asset(call: Call) -> dict[str, Any]:
    body: tm.AssetBody = call.body
    return await _reference(call, "CreateAsset", body.model_dump(),
                            lambda cid, t: CreateAsset(cid, t, body.code, body.scale))  # fmt: skip


def _whole(value: Fraction, field: str, what: str) -> int:
    if value.denominator != 1 or value <= 0:
        raise param_error(INVALID_PARAMETER, field, f"{field} must be a positive whole number "
                          f"of {what}, got {float(value)}", True)  # fmt: skip
    return int(value)


async def create_instrument(call: Call) -> dict[str, Any]:
    """A spot instrument BASE-QUOTE (both assets must exist)."""
    body: tm.InstrumentBody = call.body
    services = call.services
    base, quote = body.symbol.split("-")
    base_scale = await services.catalog.scale(base, "symbol")
    quote_scale = await services.catalog.scale(quote, "symbol")
    lot = _whole(parse_decimal(body.stepSize, "stepSize", True) * 10**base_scale, "stepSize",
                 f"{base} minor units")  # fmt: skip
    tick = _whole(parse_decimal(body.tickSize, "tickSize", True) * lot * 10**quote_scale
                  / 10**base_scale, "tickSize", f"{quote} minor units per lot")  # fmt: skip
    min_notional = parse_decimal(body.minNotional, "minNotional", True) * 10**quote_scale
    if min_notional.denominator != 1:
        raise param_error(INVALID_PARAMETER, "minNotional",
                          f"minNotional has more than {quote_scale} decimals", True)  # fmt: skip
    instrument_id = await services.store.next_id()
    fields = {**body.model_dump(), "instrument_id": 0}
    return await _reference(call, "CreateInstrument", fields, lambda cid, t: CreateInstrument(
        cid, t, instrument_id, body.symbol, InstrumentKind.SPOT, base, quote, tick, lot,
        int(min_notional), body.priceBandBps, body.makerFeePpm, body.takerFeePpm,
    ))  # fmt: skip


async def update_rules(call: Call) -> dict[str, Any]:
    """Min notional, price band and fees (tick and lot sizes never change)."""
    body: tm.RulesBody = call.body
    market = await call.services.catalog.market(body.symbol, tradex=True)
    minor = parse_decimal(body.minNotional, "minNotional", True) * 10**market.quote_scale
    if minor.denominator != 1:
        raise param_error(INVALID_PARAMETER, "minNotional", "too many decimals", True)
    return await _reference(call, "UpdateInstrumentRules", body.model_dump(),
        lambda cid, t: UpdateInstrumentRules(cid, t, market.instrument_id, int(minor),
                                             body.priceBandBps, body.makerFeePpm,
                                             body.takerFeePpm))  # fmt: skip


async def halt(call: Call) -> dict[str, Any]:
    body: tm.SymbolBody = call.body
    market = await call.services.catalog.market(body.symbol, tradex=True)
    return await _reference(call, "HaltInstrument", body.model_dump(),
                            lambda cid, t: HaltInstrument(cid, t, market.instrument_id))  # fmt: skip


async def resume(call: Call) -> dict[str, Any]:
    body: tm.SymbolBody = call.body
    market = await call.services.catalog.market(body.symbol, tradex=True)
    return await _reference(call, "ResumeInstrument", body.model_dump(),
                            lambda cid, t: ResumeInstrument(cid, t, market.instrument_id))  # fmt: skip


async def deposit(call: Call) -> dict[str, Any]:
    """Credit an account (an operator records money that arrived outside TradeX)."""
    body: tm.DepositBody = call.body
    services = call.services
    scale = await services.catalog.scale(body.asset)
    amount = amount_minor(body.amount, scale, "amount")
    command_id = await idempotency.command_id(
        call, f"account:{body.accountId}", "Deposit", {"asset": body.asset, "amount": amount},
        prefix=f"dep-{call.user.user_id}-",
    )  # fmt: skip
    command = Deposit(command_id, body.accountId, services.clock_ns(), body.asset, amount,
                      call.user.user_id)  # fmt: skip
    outcome = await services.accounts.execute(command, services.config.command_timeout_s)
    event = outcome.events[0]
    if type(event).__name__ != "Deposited":
        raise ApiError(COMMAND_REJECTED, f"{event.reason}: {event.detail}")
    return {"commandId": command_id, "event": "Deposited", "detail": _detail(event)}


async def create_user_admin(call: Call) -> dict[str, Any]:
    """A user with the given roles (a trader also gets an account)."""
    body: tm.NewUserBody = call.body
    roles = sorted(set(body.roles))
    return await create_user(call.services, body.username, body.password, roles,
                             "trader" in roles)  # fmt: skip


async def change_roles(call: Call) -> dict[str, Any]:
    """Give a user these roles (another admin must: maker/checker, decided on the log);
    the user's sessions end, so the next login carries the new roles."""
    body: tm.RolesBody = call.body
    roles = sorted(set(body.roles))
    actor = call.user.user_id
    command_id = await idempotency.command_id(
        call, f"user:{actor}", "ChangeUserRoles", {"userId": body.userId, "roles": roles},
        prefix=f"u{actor}/",
    )  # fmt: skip
    event = await change_user_roles(call.services, command_id, body.userId, roles, actor)
    return {"commandId": command_id, "event": type(event).__name__, "detail": _detail(event)}


async def users(call: Call) -> list[dict[str, Any]]:
    store = call.services.store
    return [{"userId": r["user_id"], "username": r["username"], "roles": list(r["roles"]),
             "accountIds": await store.accounts_of(r["user_id"])}
            for r in await store.users()]  # fmt: skip


async def assets(call: Call) -> list[dict[str, Any]]:
    """Every asset with its scale (also those no instrument trades yet)."""
    catalog = call.services.catalog
    await catalog.refresh(force=True)
    return [{"asset": code, "scale": scale} for code, scale in sorted(catalog.scales.items())]


async def instruments(call: Call) -> list[dict[str, Any]]:
    """Every instrument with its rules and status (TRADING or HALTED), as the operator
    gives them: steps and min notional as decimals, the band in bps, fees in ppm."""
    catalog = call.services.catalog
    await catalog.refresh(force=True)
    return [{"symbol": m.symbol, "binanceSymbol": m.binance, "instrumentId": m.instrument_id,
             "base": m.base, "quote": m.quote, "status": m.status,
             "tickSize": m.fmt_price(1), "stepSize": m.fmt_qty(1),
             "minNotional": m.fmt_quote(m.min_notional), "priceBandBps": m.price_band_bps,
             "makerFeePpm": m.maker_fee_ppm, "takerFeePpm": m.taker_fee_ppm}
            for m in await catalog.markets()]  # fmt: skip


async def rotate_signing_key(call: Call) -> dict[str, Any]:
    """A new key signs access tokens from now on; the old one verifies until its tokens
    have expired."""
    return {"kid": await call.services.tokens.rotate()}


ENDPOINTS = [
    Endpoint("POST", "/tradex/v1/admin/assets", create_asset, "Create an asset", TAG,
             body=tm.AssetBody, response=tm.Outcome, access=ADMIN, state_changing=True),
    Endpoint("POST", "/tradex/v1/admin/instruments", create_instrument,
             "Create an instrument", TAG, body=tm.InstrumentBody, response=tm.Outcome,
             access=ADMIN, state_changing=True),
    Endpoint("POST", "/tradex/v1/admin/instruments/rules", update_rules,
             "Update an instrument's rules", TAG, body=tm.RulesBody, response=tm.Outcome,
             access=ADMIN, state_changing=True),
    Endpoint("POST", "/tradex/v1/admin/instruments/halt", halt, "Halt trading", TAG,
             body=tm.SymbolBody, response=tm.Outcome, access=ADMIN, state_changing=True),
    Endpoint("POST", "/tradex/v1/admin/instruments/resume", resume, "Resume trading", TAG,
             body=tm.SymbolBody, response=tm.Outcome, access=ADMIN, state_changing=True),
    Endpoint("POST", "/tradex/v1/admin/deposits", deposit, "Deposit to an account", TAG,
             body=tm.DepositBody, response=tm.Outcome, access=ADMIN, state_changing=True),
    Endpoint("POST", "/tradex/v1/admin/users", create_user_admin, "Create a user", TAG,
             body=tm.NewUserBody, response=tm.User, access=ADMIN, state_changing=True),
    Endpoint("POST", "/tradex/v1/admin/users/roles", change_roles, "Change a user's roles",
             TAG, body=tm.RolesBody, response=tm.Outcome, access=ADMIN, state_changing=True),
    Endpoint("GET", "/tradex/v1/admin/users", users, "Users", TAG,
             response=list[tm.User], access=ADMIN),
    Endpoint("GET", "/tradex/v1/admin/assets", assets, "Assets", TAG,
             response=list[tm.AssetRow], access=ADMIN),
    Endpoint("GET", "/tradex/v1/admin/instruments", instruments, "Instruments and their rules",
             TAG, response=list[tm.InstrumentRow], access=ADMIN),
    Endpoint("POST", "/tradex/v1/admin/signingKeys/rotate", rotate_signing_key,
             "Rotate the token signing key", TAG, response=tm.SigningKey, access=ADMIN),
]  # fmt: skip
