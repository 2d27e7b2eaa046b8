"""Typed dependencies: the service objects the lifespan built, the caller, the client."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from taskmesh_common.errors import Forbidden
from taskmesh_common.security import AdminPrincipal

from auth_service.adapters.signing_keys import KeyStore
from auth_service.domain.model import User
from auth_service.service_layer.accounts import Accounts
from auth_service.service_layer.sessions import Sessions

__all__ = [
    "AccountsDep",
    "ClientAddress",
    "CurrentAdmin",
    "KeysDep",
    "SessionsDep",
    "client_address",
]


async def _accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


async def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


async def _keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


AccountsDep = Annotated[Accounts, Depends(_accounts)]
SessionsDep = Annotated[Sessions, Depends(_sessions)]
KeysDep = Annotated[KeyStore, Depends(_keys)]


async def _current_admin(principal: AdminPrincipal, accounts: AccountsDep) -> User:
    # The token says admin; auth owns the truth and checks it again, so a demoted or
    # disabled admin loses admin powers here at once, not when the token expires.
    user = await accounts.users.by_id(principal.user_id)
    if user is None or user.disabled or user.role != "admin":
        raise Forbidden("This operation requires the admin role")
    return user


CurrentAdmin = Annotated[User, Depends(_current_admin)]


def client_address(request: Request) -> str:
    """The client's address for per-client login limits: the TCP peer, or behind the gateway
    (TASKMESH_TRUSTED_PROXIES) the client it vouches for (taskmesh_common.client_address)."""
    return request.client.host if request.client else "unknown"


async def _client_address(request: Request) -> str:
    # A plain `def` dependency would run in a worker thread: a thread hop per request.
    return client_address(request)


ClientAddress = Annotated[str, Depends(_client_address)]
