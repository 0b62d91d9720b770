"""The topics the projectors read and which record types belong on each.

TODO(log-home): moves to tradex.log.topics once the shared log package lands.
"""

from __future__ import annotations

from tradex import domain
from tradex.domain import engine

ACCOUNT_EVENTS = "account-events"
ENGINE_EVENTS = "engine-events"
REFERENCE_EVENTS = "reference-events"
DEAD_LETTERS = "dead-letters"

REFERENCE_EVENT_TYPES: tuple[type, ...] = (
    domain.AssetCreated,
    domain.InstrumentCreated,
    domain.InstrumentRulesUpdated,
    domain.InstrumentHalted,
    domain.InstrumentResumed,
    domain.UserRegistered,
    domain.AccountOpened,
    domain.ReferenceCommandRejected,
)

TOPIC_TYPES: dict[str, frozenset[type]] = {
    ACCOUNT_EVENTS: frozenset(domain.ACCOUNT_EVENT_TYPES),
    REFERENCE_EVENTS: frozenset(REFERENCE_EVENT_TYPES),
    ENGINE_EVENTS: frozenset(engine.ENGINE_EVENT_TYPES),
}
