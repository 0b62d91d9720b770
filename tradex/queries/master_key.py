"""The API's master key: seals the JWT signing keys at rest and derives API-key secrets.

32 random bytes in a file readable by its owner only (``<stack dir>/api/master.key`` by
default, ``TRADEX_API_MASTER_KEY_PATH`` to choose), created on the first start. Every
worker and every API process of one exchange must read the same file. Losing it
invalidates every API key and signing key (users log in again, create new keys); leaking
it with the auth schema leaks them (keep it out of backups of the database).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


def load_or_create(path: Path) -> bytes:
    """The key in ``path``; a new one (mode 0600) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_bytes(KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker created it first
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(fresh.hex().encode())
    key = bytes.fromhex(path.read_text().strip())
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: a master key is {KEY_BYTES} bytes of hex")
    return key


class MasterKey:
    def __init__(self, key: bytes) -> None:
        assert len(key) == KEY_BYTES, len(key)
        self._aead = AESGCM(hashlib.sha256(b"tradex-seal|" + key).digest())
        self._derive = hashlib.sha256(b"tradex-derive|" + key).digest()

    def seal(self, data: bytes, label: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, label.encode())

    def open(self, sealed: bytes, label: str) -> bytes:
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], label.encode())

    def derive(self, label: str, data: bytes) -> bytes:
        """A secret only this key can compute again from ``data``."""
        return hmac.new(self._derive, label.encode() + b"|" + data, hashlib.sha256).digest()
