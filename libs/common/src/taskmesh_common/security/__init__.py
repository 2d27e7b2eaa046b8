"""Access tokens, verified the same way at the gateway and again in every service.

verifier = TokenVerifier.from_settings(settings)      # in the lifespan
app.state.verifier = verifier
...
async def route(principal: CurrentPrincipal) -> ...   # 401 problem+json without a valid token
async def admin_route(principal: AdminPrincipal) -> ...  # and 403 unless role == "admin"
"""

from taskmesh_common.security.dependencies import (
    AdminPrincipal,
    CurrentPrincipal,
    MissingToken,
    admin_principal,
    current_principal,
)
from taskmesh_common.security.jwks import HttpJwksSource, JwksSource, parse_jwks
from taskmesh_common.security.principal import ADMIN_ROLE, USER_ROLE, Principal
from taskmesh_common.security.verifier import REQUIRED_CLAIMS, TokenVerifier

__all__ = [
    "ADMIN_ROLE",
    "REQUIRED_CLAIMS",
    "USER_ROLE",
    "AdminPrincipal",
    "CurrentPrincipal",
    "HttpJwksSource",
    "JwksSource",
    "MissingToken",
    "Principal",
    "TokenVerifier",
    "admin_principal",
    "current_principal",
    "parse_jwks",
]
