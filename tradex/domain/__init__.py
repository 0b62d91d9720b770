"""TradeX domain: reference data, the account aggregate, the journal and its auditor.

Pure Python, no infrastructure. See docs/ledger.md for the model and the processor's calls.
"""

from tradex.domain.account import COMMAND_IDS_MAX, OPEN_ORDERS_MAX, Account, Decision, OpenOrder
from tradex.domain.book import AccountBook
from tradex.domain.commands import (
    AccountCommand,
    AccountInput,
    ApproveWithdrawal,
    CancelOrder,
    Deposit,
    FillLeg,
    OrderEnded,
    PlaceOrder,
    RejectWithdrawal,
    RequestWithdrawal,
    SettlementInput,
)
from tradex.domain.engine import (
    ENGINE_EVENT_TYPES,
    Accepted,
    AmendApplied,
    Cancelled,
    EngineEvent,
    Expired,
    Filled,
    L2Delta,
    Rejected,
    Rested,
    RulesApplied,
    Trade,
)
from tradex.domain.errors import DomainError, InvalidRecord
from tradex.domain.events import (
    ACCOUNT_EVENT_TYPES,
    AccountEvent,
    CancelRequested,
    CommandRejected,
    Deposited,
    FillSettled,
    HoldReleased,
    OrderAccepted,
    OrderRejected,
    WithdrawalPaid,
    WithdrawalReleased,
    WithdrawalRequested,
    hold_delta,
    postings_of,
)
from tradex.domain.ids import event_id, order_id
from tradex.domain.journal import (
    CLEARING_ACCOUNT,
    EXTERNAL_ACCOUNT,
    FEES_ACCOUNT,
    SYSTEM_ACCOUNTS,
    Posting,
    check_balanced,
)
from tradex.domain.ledger import Ledger
from tradex.domain.orders import (
    AmendOrder,
    CancelOrderRequest,
    InstrumentRules,
    NewOrder,
    OrderRequest,
)
from tradex.domain.reference import (
    AccountOpened,
    AccountRef,
    Asset,
    AssetCreated,
    CreateAsset,
    CreateInstrument,
    HaltInstrument,
    Instrument,
    InstrumentCreated,
    InstrumentHalted,
    InstrumentResumed,
    InstrumentRulesUpdated,
    OpenAccount,
    ReferenceCommand,
    ReferenceCommandRejected,
    ReferenceData,
    ReferenceDecision,
    ReferenceEvent,
    RegisterUser,
    ResumeInstrument,
    UpdateInstrumentRules,
    User,
    UserRegistered,
)
from tradex.domain.types import (
    EndReason,
    InstrumentKind,
    InstrumentStatus,
    Liquidity,
    OrderKind,
    Reason,
    Side,
    StpMode,
)

__all__ = [
    "ACCOUNT_EVENT_TYPES", "CLEARING_ACCOUNT", "COMMAND_IDS_MAX", "ENGINE_EVENT_TYPES",
    "EXTERNAL_ACCOUNT", "FEES_ACCOUNT", "OPEN_ORDERS_MAX", "SYSTEM_ACCOUNTS", "Accepted",
    "Account", "AccountBook", "AccountCommand", "AccountEvent", "AccountInput",
    "AccountOpened", "AccountRef", "AmendApplied", "AmendOrder", "ApproveWithdrawal", "Asset",
    "AssetCreated", "CancelOrder", "CancelOrderRequest", "CancelRequested", "Cancelled",
    "CommandRejected", "CreateAsset", "CreateInstrument", "Decision", "Deposit", "Deposited",
    "DomainError", "EndReason", "EngineEvent", "Expired", "FillLeg", "FillSettled", "Filled",
    "HaltInstrument", "HoldReleased", "Instrument", "InstrumentCreated", "InstrumentHalted",
    "InstrumentKind", "InstrumentResumed", "InstrumentRules", "InstrumentRulesUpdated",
    "InstrumentStatus", "InvalidRecord", "L2Delta", "Ledger", "Liquidity", "NewOrder",
    "OpenAccount", "OpenOrder", "OrderAccepted", "OrderEnded", "OrderKind", "OrderRejected",
    "OrderRequest", "PlaceOrder", "Posting", "Reason", "ReferenceCommand",
    "ReferenceCommandRejected", "ReferenceData", "ReferenceDecision", "ReferenceEvent",
    "RegisterUser", "RejectWithdrawal", "Rejected", "RequestWithdrawal", "Rested",
    "ResumeInstrument", "RulesApplied", "SettlementInput", "Side", "StpMode", "Trade",
    "UpdateInstrumentRules", "User", "UserRegistered", "WithdrawalPaid", "WithdrawalReleased",
    "WithdrawalRequested", "check_balanced", "event_id", "hold_delta", "order_id", "postings_of",
]  # fmt: skip
