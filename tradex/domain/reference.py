"""Reference data: assets, instruments, users, accounts — a table every stage folds.

Commands (``CreateAsset`` …) go to ``reference-commands``; :meth:`ReferenceData.decide`
turns one into events (``reference-events``) plus, for instrument changes, an
``InstrumentRules`` order request for the matcher. :meth:`ReferenceData.apply` folds an
event; account processors, the matcher side and projectors all build the same table by
applying ``reference-events`` in order.

Rule: ``tick_size`` and ``lot_size`` never change after creation (resting orders are priced
in ticks and sized in lots); ``UpdateInstrumentRules`` changes min notional, band and fees.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from tradex.domain.errors import InvalidRecord
from tradex.domain.orders import InstrumentRules
from tradex.domain.types import (
    FEE_PPM_MAX,
    ID_TEXT_LENGTH_MAX,
    INT64_MAX,
    PRICE_BAND_BPS_MAX,
    SCALE_MAX,
    InstrumentKind,
    InstrumentStatus,
    Reason,
)
from tradex.domain.window import forget_oldest

REFERENCE_COMMAND_IDS_MAX = 100_000  # remembered command ids (oldest forgotten first)


def _text(value: str, what: str) -> None:
    if not 0 < len(value) <= ID_TEXT_LENGTH_MAX:
        raise InvalidRecord(f"{what} must be 1..{ID_TEXT_LENGTH_MAX} characters, got {value!r}")


def _positive(value: int, what: str) -> None:
    if not 0 < value <= INT64_MAX:
        raise InvalidRecord(f"{what} must be a positive int64, got {value}")


def _fee_rules(min_notional: int, price_band_bps: int, maker_ppm: int, taker_ppm: int) -> None:
    if not 0 <= min_notional <= INT64_MAX:
        raise InvalidRecord(f"min_notional must be >= 0, got {min_notional}")
    if not 0 <= price_band_bps <= PRICE_BAND_BPS_MAX:
        raise InvalidRecord(f"price_band_bps must be 0..{PRICE_BAND_BPS_MAX}, got {price_band_bps}")
    if not 0 <= maker_ppm <= FEE_PPM_MAX:
        raise InvalidRecord(f"maker_fee_ppm must be 0..{FEE_PPM_MAX}, got {maker_ppm}")
    if not 0 <= taker_ppm <= FEE_PPM_MAX:
        raise InvalidRecord(f"taker_fee_ppm must be 0..{FEE_PPM_MAX}, got {taker_ppm}")


# -- table rows ------------------------------------------------------------------------------


class Asset(NamedTuple):
    code: str  # "BTC"
    scale: int  # decimal places of one minor unit


class Instrument(NamedTuple):
    instrument_id: int
    symbol: str  # "BTC-USD"
    kind: InstrumentKind
    base: str
    quote: str
    tick_size: int  # quote minor units per lot per tick
    lot_size: int  # base minor units per lot
    min_notional: int  # quote minor units
    price_band_bps: int  # 0: no band
    maker_fee_ppm: int
    taker_fee_ppm: int
    status: InstrumentStatus


ROLES = frozenset(("trader", "admin", "auditor"))


def roles_text(roles: Iterable[str]) -> str:
    """The roles as the log carries them: sorted, comma-separated ("admin,trader")."""
    return ",".join(sorted(set(roles)))


class User(NamedTuple):
    user_id: int
    name: str
    roles: str = ""  # comma-separated, sorted (ROLES); "": none (users registered before roles)

    def has_role(self, role: str) -> bool:
        return role in self.roles.split(",")


class AccountRef(NamedTuple):
    account_id: int
    user_id: int


# -- commands --------------------------------------------------------------------------------


class CreateAsset(NamedTuple):
    command_id: str
    event_time_ns: int
    code: str
    scale: int

    def validate(self) -> None:
        _text(self.command_id, "command_id")
        _text(self.code, "asset code")
        if not 0 <= self.scale <= SCALE_MAX:
            raise InvalidRecord(f"scale must be 0..{SCALE_MAX}, got {self.scale}")


class CreateInstrument(NamedTuple):
    command_id: str
    event_time_ns: int
    instrument_id: int
    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    tick_size: int
    lot_size: int
    min_notional: int
    price_band_bps: int
    maker_fee_ppm: int
    taker_fee_ppm: int

    def validate(self) -> None:
        _text(self.command_id, "command_id")
        _text(self.symbol, "symbol")
        _positive(self.instrument_id, "instrument_id")
        _positive(self.tick_size, "tick_size")
        _positive(self.lot_size, "lot_size")
        _fee_rules(self.min_notional, self.price_band_bps, self.maker_fee_ppm, self.taker_fee_ppm)
        if self.kind not in InstrumentKind.__members__:
            raise InvalidRecord(f"unknown instrument kind {self.kind!r}")
        if self.base == self.quote:
            raise InvalidRecord("base and quote must differ")


class UpdateInstrumentRules(NamedTuple):
    command_id: str
    event_time_ns: int
    instrument_id: int
    min_notional: int
    price_band_bps: int
    maker_fee_ppm: int
    taker_fee_ppm: int

    def validate(self) -> None:
        _text(self.command_id, "command_id")
        _fee_rules(self.min_notional, self.price_band_bps, self.maker_fee_ppm, self.taker_fee_ppm)


class HaltInstrument(NamedTuple):
    command_id: str
    event_time_ns: int
    instrument_id: int

    def validate(self) -> None:
        _text(self.command_id, "command_id")


class ResumeInstrument(NamedTuple):
    command_id: str
    event_time_ns: int
    instrument_id: int

    def validate(self) -> None:
        _text(self.command_id, "command_id")


class RegisterUser(NamedTuple):
    command_id: str
    event_time_ns: int
    user_id: int
    name: str
    roles: str = ""  # comma-separated (roles_text): the account processor checks actors by them

    def validate(self) -> None:
        _text(self.command_id, "command_id")
        _text(self.name, "name")
        _positive(self.user_id, "user_id")


def roles_problem(roles: str) -> str | None:
    """Why ``roles`` is not a roles text (unknown role, not sorted), or None."""
    if not roles:
        return None
    named = roles.split(",")
    unknown = sorted(set(named) - ROLES)
    if unknown:
        return f"unknown roles {unknown}; roles are {sorted(ROLES)}"
    if roles != roles_text(named):
        return f"roles must be sorted, comma-separated, once each: {roles!r}"
    return None


class ChangeUserRoles(NamedTuple):
    """Give a user these roles (all of them: the set replaces the user's roles).

    ``actor``: the admin who changes them (0: the operator, e.g. ``tradex api set-roles``).
    An actor must be an admin and not the user (one admin cannot grant or drop their own
    roles: maker/checker, as for withdrawals)."""

    command_id: str
    event_time_ns: int
    user_id: int
    roles: str  # roles_text; "": none
    actor: int = 0

    def validate(self) -> None:
        _text(self.command_id, "command_id")
        _positive(self.user_id, "user_id")
        if self.actor < 0:
            raise InvalidRecord(f"actor must be >= 0, got {self.actor}")


class OpenAccount(NamedTuple):
    command_id: str
    event_time_ns: int
    account_id: int
    user_id: int

    def validate(self) -> None:
        _text(self.command_id, "command_id")
        _positive(self.account_id, "account_id")


ReferenceCommand = (
    CreateAsset
    | CreateInstrument
    | UpdateInstrumentRules
    | HaltInstrument
    | ResumeInstrument
    | RegisterUser
    | ChangeUserRoles
    | OpenAccount
)

# -- events ----------------------------------------------------------------------------------


class AssetCreated(NamedTuple):
    command_id: str
    event_time_ns: int
    asset: Asset


class InstrumentCreated(NamedTuple):
    command_id: str
    event_time_ns: int
    instrument: Instrument


class InstrumentRulesUpdated(NamedTuple):
    """Carries the whole instrument after the change (a table row, easy to project)."""

    command_id: str
    event_time_ns: int
    instrument: Instrument


class InstrumentHalted(NamedTuple):
    command_id: str
    event_time_ns: int
    instrument: Instrument


class InstrumentResumed(NamedTuple):
    command_id: str
    event_time_ns: int
    instrument: Instrument


class UserRegistered(NamedTuple):
    command_id: str
    event_time_ns: int
    user: User


class UserRolesChanged(NamedTuple):
    """The user with its roles after the change (a table row); ``actor`` made it."""

    command_id: str
    event_time_ns: int
    user: User
    actor: int = 0


class AccountOpened(NamedTuple):
    command_id: str
    event_time_ns: int
    account: AccountRef


class ReferenceCommandRejected(NamedTuple):
    command_id: str
    event_time_ns: int
    command_type: str
    reason: Reason
    detail: str


ReferenceEvent = (
    AssetCreated
    | InstrumentCreated
    | InstrumentRulesUpdated
    | InstrumentHalted
    | InstrumentResumed
    | UserRegistered
    | UserRolesChanged
    | AccountOpened
    | ReferenceCommandRejected
)
REFERENCE_EVENT_TYPES: tuple[type, ...] = (
    AssetCreated,
    InstrumentCreated,
    InstrumentRulesUpdated,
    InstrumentHalted,
    InstrumentResumed,
    UserRegistered,
    UserRolesChanged,
    AccountOpened,
    ReferenceCommandRejected,
)

_INSTRUMENT_EVENTS = (
    InstrumentCreated,
    InstrumentRulesUpdated,
    InstrumentHalted,
    InstrumentResumed,
)


class ReferenceDecision(NamedTuple):
    events: tuple[ReferenceEvent, ...]
    order_requests: tuple[InstrumentRules, ...]  # to order-requests, key instrument_id
    duplicate: bool


def instrument_rules(instrument: Instrument, event_time_ns: int) -> InstrumentRules:
    """The in-band record that tells the matcher an instrument's current rules."""
    return InstrumentRules(
        instrument_id=instrument.instrument_id,
        symbol=instrument.symbol,
        kind=instrument.kind,
        status=instrument.status,
        tick_size=instrument.tick_size,
        lot_size=instrument.lot_size,
        min_notional=instrument.min_notional,
        price_band_bps=instrument.price_band_bps,
        maker_fee_ppm=instrument.maker_fee_ppm,
        taker_fee_ppm=instrument.taker_fee_ppm,
        event_time_ns=event_time_ns,
    )


class ReferenceData:
    """The reference table: a fold of ``reference-events``. Single writer: the reference processor."""

    __slots__ = ("accounts", "assets", "command_outcomes", "instruments", "users")

    def __init__(self) -> None:
        self.assets: dict[str, Asset] = {}
        self.instruments: dict[int, Instrument] = {}
        self.users: dict[int, User] = {}
        self.accounts: dict[int, AccountRef] = {}
        self.command_outcomes: dict[str, tuple[ReferenceEvent, ...]] = {}

    # -- decide ------------------------------------------------------------------------------

    def decide(self, command: ReferenceCommand) -> ReferenceDecision:
        """Decide one command and apply its events; a duplicate command id changes nothing."""
        original = self.command_outcomes.get(command.command_id)
        if original is not None:
            return ReferenceDecision(original, (), True)
        try:
            command.validate()
            event = self._decide(command)
        except InvalidRecord as exc:
            event = self._reject(command, Reason.INVALID_COMMAND, str(exc))
        self.apply(event)
        requests: tuple[InstrumentRules, ...] = ()
        if isinstance(event, _INSTRUMENT_EVENTS):
            requests = (instrument_rules(event.instrument, event.event_time_ns),)
        return ReferenceDecision((event,), requests, False)

    def _reject(self, command: ReferenceCommand, reason: Reason, detail: str) -> ReferenceEvent:
        return ReferenceCommandRejected(
            command.command_id, command.event_time_ns, type(command).__name__, reason, detail
        )

    def _decide(self, command: ReferenceCommand) -> ReferenceEvent:
        cid, t = command.command_id, command.event_time_ns
        if isinstance(command, CreateAsset):
            if command.code in self.assets:
                return self._reject(command, Reason.ALREADY_EXISTS, f"asset {command.code}")
            return AssetCreated(cid, t, Asset(command.code, command.scale))
        if isinstance(command, CreateInstrument):
            if command.instrument_id in self.instruments:
                return self._reject(
                    command, Reason.ALREADY_EXISTS, f"instrument {command.instrument_id}"
                )
            for code in (command.base, command.quote):
                if code not in self.assets:
                    return self._reject(command, Reason.UNKNOWN_ASSET, f"asset {code}")
            c = command
            created = Instrument(
                c.instrument_id, c.symbol, c.kind, c.base, c.quote, c.tick_size, c.lot_size,
                c.min_notional, c.price_band_bps, c.maker_fee_ppm, c.taker_fee_ppm,
                InstrumentStatus.TRADING,
            )  # fmt: skip
            return InstrumentCreated(cid, t, created)
        if isinstance(command, RegisterUser):
            if command.user_id in self.users:
                return self._reject(command, Reason.ALREADY_EXISTS, f"user {command.user_id}")
            problem = roles_problem(command.roles)
            if problem is not None:
                return self._reject(command, Reason.INVALID_COMMAND, problem)
            return UserRegistered(cid, t, User(command.user_id, command.name, command.roles))
        if isinstance(command, ChangeUserRoles):
            return self._change_roles(command)
        if isinstance(command, OpenAccount):
            if command.account_id in self.accounts:
                return self._reject(command, Reason.ALREADY_EXISTS, f"account {command.account_id}")
            if command.user_id not in self.users:
                return self._reject(command, Reason.UNKNOWN_USER, f"user {command.user_id}")
            return AccountOpened(cid, t, AccountRef(command.account_id, command.user_id))
        instrument = self.instruments.get(command.instrument_id)
        if instrument is None:
            return self._reject(
                command, Reason.UNKNOWN_INSTRUMENT, f"instrument {command.instrument_id}"
            )
        if isinstance(command, UpdateInstrumentRules):
            changed = instrument._replace(
                min_notional=command.min_notional,
                price_band_bps=command.price_band_bps,
                maker_fee_ppm=command.maker_fee_ppm,
                taker_fee_ppm=command.taker_fee_ppm,
            )
            return InstrumentRulesUpdated(cid, t, changed)
        if isinstance(command, HaltInstrument):
            return InstrumentHalted(cid, t, instrument._replace(status=InstrumentStatus.HALTED))
        assert isinstance(command, ResumeInstrument)
        if instrument.status != InstrumentStatus.HALTED:
            return self._reject(command, Reason.NOT_HALTED, f"instrument {command.instrument_id}")
        return InstrumentResumed(cid, t, instrument._replace(status=InstrumentStatus.TRADING))

    def _change_roles(self, command: ChangeUserRoles) -> ReferenceEvent:
        user = self.users.get(command.user_id)
        if user is None:
            return self._reject(command, Reason.UNKNOWN_USER, f"user {command.user_id}")
        problem = roles_problem(command.roles)
        if problem is not None:
            return self._reject(command, Reason.INVALID_COMMAND, problem)
        actor = command.actor
        if actor:
            by = self.users.get(actor)
            if by is None or not by.has_role("admin"):
                return self._reject(
                    command, Reason.FORBIDDEN, f"user {actor} is not an admin: roles of user "
                    f"{command.user_id} not changed",
                )  # fmt: skip
            if actor == command.user_id:
                return self._reject(
                    command, Reason.MAKER_CHECKER,
                    f"user {actor} cannot change their own roles: another admin must",
                )  # fmt: skip
        changed = user._replace(roles=command.roles)
        return UserRolesChanged(command.command_id, command.event_time_ns, changed, actor)

    # -- apply -------------------------------------------------------------------------------

    def apply(self, event: ReferenceEvent) -> None:
        """Fold one reference event (also used by every reader of ``reference-events``)."""
        if isinstance(event, AssetCreated):
            self.assets[event.asset.code] = event.asset
        elif isinstance(event, _INSTRUMENT_EVENTS):
            instrument = event.instrument
            assert instrument.base in self.assets, "instrument of an unknown base asset"
            assert instrument.quote in self.assets, "instrument of an unknown quote asset"
            self.instruments[instrument.instrument_id] = instrument
        elif isinstance(event, UserRegistered | UserRolesChanged):
            self.users[event.user.user_id] = event.user
        elif isinstance(event, AccountOpened):
            assert event.account.user_id in self.users, "account of an unknown user"
            self.accounts[event.account.account_id] = event.account
        else:
            assert isinstance(event, ReferenceCommandRejected)
        outcomes = self.command_outcomes
        outcomes[event.command_id] = (event,)
        if len(outcomes) > REFERENCE_COMMAND_IDS_MAX:
            self.command_outcomes = forget_oldest(outcomes)  # the oldest (insertion order)
