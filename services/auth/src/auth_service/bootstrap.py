"""Start-up work of an auth replica (indexes, the first signing key, the bootstrap admin),
run in the background of the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure
from taskmesh_common.mongo import Document, ensure_indexes_forever
from taskmesh_common.security import TokenVerifier

from auth_service.adapters.key_wrapping import KeyEncryptionError
from auth_service.adapters.refresh_tokens import (
    REFRESH_TOKEN_INDEXES,
    RETIRED_REFRESH_TOKEN_INDEXES,
)
from auth_service.adapters.signing_keys import SIGNING_KEY_INDEXES, KeyStore
from auth_service.adapters.users import USER_INDEXES
from auth_service.config import Settings
from auth_service.service_layer.accounts import Accounts
from auth_service.service_layer.clock import utcnow

__all__ = [
    "INDEXES",
    "RETIRED_INDEXES",
    "build_verifier",
    "check_signing_keys",
    "drop_indexes",
    "prepare_indexes_forever",
    "start_up_forever",
]

logger = logging.getLogger("auth.bootstrap")
INDEX_NOT_FOUND = 27

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    "users": USER_INDEXES,
    "refresh_tokens": REFRESH_TOKEN_INDEXES,
    "signing_keys": SIGNING_KEY_INDEXES,
}
# Indexes that conflict with the ones above where a database still has them.
RETIRED_INDEXES: Mapping[str, Sequence[str]] = {"refresh_tokens": RETIRED_REFRESH_TOKEN_INDEXES}


def build_verifier(settings: Settings, keys: KeyStore) -> TokenVerifier:
    """Auth verifies its own tokens with the shared verifier, reading keys from its database
    instead of over HTTP (fresh: an unknown kid may be a rotation by another replica)."""

    async def source() -> dict[str, object]:
        return await keys.jwks(utcnow(), fresh=True)

    return TokenVerifier(
        source,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway=settings.jwt_leeway_seconds,
        cache_seconds=settings.signing_key_reload_seconds,
        # Our own database, not a neighbour over HTTP: an unknown kid (a rotation, maybe by
        # another replica) costs one small indexed query, no more than any other request.
        refresh_cooldown=0.0,
        verified_cache_size=settings.jwt_verified_cache_size,
    )


async def check_signing_keys(keys: KeyStore, *, timeout: float) -> None:
    """Seal keys still stored as plaintext and open the newest, before serving.

    ``KeyEncryptionError`` (the key encryption key is missing or another one) propagates:
    the replica refuses to start, naming the setting. With MongoDB away this gives up after
    ``timeout`` and start-up goes on; the background start-up work checks again.
    """
    try:
        sealed = await asyncio.wait_for(keys.seal_and_check(), timeout)
    except KeyEncryptionError as exc:
        # One plain line before uvicorn's traceback: what to fix.
        logger.critical("auth cannot open its signing keys", extra={"error": str(exc)})
        raise
    except Exception as exc:
        logger.warning("signing keys not checked yet", extra={"error": str(exc)})
        return
    if sealed:
        logger.warning("sealed signing keys stored unencrypted", extra={"count": sealed})


async def start_up_forever(
    settings: Settings, indexes_ready: asyncio.Event, keys: KeyStore, accounts: Accounts
) -> None:
    """Create the first signing key and, while no admin exists, the bootstrap admin; retry
    while MongoDB is away."""
    await indexes_ready.wait()
    delay = 0.2
    while True:
        try:
            await keys.seal_and_check()
            await keys.ensure_key(utcnow())
            password = settings.bootstrap_admin_password
            if settings.bootstrap_admin_email and password is not None:
                await accounts.create_first_admin(
                    settings.bootstrap_admin_email, password.get_secret_value()
                )
        except KeyEncryptionError as exc:
            # Retrying cannot help: the settings must change. /readyz stays 503 meanwhile.
            logger.error("signing keys cannot be opened", extra={"error": str(exc)})
            return
        except Exception as exc:
            logger.warning("start-up work failed, retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        else:
            return


async def prepare_indexes_forever(db: AsyncDatabase[Document], ready: asyncio.Event) -> None:
    """Drop the retired indexes, then create the current ones and set `ready`; both retry
    while MongoDB is away, so a replica starts (503 on /readyz) and catches up."""
    delay = 0.2
    while True:
        try:
            await drop_indexes(db, RETIRED_INDEXES)
        except Exception as exc:
            logger.warning("dropping retired indexes failed, retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        else:
            break
    await ensure_indexes_forever(db, INDEXES, ready)


async def drop_indexes(db: AsyncDatabase[Document], names: Mapping[str, Sequence[str]]) -> None:
    """Drop these indexes where they exist; idempotent, and safe for replicas racing."""
    for collection, wanted in names.items():
        existing = {index["name"] async for index in await db[collection].list_indexes()}
        for name in set(wanted) & existing:
            try:
                await db[collection].drop_index(name)
            except OperationFailure as exc:
                if exc.code != INDEX_NOT_FOUND:  # another replica dropped it first
                    raise
