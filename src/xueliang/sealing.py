"""Secrets the platform must read back (TOTP seeds) are sealed at rest.

AES-256-GCM under a key derived (HKDF-SHA256) from the platform secret — ``secret_key`` or
``var/secret.key``, which never goes into the database — so a copy of the database alone does
not give anyone a user's second factor. Each sealed value is bound to where it belongs (the
``context``, e.g. ``user:7:totp``): moved to another row, it no longer opens.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1:"


class SealError(ValueError):
    """A sealed value that does not open: another key, another row, or tampered with."""


class Sealer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("sealing secret too short")
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"xueliang/sealed-at-rest/v1").derive(secret)
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def open(self, stored: str, *, context: str) -> str:
        """The plaintext; a value written before sealing existed is returned as it is."""
        if not self.is_sealed(stored):
            return stored
        text = stored[len(PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealError(f"sealed value for {context} does not open") from exc
