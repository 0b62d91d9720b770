"""Password hashing: argon2id (argon2-cffi), off the event loop.

A hash costs tens of milliseconds of CPU by design, so it runs on the loop's default
thread pool (bounded), never inline. A login for an unknown user verifies against a dummy
hash, so the answer takes as long as for a known one (no user enumeration by timing).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PASSWORD_CHARS_MIN = 10
PASSWORD_CHARS_MAX = 256


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        assert time_cost >= 1, time_cost
        assert memory_kib >= 8 * parallelism, memory_kib
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self.dummy = self.hasher.hash("not a password of anyone")

    async def hash(self, password: str) -> str:
        assert PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX, "checked by the caller"
        found = await asyncio.to_thread(self.hasher.hash, password)
        assert found.startswith("$argon2id$"), found[:10]
        return found

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (None: an unknown user, always False)."""
        try:
            await asyncio.to_thread(self.hasher.verify, stored or self.dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None
