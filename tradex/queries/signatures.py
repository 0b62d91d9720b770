"""Signed requests (Binance's ``SIGNED`` endpoints): HMAC-SHA256, timestamp, replay window.

The signature is ``HMAC-SHA256(secret, totalParams)`` in hex, where ``totalParams`` is the
query string followed by the request body, exactly as sent, without the ``signature``
parameter (Binance's rule: ``symbol=X&side=BUY`` in the query and ``quantity=1`` in the
body sign ``symbol=X&side=BUYquantity=1``). The request carries ``timestamp`` (ms) and
optionally ``recvWindow`` (ms, at most 60,000, default 5,000): it is accepted when
``timestamp - clock_skew_ms_max <= now`` and ``now - timestamp <= recvWindow``
(``-1021`` otherwise). A signature is accepted once: it is remembered in Redis for the
window it could still be valid in, and a replay is refused (``-70011``).
"""

from __future__ import annotations

import hashlib
import hmac
import re

import redis.asyncio

SIGNATURE = re.compile(rb"(?:^|&)signature=([^&]*)")
SIGNATURE_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def split_signature(query: bytes, body: bytes) -> tuple[bytes, str | None]:
    """(totalParams without the signature, the signature or None)."""
    found: list[str] = []

    def drop(part: bytes) -> bytes:
        matches = list(SIGNATURE.finditer(part))
        found.extend(match.group(1).decode("latin-1") for match in matches)
        if len(matches) != 1:
            return part
        match = matches[0]
        head, tail = part[: match.start()], part[match.end() :]
        if not head and tail.startswith(b"&"):
            tail = tail[1:]
        return head + tail

    payload = drop(query) + drop(body)
    return payload, (found[0] if len(found) == 1 else None)


def valid(secret: str, payload: bytes, signature: str) -> bool:
    if not SIGNATURE_HEX.match(signature):
        return False
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def in_window(timestamp_ms: int, recv_window_ms: int, now_ms: int, skew_ms_max: int) -> bool:
    return timestamp_ms - skew_ms_max <= now_ms and now_ms - timestamp_ms <= recv_window_ms


class ReplayGuard:
    """Remembers each accepted signature, per request it was used for (``target``: the
    endpoint's method and path, or the WebSocket operation), for as long as it could be
    replayed. Per target, because Binance's signature covers the parameters, not the
    path: a client that signs two requests with the same parameters in the same
    millisecond (ccxt.pro's ``load_markets`` sends several ``timestamp``-only GETs at
    once) makes one signature for two different requests, and neither is a replay."""

    def __init__(self, conn: redis.asyncio.Redis, ns: str) -> None:
        self.conn = conn
        self.prefix = f"{{{ns}}}:sig:"

    async def first_use(self, target: str, signature: str, window_ms: int) -> bool:
        assert window_ms > 0, window_ms
        key = f"{self.prefix}{target}:{signature.lower()}"
        return bool(await self.conn.set(key, 1, nx=True, px=window_ms))
