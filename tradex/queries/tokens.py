"""Access tokens: short-lived JWTs signed with Ed25519 (EdDSA), keys rotated, JWKS published.

The signing keys live in the auth schema (private halves sealed with the master key), so
every worker signs and verifies with the same set. The newest key signs; older ones stay
in the JWKS and keep verifying until the tokens they signed have expired
(``access_token_ttl_s`` after a newer key took over), then they are retired. A key older
than ``signing_key_rotate_s`` is replaced on the next refresh; ``rotate`` replaces it now.
Workers read the keys again every :data:`RELOAD_S` seconds and when a token names a key
they do not know.

Claims: ``iss`` tradex, ``sub`` the user id, ``sid`` the session (checked in Redis on
every request, so logout revokes at once), ``roles``, ``iat``, ``exp``, ``jti``.

A worker remembers the tokens whose signature it has checked (the token's exact text →
its key and claims, :data:`VERIFIED_MAX` of them): a bot sends the same token thousands of
times, and the signature check is most of a request's authentication. What depends on
time or on the key set is checked on every use: the expiry, and that the signing key is
still live (a retired key's tokens stop at once).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tradex.queries.auth_store import AuthStore
from tradex.queries.errors import TOKEN_INVALID, ApiError
from tradex.queries.master_key import MasterKey

ISSUER = "tradex"
ALGORITHM = "EdDSA"
RELOAD_S = 30.0
TOKEN_CHARS_MAX = 4_096
ISSUED_SKEW_S_MAX = 60  # a token issued this far ahead of our clock is still accepted
VERIFIED_MAX = 50_000  # tokens remembered as checked (then forgotten all at once)
NS = 1_000_000_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    jwk: dict[str, str]
    created_ns: int


@dataclass(frozen=True)
class Claims:
    user_id: int
    session_id: str
    roles: frozenset[str]
    expires_ns: int


class TokenKeys:
    """The signing key set of an exchange, loaded from the auth schema."""

    def __init__(
        self, store: AuthStore, master: MasterKey, ttl_s: int, rotate_s: int,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:  # fmt: skip
        self.store = store
        self.master = master
        self.ttl_s = ttl_s
        self.rotate_s = rotate_s
        self.clock_ns = clock_ns
        self.keys: dict[str, SigningKey] = {}
        self.loaded_at = -RELOAD_S
        self.lock = asyncio.Lock()
        self.verified: dict[str, tuple[str, Claims]] = {}  # token -> (kid, claims)

    @property
    def current(self) -> SigningKey:
        assert self.keys, "no signing key loaded"
        return max(self.keys.values(), key=lambda k: (k.created_ns, k.kid))

    async def load(self) -> None:
        """Read the keys; make the first one, replace an old one, retire expired ones."""
        async with self.lock:
            await self._load()
            now = self.clock_ns()
            if not self.keys or now - self.current.created_ns > self.rotate_s * NS:
                await self._add(now)
            await self._retire(now)
            self.loaded_at = time.monotonic()

    async def rotate(self) -> str:
        """A new signing key now; returns its kid."""
        async with self.lock:
            kid = await self._add(self.clock_ns())
        return kid

    async def _load(self) -> None:
        found = {}
        for row in await self.store.signing_keys():
            private = Ed25519PrivateKey.from_private_bytes(
                self.master.open(bytes(row["sealed_private"]), row["kid"])
            )
            jwk = (
                json.loads(row["public_jwk"])
                if isinstance(row["public_jwk"], str)
                else dict(row["public_jwk"])
            )
            found[row["kid"]] = SigningKey(
                row["kid"], private, private.public_key(), jwk, int(row["created_ns"])
            )
        self.keys = found

    async def _add(self, now_ns: int) -> str:
        if self.keys:  # the newest key signs: a new one must be newer, whatever the clock
            now_ns = max(now_ns, self.current.created_ns + 1)
        private = Ed25519PrivateKey.generate()
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kid = f"{now_ns // NS:x}-{secrets.token_hex(4)}"
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": kid, "alg": ALGORITHM,
               "use": "sig"}  # fmt: skip
        secret = private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )  # fmt: skip
        await self.store.add_signing_key(
            kid, self.master.seal(secret, kid), json.dumps(jwk), now_ns
        )
        await self._load()
        assert kid in self.keys, kid
        return kid

    async def _retire(self, now_ns: int) -> None:
        """Keys replaced more than a token lifetime ago verify nothing any more."""
        ordered = sorted(self.keys.values(), key=lambda k: (k.created_ns, k.kid))
        old = [
            key.kid
            for key, newer in itertools.pairwise(ordered)
            if now_ns - newer.created_ns > self.ttl_s * NS
        ]
        if old:
            await self.store.retire_signing_keys(old, now_ns)
            await self._load()

    async def refresh(self) -> None:
        if time.monotonic() - self.loaded_at > RELOAD_S:
            await self.load()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk for key in sorted(self.keys.values(), key=lambda k: k.kid)]}

    # -- tokens --------------------------------------------------------------------------

    def issue(self, user_id: int, session_id: str, roles: frozenset[str]) -> tuple[str, int]:
        """(token, expiry in ns)."""
        now = self.clock_ns()
        expires = now + self.ttl_s * NS
        key = self.current
        claims = {
            "iss": ISSUER, "sub": str(user_id), "sid": session_id, "roles": sorted(roles),
            "iat": now // NS, "exp": expires // NS, "jti": secrets.token_hex(8),
        }  # fmt: skip
        token = jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, expires

    async def verify(self, token: str) -> Claims:
        """The claims of a valid, unexpired token signed by a live key (else 401)."""
        known = self.verified.get(token)
        if known is not None and known[0] in self.keys:
            if known[1].expires_ns <= self.clock_ns():
                raise ApiError(TOKEN_INVALID, "The access token has expired.")
            return known[1]
        kid, claims = await self._verify(token)
        if len(self.verified) >= VERIFIED_MAX:
            self.verified.clear()
        self.verified[token] = (kid, claims)
        return claims

    async def _verify(self, token: str) -> tuple[str, Claims]:
        if len(token) > TOKEN_CHARS_MAX:
            raise ApiError(TOKEN_INVALID)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise ApiError(TOKEN_INVALID, "Malformed access token.") from exc
        if not isinstance(kid, str):
            raise ApiError(TOKEN_INVALID, "The access token names no key.")
        if kid not in self.keys and time.monotonic() - self.loaded_at > 1.0:
            await self.load()  # rotated by another worker
        key = self.keys.get(kid)
        if key is None:
            raise ApiError(TOKEN_INVALID, "The access token's signing key is unknown or retired.")
        try:
            claims = jwt.decode(
                token, key.public, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["exp", "iat", "sub", "sid"]},
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            raise ApiError(TOKEN_INVALID, f"Invalid access token: {exc}.") from exc
        expires_ns = int(claims["exp"]) * NS
        now = self.clock_ns()  # the injected clock, not PyJWT's: times are checked here
        if expires_ns <= now:
            raise ApiError(TOKEN_INVALID, "The access token has expired.")
        if int(claims["iat"]) * NS > now + ISSUED_SKEW_S_MAX * NS:
            raise ApiError(TOKEN_INVALID, "The access token is issued in the future.")
        roles = claims.get("roles", [])
        if not str(claims["sub"]).isdigit() or not isinstance(roles, list):
            raise ApiError(TOKEN_INVALID)
        return kid, Claims(
            int(claims["sub"]), str(claims["sid"]), frozenset(map(str, roles)), expires_ns
        )
