"""The platform's evidence signing key (Ed25519): it signs every export's manifest.

Derived (HKDF-SHA256) from the platform secret — ``secret_key`` in the configuration, else
``var/secret.key`` made at first start — like the keys that seal secrets at rest
(xueliang/sealing.py): one secret to keep, never in the database, and every node of a cluster
signs with the same key. The public key is published as PEM (``GET /api/v1/exports/public-key``)
and copied into each export folder; changing the platform secret changes the key (exports
signed before keep verifying with the key they carry and the one published then).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)


class EvidenceSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("signing secret too short")
        seed = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"xueliang/evidence-signing/v1").derive(secret)
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_pem = self._key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature over ``data`` (what ``openssl pkeyutl -verify -rawin`` checks)."""
        return self._key.sign(data)

    @property
    def key_id(self) -> str:
        return fingerprint(self.public_pem)


def fingerprint(pem: bytes) -> str:
    """SHA-256 of the raw public key, hex (what to compare with the platform's published key)."""
    raw = load_public_key(pem).public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def signature_ok(pem: bytes, data: bytes, signature: bytes) -> bool:
    try:
        load_public_key(pem).verify(signature, data)
    except InvalidSignature:
        return False
    return True
