"""The signing keys' private part, encrypted at rest with the key encryption key.

AES-256-GCM (``cryptography``) under ``TASKMESH_KEY_ENCRYPTION_KEY``: 32 random bytes,
base64url. Each private key is sealed with a fresh 96-bit nonce and its kid as associated
data, so a sealed key copied into another key's document does not open. A key document
holds ``private_sealed`` (base64 of nonce + ciphertext) and ``private_alg`` ``A256GCM``
instead of the PEM.

Without a key encryption key (development only: production refuses to start without one)
new keys are stored as ``private_pem``. With one, keys still stored as PEM are sealed on
start (:meth:`KeyWrapper.seal_update`). A sealed key with no key encryption key, or with
another one, is :class:`KeyEncryptionError`: auth cannot sign, and says which setting to fix.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["ALGORITHM", "SETTING", "KeyEncryptionError", "KeyWrapper", "new_key", "parse_key"]

ALGORITHM = "A256GCM"
SETTING = "TASKMESH_KEY_ENCRYPTION_KEY"
_NONCE_BYTES = 12


class KeyEncryptionError(RuntimeError):
    """The stored signing keys cannot be opened with the configured key encryption key."""


def new_key() -> str:
    """A fresh key encryption key, in the form the setting takes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_key(text: str) -> bytes:
    """The 32 bytes of a key encryption key given as base64url; ``ValueError`` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            f"{SETTING} must be 32 random bytes, base64url-encoded (44 characters), e.g. from "
            "python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
        )
    return raw


def _associated_data(kid: str) -> bytes:
    return f"taskmesh-signing-key:{kid}".encode()


class KeyWrapper:
    """Seals and opens the private PEM of a signing key document."""

    def __init__(self, key: bytes | None) -> None:
        self._aead = AESGCM(key) if key is not None else None

    @property
    def encrypts(self) -> bool:
        return self._aead is not None

    def stored_fields(self, kid: str, pem: bytes) -> dict[str, Any]:
        """The document fields that hold ``pem``: sealed, or as is without a key."""
        if self._aead is None:
            return {"private_pem": pem.decode()}
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, pem, _associated_data(kid))
        return {"private_sealed": base64.b64encode(sealed).decode(), "private_alg": ALGORITHM}

    def open(self, doc: dict[str, Any]) -> bytes:
        """The private PEM of a key document; :class:`KeyEncryptionError` if it cannot be."""
        kid = str(doc["_id"])
        if "private_sealed" not in doc:
            return str(doc["private_pem"]).encode()
        if self._aead is None:
            raise KeyEncryptionError(
                f"signing key {kid} is stored encrypted, but {SETTING} is not set: set it to "
                "the key the signing keys were encrypted with"
            )
        if doc.get("private_alg") != ALGORITHM:
            raise KeyEncryptionError(
                f"signing key {kid}: unknown algorithm {doc.get('private_alg')!r}"
            )
        sealed = base64.b64decode(doc["private_sealed"])
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, _associated_data(kid))
        except InvalidTag:
            raise KeyEncryptionError(
                f"signing key {kid} cannot be decrypted with {SETTING}: it is not the key the "
                "signing keys were encrypted with (restore that key; infra/README.md, "
                "'The signing keys', says what to do if it is lost)"
            ) from None

    def seal_update(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The update that replaces a key document's plaintext PEM by its sealed form; None
        when there is nothing to seal (already sealed, or no key encryption key)."""
        if self._aead is None or "private_pem" not in doc:
            return None
        fields = self.stored_fields(str(doc["_id"]), str(doc["private_pem"]).encode())
        return {"$set": fields, "$unset": {"private_pem": ""}}
