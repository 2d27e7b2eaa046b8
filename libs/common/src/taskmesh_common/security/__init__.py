"""Access tokens, verified the same way at the gateway and again in every service.

verifier = TokenVerifier.from_settings(settings)      # in the lifespan
app.state.verifier = verifier
...
async def route(principal: CurrentPrincipal) -> ...   # 401 problem+json without a valid token
async def write_route(principal: LivePrincipal) -> ...  # and 401 if the token was revoked
async def admin_route(principal: AdminPrincipal) -> ...  # and 403 unless role == "admin"
app.state.revocations = RevocationCheck(redis, prefix=settings.redis_prefix)  # for both
"""

from taskmesh_common.security.dependencies import (
    AdminPrincipal,
    CurrentPrincipal,
    LivePrincipal,
    MissingToken,
    admin_principal,
    current_principal,
    live_principal,
)
from taskmesh_common.security.jwks import HttpJwksSource, JwksSource, parse_jwks
from taskmesh_common.security.principal import ADMIN_ROLE, USER_ROLE, Principal
from taskmesh_common.security.revocation import RevocationCheck, Revoked, Revoker
from taskmesh_common.security.verifier import REQUIRED_CLAIMS, TokenVerifier

__all__ = [
    "ADMIN_ROLE",
    "REQUIRED_CLAIMS",
    "USER_ROLE",
    "AdminPrincipal",
    "CurrentPrincipal",
    "HttpJwksSource",
    "JwksSource",
    "LivePrincipal",
    "MissingToken",
    "Principal",
    "RevocationCheck",
    "Revoked",
    "Revoker",
    "TokenVerifier",
    "admin_principal",
    "current_principal",
    "live_principal",
    "parse_jwks",
]
