"""Double-entry journal: postings, system accounts and the balance rule.

A posting changes the *total* balance (available + held) of one account in one asset.
Moving funds between ``available`` and ``held`` of the same account is not a posting: it
is carried by the hold fields of the events (see ``tradex.domain.events``).
"""

from __future__ import annotations

from typing import NamedTuple

from tradex.domain.errors import InvalidRecord

# System accounts (negative ids; user accounts are > 0).
EXTERNAL_ACCOUNT = -1  # the world outside: deposits come from it, withdrawals go to it
FEES_ACCOUNT = -2  # fee income
CLEARING_ACCOUNT = -3  # the counterparty of every fill leg; nets to zero per settled trade
SYSTEM_ACCOUNTS = frozenset((EXTERNAL_ACCOUNT, FEES_ACCOUNT, CLEARING_ACCOUNT))
POSTINGS_MAX = 8  # per journal entry (a fill leg has 5)


class Posting(NamedTuple):
    account_id: int
    asset: str
    delta: int


def check_balanced(postings: tuple[Posting, ...]) -> None:
    """Raise InvalidRecord unless the postings sum to zero per asset."""
    if not 0 < len(postings) <= POSTINGS_MAX:
        raise InvalidRecord(f"a journal entry has 1..{POSTINGS_MAX} postings, got {len(postings)}")
    sums: dict[str, int] = {}
    for posting in postings:
        sums[posting.asset] = sums.get(posting.asset, 0) + posting.delta
    for asset, total in sums.items():
        if total != 0:
            raise InvalidRecord(f"journal entry unbalanced in {asset}: sums to {total}")
