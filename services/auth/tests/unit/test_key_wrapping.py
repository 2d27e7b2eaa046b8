"""Sealing a signing key's private PEM: what opens it, and what does not."""

from __future__ import annotations

import pytest
from auth_service.adapters.key_wrapping import KeyEncryptionError, KeyWrapper, new_key, parse_key

PEM = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"


def test_a_sealed_key_opens_with_its_key_and_kid_only() -> None:
    key = parse_key(new_key())
    wrapper = KeyWrapper(key)
    doc = {"_id": "kid-1", **wrapper.stored_fields("kid-1", PEM)}
    assert b"PRIVATE" not in str(doc).encode() and "private_pem" not in doc
    assert KeyWrapper(key).open(doc) == PEM
    # Copied into another key's document, it does not open.
    with pytest.raises(KeyEncryptionError, match="kid-2 cannot be decrypted"):
        wrapper.open({**doc, "_id": "kid-2"})
    with pytest.raises(KeyEncryptionError, match="TASKMESH_KEY_ENCRYPTION_KEY is not set"):
        KeyWrapper(None).open(doc)


def test_a_plaintext_key_is_sealed_only_when_there_is_a_key() -> None:
    doc = {"_id": "kid-1", "private_pem": PEM.decode()}
    assert KeyWrapper(None).seal_update(doc) is None
    wrapper = KeyWrapper(parse_key(new_key()))
    update = wrapper.seal_update(doc)
    assert update is not None and update["$unset"] == {"private_pem": ""}
    assert wrapper.open({"_id": "kid-1", **update["$set"]}) == PEM
