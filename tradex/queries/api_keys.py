"""API keys for programs: created with a secret shown once, looked up by hash.

An API key is 64 letters and digits (Binance's shape). The auth schema keeps the SHA-256
of the key, never the key; the secret is not stored at all: it is derived from the key
and a per-key salt with the master key (``HMAC(master, key ‖ salt)``), so the server can
check a request's HMAC signature while a copy of the database alone reveals neither the
keys nor their secrets. ``key_id`` (the key's first 8 characters) names a key in lists
and revocations. Each key acts for one account of its user, with permissions
(``read``, ``trade``, ``withdraw``) and an optional IP allow-list (addresses or CIDR
networks).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import string
from typing import Any, NamedTuple

from tradex.queries.master_key import MasterKey

KEY_CHARS = 64
KEY_ID_CHARS = 8
SALT_BYTES = 16
KEY_TEXT = re.compile(r"^[A-Za-z0-9]{1,128}$")
IP_ALLOW_MAX = 32
_ALPHABET = string.ascii_letters + string.digits


class NewKey(NamedTuple):
    api_key: str
    secret: str
    row: dict[str, Any]  # for AuthStore.add_key


def key_hash(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def secret_of(master: MasterKey, api_key: str, salt: bytes) -> str:
    return master.derive("api-key-secret", api_key.encode() + salt).hex()


def parse_networks(
    entries: list[str],
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """IP addresses or CIDR networks (ValueError names the bad entry)."""
    if len(entries) > IP_ALLOW_MAX:
        raise ValueError(f"at most {IP_ALLOW_MAX} entries")
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network") from exc
    return found


def ip_allowed(allow: list[str], ip: str | None) -> bool:
    """True when the list is empty or ``ip`` is in one of its networks."""
    if not allow:
        return True
    if ip is None:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in parse_networks(allow))


def create(
    master: MasterKey, user_id: int, account_id: int, permissions: list[str],
    ip_allow: list[str], label: str, now_ns: int,
) -> NewKey:  # fmt: skip
    api_key = "".join(secrets.choice(_ALPHABET) for _ in range(KEY_CHARS))
    salt = secrets.token_bytes(SALT_BYTES)
    networks = [str(n) for n in parse_networks(ip_allow)]
    row = {
        "key_hash": key_hash(api_key), "key_id": api_key[:KEY_ID_CHARS], "user_id": user_id,
        "account_id": account_id, "salt": salt, "permissions": sorted(set(permissions)),
        "ip_allow": networks, "label": label, "created_ns": now_ns,
    }  # fmt: skip
    return NewKey(api_key, secret_of(master, api_key, salt), row)
