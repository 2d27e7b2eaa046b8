"""Start-up and housekeeping work of an auth replica, run in the background of the lifespan."""

from __future__ import annotations

import asyncio
import logging

from taskmesh_common.security import TokenVerifier

from auth_service.adapters.refresh_tokens import RefreshTokenRepository
from auth_service.adapters.signing_keys import KeyStore
from auth_service.config import Settings
from auth_service.service_layer.accounts import Accounts
from auth_service.service_layer.clock import utcnow

__all__ = ["build_verifier", "clean_up", "run_cleanup_forever", "start_up_forever"]

logger = logging.getLogger("auth.bootstrap")


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


async def start_up_forever(
    settings: Settings, indexes_ready: asyncio.Event, keys: KeyStore, accounts: Accounts
) -> None:
    """Create the first signing key and the bootstrap admin, retrying while MongoDB is away."""
    await indexes_ready.wait()
    delay = 0.2
    while True:
        try:
            await keys.ensure_key(utcnow())
            password = settings.bootstrap_admin_password
            if settings.bootstrap_admin_email and password is not None:
                await accounts.ensure_admin(
                    settings.bootstrap_admin_email, password.get_secret_value()
                )
        except Exception as exc:
            logger.warning("start-up work failed, retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        else:
            return


async def run_cleanup_forever(
    settings: Settings, keys: KeyStore, refresh_tokens: RefreshTokenRepository
) -> None:
    """Delete expired refresh tokens and retired keys (no TTL indexes on FerretDB).

    Every replica runs it; the deletes are idempotent, so replicas need no coordination.
    """
    while True:
        await asyncio.sleep(settings.cleanup_interval_seconds)
        try:
            await clean_up(keys, refresh_tokens)
        except Exception as exc:
            logger.warning("cleanup failed", extra={"error": str(exc)})


async def clean_up(keys: KeyStore, refresh_tokens: RefreshTokenRepository) -> tuple[int, int]:
    """One cleanup pass: (expired refresh tokens, retired signing keys) deleted."""
    now = utcnow()
    tokens = await refresh_tokens.delete_expired(now)
    retired = await keys.delete_retired(now)
    if tokens or retired:
        logger.info("cleanup", extra={"refresh_tokens": tokens, "signing_keys": retired})
    return tokens, retired
