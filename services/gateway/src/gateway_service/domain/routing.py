"""Which upstream serves a public path, and which paths need no token.

Kept as plain data so the contract tests can hold it against the services' OpenAPI.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AUTH_POLICY_PATHS",
    "BREAKER_GROUPS",
    "CREDENTIALS_GROUP",
    "PUBLIC_PATHS",
    "ROUTES",
    "Upstream",
    "breaker_group",
    "is_public",
    "route_template",
    "upstream_for",
]

Upstream = Literal["auth", "tasks", "analytics"]

# (prefix, exact?) → upstream. An exact entry matches that path only; a prefix entry matches
# the path itself and everything below it, never a sibling (`/api/v1/tasksx` is unknown).
ROUTES: tuple[tuple[str, Upstream], ...] = (
    ("/api/v1/auth", "auth"),
    ("/api/v1/tasks", "tasks"),
    ("/api/v1/analytics", "analytics"),
    ("/.well-known/jwks.json", "auth"),
)

# Proxied paths that need no bearer token (the gateway's own docs, health and metrics are
# not proxied and are public too).
PUBLIC_PATHS = frozenset(
    {
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        # The browser console's session: its refresh cookie is the credential.
        "/api/v1/auth/session/login",
        "/api/v1/auth/session/refresh",
        "/api/v1/auth/session/logout",
        "/api/v1/auth/.well-known/jwks.json",
        "/.well-known/jwks.json",
    }
)

# Paths limited per client address by the strict "auth" policy (credential guessing).
AUTH_POLICY_PATHS = frozenset(
    {"/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/session/login"}
)


# Breaker groups: one upstream's routes whose overload must not shut another's. Login and
# register hash passwords and are the first to be overloaded; refresh, `me`, JWKS and admin
# hash nothing and must keep working meanwhile.
CREDENTIALS_GROUP = "auth-credentials"
BREAKER_GROUPS: dict[str, Upstream] = {
    "auth": "auth",
    CREDENTIALS_GROUP: "auth",
    "tasks": "tasks",
    "analytics": "analytics",
}


def breaker_group(upstream: Upstream, path: str) -> str:
    """The breaker that guards `path` (raw, without query) on `upstream`."""
    if upstream == "auth" and path.rstrip("/") in AUTH_POLICY_PATHS:
        return CREDENTIALS_GROUP
    return upstream


def _route(path: str) -> tuple[str, Upstream] | None:
    """The (prefix, upstream) entry of ROUTES that serves `path`."""
    for prefix, upstream in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix, upstream
    return None


def upstream_for(path: str) -> Upstream | None:
    route = _route(path)
    return route[1] if route else None


def is_public(path: str) -> bool:
    # A trailing slash must not turn a protected path public or the reverse.
    return path.rstrip("/") in PUBLIC_PATHS


def route_template(path: str) -> str | None:
    """The template a proxied path is counted and traced under: the prefix itself (a
    collection: `GET /api/v1/tasks` lists, `POST` creates), or the prefix + "/{path}" for
    anything below it (`/api/v1/tasks/{path}`: one task, or an action on it)."""
    route = _route(path)
    if route is None:
        return None
    prefix = route[0]
    return prefix if path == prefix else prefix + "/{path}"
