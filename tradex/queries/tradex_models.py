"""Parameters and responses of the TradeX paths (``/tradex/v1/…``), Binance's conventions:
camelCase, decimal strings, ms times, Binance-style symbols."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tradex.queries.binance_models import AccountId, Decimal, Id, Limit, Symbol, TimeMs

Username = Annotated[
    str, Field(pattern=r"^[a-z0-9_.-]{3,32}$", description="3-32 of a-z 0-9 _ . -")
]
Password = Annotated[str, Field(min_length=10, max_length=256)]
Asset = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,16}$")]
Role = Literal["trader", "admin", "auditor"]
Permission = Literal["read", "trade", "withdraw"]
WithdrawalId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:/-]{1,128}$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- auth ------------------------------------------------------------------------------------


class RegisterBody(Body):
    username: Username
    password: Password


class LoginBody(Body):
    username: Username
    password: Annotated[str, Field(min_length=1, max_length=256)]


class RefreshBody(Body):
    refreshToken: Annotated[str, Field(min_length=1, max_length=200)]


class User(BaseModel):
    userId: int
    username: str
    roles: list[str]
    accountIds: list[int]


class Tokens(BaseModel):
    accessToken: str
    tokenType: Literal["Bearer"]
    expiresIn: int = Field(description="seconds")
    refreshToken: str
    userId: int
    roles: list[str]


class Jwk(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class Jwks(BaseModel):
    keys: list[Jwk]


class Done(BaseModel):
    ok: bool


class SessionsRevoked(Done):
    sessions: int = Field(description="How many sessions were still alive (this one included)")


# -- API keys --------------------------------------------------------------------------------


class NewKeyBody(Body):
    accountId: AccountId = None
    permissions: list[Permission] = Field(
        default_factory=lambda: list[Permission](["read"]), max_length=3
    )
    ipAllowList: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=32, description="Addresses or CIDR networks; empty: any"
    )
    label: Annotated[str, Field(max_length=64)] = ""


class KeyParams(Params):
    keyId: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{8}$")]


class ApiKey(BaseModel):
    keyId: str
    accountId: int
    permissions: list[str]
    ipAllowList: list[str]
    label: str
    createdTime: int
    revokedTime: int | None


class NewApiKey(ApiKey):
    apiKey: str
    secretKey: str = Field(description="Shown once: TradeX does not store it")


# -- ledger ----------------------------------------------------------------------------------


class AccountParams(Params):
    accountId: AccountId = None


class BalancesParams(Params):
    accountId: AccountId = None
    asOf: TimeMs | None = Field(None, description="Balances after every event up to this ms")


StatementCursor = Annotated[
    str | None,
    Field(
        default=None,
        pattern=r"^[0-9]{1,5}-[0-9]{1,19}-[0-9]{1,5}$",
        description="The previous page's `next`: postings after that one",
    ),
]


class StatementParams(Params):
    accountId: AccountId = None
    startTime: TimeMs = 0
    endTime: TimeMs | None = None
    limit: Limit = 1000
    after: StatementCursor = None


class AccountBalance(BaseModel):
    asset: str
    free: str
    locked: str
    total: str


class Balances(BaseModel):
    accountId: int
    asOf: int | None
    balances: list[AccountBalance]


class Posting(BaseModel):
    eventId: str
    index: int
    asset: str
    amount: str
    balanceAfter: str
    time: int


class Statement(BaseModel):
    accountId: int
    startTime: int
    endTime: int
    postings: list[Posting]
    next: str | None = Field(
        description="More postings in the period: pass this as `after` for the next page; "
        "null on the last page"
    )


class Accounts(BaseModel):
    accountIds: list[int]


# -- withdrawals -----------------------------------------------------------------------------


class WithdrawBody(Body):
    accountId: AccountId = None
    asset: Asset
    amount: Decimal


class DecideBody(Body):
    accountId: Annotated[int, Field(ge=1, le=(1 << 63) - 1)]
    withdrawalId: WithdrawalId


class WithdrawalStatusParams(Params):
    status: Literal["REQUESTED", "PAID", "RELEASED"] = "REQUESTED"
    limit: Limit = 100


class Actor(BaseModel):
    """Who did it: the user id on the log (the event's ``actor``; 0: the system) and the
    name it was registered with (null when the log has none)."""

    userId: int
    username: str | None


class Withdrawal(BaseModel):
    withdrawalId: str
    accountId: int
    asset: str
    amount: str
    status: str
    requestedTime: int | None
    requestedBy: Actor | None  # the maker
    decidedTime: int | None
    decidedBy: Actor | None  # the checker (approved: PAID, rejected: RELEASED)


# -- admin -----------------------------------------------------------------------------------


class AssetBody(Body):
    code: Asset
    scale: Annotated[int, Field(ge=0, le=18)]


class InstrumentBody(Body):
    symbol: Annotated[
        str, Field(pattern=r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$", description="BASE-QUOTE")
    ]
    tickSize: Decimal = Field(description="Price step, quote per base unit")
    stepSize: Decimal = Field(description="Quantity step, base units")
    minNotional: Decimal = "0"
    priceBandBps: Annotated[int, Field(ge=0, le=10_000)] = 0
    makerFeePpm: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    takerFeePpm: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class RulesBody(Body):
    symbol: Symbol
    minNotional: Decimal
    priceBandBps: Annotated[int, Field(ge=0, le=10_000)]
    makerFeePpm: Annotated[int, Field(ge=0, le=1_000_000)]
    takerFeePpm: Annotated[int, Field(ge=0, le=1_000_000)]


class SymbolBody(Body):
    symbol: Symbol


class DepositBody(Body):
    accountId: Annotated[int, Field(ge=1, le=(1 << 63) - 1)]
    asset: Asset
    amount: Decimal


class NewUserBody(Body):
    username: Username
    password: Password
    roles: list[Role] = Field(min_length=1, max_length=3)


class RolesBody(Body):
    """The user's roles after the change (all of them; empty: none)."""

    userId: int = Field(gt=0)
    roles: list[Role] = Field(max_length=3)


class Outcome(BaseModel):
    """What the processor decided, by event type (e.g. AssetCreated, Deposited)."""

    commandId: str
    event: str
    detail: dict[str, str | int | None]


class AssetRow(BaseModel):
    asset: str
    scale: int


class InstrumentRow(BaseModel):
    symbol: str  # TradeX's BASE-QUOTE
    binanceSymbol: str
    instrumentId: int
    base: str
    quote: str
    status: str  # TRADING | HALTED
    tickSize: str
    stepSize: str
    minNotional: str
    priceBandBps: int
    makerFeePpm: int
    takerFeePpm: int


class SigningKey(BaseModel):
    kid: str


class AuditAccountsParams(Params):
    after: Id = 0
    limit: Limit = 100


class AuditAccount(BaseModel):
    accountId: int
    userId: int
    username: str


class AuditParams(Params):
    accountId: Annotated[int, Field(ge=1, le=(1 << 63) - 1)]
    asOf: TimeMs | None = None


class AuditStatementParams(Params):
    accountId: Annotated[int, Field(ge=1, le=(1 << 63) - 1)]
    startTime: TimeMs = 0
    endTime: TimeMs | None = None
    limit: Limit = 1000
    after: StatementCursor = None


class AuditOrdersParams(Params):
    accountId: Annotated[int, Field(ge=1, le=(1 << 63) - 1)]
    symbol: Symbol
    limit: Limit = 500


# -- audit status ----------------------------------------------------------------------------


class VerifyFinding(BaseModel):
    check: str  # e.g. chain, journal_balanced, read_model
    place: str  # topic[partition]@offset (event id)
    message: str


class LastVerify(BaseModel):
    """The last ``tradex audit verify`` of this stack and prefix (``ran`` false: none)."""

    ran: bool
    time: int | None  # ms since the epoch
    ok: bool | None
    violations: int | None
    records: int | None
    counts: dict[str, int]  # violations per check
    found: list[VerifyFinding]  # the first ones
    notes: list[str]


class ChainHead(BaseModel):
    producer: str
    offset: int
    hash: str


class CheckpointStream(BaseModel):
    topic: str
    partition: int
    start: int
    end: int  # the log is covered up to here (next offset)
    records: int  # in [start, end)
    root: str  # Merkle root (hex)
    heads: list[ChainHead]
    logEnd: int  # the partition's end now
    sinceCheckpoint: int  # records written after the checkpoint's end


class LatestCheckpoint(BaseModel):
    seq: int
    offset: int
    createdTime: int
    keyId: str
    signatureOk: bool | None  # null: no public key to check with
    linked: bool  # names the previous checkpoint record's SHA-256, sequence follows
    linkProblem: str | None
    verifies: bool  # signature and link
    records: int
    streamCount: int
    streams: list[CheckpointStream]


class CheckpointStatus(BaseModel):
    topic: str
    checkpoints: int  # the newest checkpoint's sequence number + 1 (0: none)
    publicKeyId: str | None
    latest: LatestCheckpoint | None
    problem: str | None


class AuditStatus(BaseModel):
    verify: LastVerify
    checkpoints: CheckpointStatus
    readTime: int
