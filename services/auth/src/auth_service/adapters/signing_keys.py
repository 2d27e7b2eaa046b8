"""Ed25519 signing keys shared by every auth replica through auth's own database.

One document per key: `_id` = kid, a `generation` under a unique index (so replicas that
start or rotate at the same moment end with exactly one newest key: the others' inserts
collide and they adopt the winner), the private key (sealed with the key encryption key:
key_wrapping.py), the public JWK, and
`retire_after` once a newer key took over. The newest generation signs; every key not yet
retired is published in the JWKS, so tokens signed before a rotation stay verifiable
until they expire. A TTL index on `retire_after` deletes retired keys (a key without one,
`None`, never expires); the JWKS query checks `retire_after` itself, so a retired key
leaves the JWKS on time whenever the TTL monitor runs.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from taskmesh_common.mongo import Document

from auth_service.adapters.key_wrapping import KeyWrapper
from auth_service.domain.errors import SigningKeyUnavailable

__all__ = ["SIGNING_KEY_INDEXES", "KeyStore", "SigningKey"]

ALGORITHM = "EdDSA"
_JWKS_CACHE = 5.0
SIGNING_KEY_INDEXES = [
    IndexModel([("generation", DESCENDING)], unique=True, name="generation"),
    IndexModel([("retire_after", ASCENDING)], name="retired", expireAfterSeconds=0),
]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    generation: int
    private_key: Ed25519PrivateKey

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"}
        )


def _new_key_document(generation: int, now: datetime, wrapper: KeyWrapper) -> Document:
    private_key = Ed25519PrivateKey.generate()
    kid = secrets.token_urlsafe(12)
    public_jwk: dict[str, Any] = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "_id": kid,
        "generation": generation,
        "alg": ALGORITHM,
        **wrapper.stored_fields(kid, pem),
        "public_jwk": {**public_jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"},
        "created_at": now,
        "retire_after": None,
    }


def _signing_key(doc: Document, wrapper: KeyWrapper) -> SigningKey:
    private_key = serialization.load_pem_private_key(wrapper.open(doc), password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise SigningKeyUnavailable()
    return SigningKey(kid=doc["_id"], generation=doc["generation"], private_key=private_key)


class KeyStore:
    """The newest key signs (cached for `reload_seconds` per replica); live keys are published."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        reload_seconds: float,
        retire_grace: timedelta,
        indexes_ready: asyncio.Event | None = None,
        ready_timeout: float = 3.0,
        wrapper: KeyWrapper | None = None,
    ) -> None:
        self.collection = collection
        self.wrapper = wrapper or KeyWrapper(None)
        self.reload_seconds = reload_seconds
        # The first key may only be created once the unique index exists, or two replicas
        # starting together could both create one.
        self.indexes_ready = indexes_ready
        self.ready_timeout = ready_timeout
        self._jwks: tuple[float, dict[str, Any]] | None = None
        # How long an old key stays published after a rotation: its last token's lifetime,
        # plus the time other replicas may keep signing with it before they reload.
        self.retire_grace = retire_grace + timedelta(seconds=reload_seconds)
        self._current: SigningKey | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def _newest(self) -> Document | None:
        return await self.collection.find_one({}, sort=[("generation", DESCENDING)])

    async def seal_and_check(self) -> int:
        """Seal the keys still stored as plaintext (with a key encryption key), then open
        the newest: raises ``KeyEncryptionError`` when it cannot be. The count sealed."""
        sealed = 0
        if self.wrapper.encrypts:
            async for doc in self.collection.find({"private_pem": {"$exists": True}}):
                update = self.wrapper.seal_update(doc)
                if update is not None:
                    # Only while still plaintext: a replica sealing it at once wins alone.
                    filter_ = {"_id": doc["_id"], "private_pem": {"$exists": True}}
                    result = await self.collection.update_one(filter_, update)
                    sealed += result.modified_count
        newest = await self._newest()
        if newest is not None:
            _signing_key(newest, self.wrapper)
        return sealed

    async def ensure_key(self, now: datetime) -> SigningKey:
        """The newest key, creating the first one if there is none (safe across replicas)."""
        doc = await self._newest()
        if doc is None:
            await self._wait_for_indexes()
            try:
                await self.collection.insert_one(_new_key_document(1, now, self.wrapper))
            except DuplicateKeyError:
                pass  # another replica created it first; use theirs
            doc = await self._newest()
        if doc is None:
            raise SigningKeyUnavailable()
        self._current, self._loaded_at = _signing_key(doc, self.wrapper), time.monotonic()
        return self._current

    async def _wait_for_indexes(self) -> None:
        if self.indexes_ready is None or self.indexes_ready.is_set():
            return
        try:
            await asyncio.wait_for(self.indexes_ready.wait(), self.ready_timeout)
        except TimeoutError:
            raise SigningKeyUnavailable() from None

    async def current(self, now: datetime) -> SigningKey:
        if self._current is not None and time.monotonic() - self._loaded_at < self.reload_seconds:
            return self._current
        async with self._lock:
            if self._current is None or time.monotonic() - self._loaded_at >= self.reload_seconds:
                await self.ensure_key(now)
        assert self._current is not None
        return self._current

    async def rotate(self, now: datetime) -> SigningKey:
        """A new key signs from now on; older ones are published until their tokens expire."""
        await self._wait_for_indexes()
        newest = await self._newest()
        generation = (newest["generation"] if newest else 0) + 1
        try:
            await self.collection.insert_one(_new_key_document(generation, now, self.wrapper))
        except DuplicateKeyError:
            pass  # a concurrent rotation won; its key is the new one
        key = await self.ensure_key(now)
        await self.collection.update_many(
            {"generation": {"$lt": key.generation}, "retire_after": None},
            {"$set": {"retire_after": now + self.retire_grace}},
        )
        self._jwks = None
        return key

    async def jwks(self, now: datetime, *, fresh: bool = False) -> dict[str, Any]:
        """Public keys only: the private PEM never leaves this module.

        Cached for a few seconds: the endpoint is public and must not cost a query per hit.
        """
        if not fresh and self._jwks is not None and time.monotonic() - self._jwks[0] < _JWKS_CACHE:
            return self._jwks[1]
        cursor = self.collection.find(
            {"$or": [{"retire_after": None}, {"retire_after": {"$gt": now}}]},
            projection={"public_jwk": 1, "generation": 1},
        ).sort([("generation", DESCENDING)])
        document = {"keys": [doc["public_jwk"] async for doc in cursor]}
        if document["keys"]:  # never keep "no keys yet" from before the first key existed
            self._jwks = (time.monotonic(), document)
        return document
