"""Accounts: registration, the caller's own account, admin changes, the bootstrap admin."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from taskmesh_common.events import outbox_entry
from taskmesh_common.mongo import Document
from taskmesh_common.security import Revoker

from auth_service.adapters.refresh_tokens import RefreshTokenRepository
from auth_service.adapters.users import UserRepository, decode_cursor, encode_cursor
from auth_service.domain.errors import (
    AccountUnavailable,
    ChangeNotAllowed,
    EmailTaken,
    InvalidCursor,
    UserNotFound,
)
from auth_service.domain.model import Role, User, epoch_ms, new_user_id, normalise_email
from auth_service.service_layer.clock import utcnow
from auth_service.service_layer.hashing import Hashing

__all__ = ["Accounts"]

logger = logging.getLogger("auth.accounts")
SOURCE = "taskmesh/auth"


def _registered(user: User) -> Document:
    data = {
        "user_id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "created_at": user.created_at,
    }
    return outbox_entry("user.registered", user.id, data, source=SOURCE, time=user.created_at)


class Accounts:
    def __init__(
        self,
        *,
        users: UserRepository,
        refresh_tokens: RefreshTokenRepository,
        hashing: Hashing,
        revoker: Revoker,
        on_events: Callable[[str], None] = lambda _: None,
    ) -> None:
        # Called with the user's id after a write that left events in its outbox: wakes
        # the outbox relay (`OutboxRelay.wrote`).
        self.on_events = on_events
        self.users = users
        self.refresh_tokens = refresh_tokens
        self.hashing = hashing
        self.revoker = revoker

    async def _revoke_access(self, user_id: str) -> None:
        await self.revoker.revoke_user(user_id, epoch_ms(utcnow()))

    async def register(
        self, email: str, password: str, display_name: str | None, role: Role = "user"
    ) -> User:
        email = normalise_email(email)
        self.hashing.refuse_if_full()
        # A cheap early answer for the common duplicate; the unique index is the real guard.
        if await self.users.by_email(email) is not None:
            raise EmailTaken()
        user = User(
            id=new_user_id(),
            email=email,
            display_name=display_name,
            role=role,
            disabled=False,
            created_at=utcnow(),
            password_hash=await self.hashing.hash(password),
        )
        await self.users.add(user, [_registered(user)])
        self.on_events(user.id)
        return user

    async def live_user(self, user_id: str) -> User:
        """The caller's account; deleted accounts are gone even while their tokens live."""
        user = await self.users.by_id(user_id)
        if user is None:
            raise AccountUnavailable("This account no longer exists")
        return user

    async def delete(self, user_id: str) -> None:
        """Tombstone the account and end its access. Revoked before (when Redis is away this
        fails, 503, with nothing changed) and again after, past any sign-in racing it."""
        await self._revoke_access(user_id)
        now = utcnow()
        event = outbox_entry(
            "user.deleted",
            user_id,
            {"user_id": user_id, "deleted_at": now},
            source=SOURCE,
            time=now,
        )
        if not await self.users.tombstone(user_id, event, now):
            raise AccountUnavailable("This account no longer exists")
        self.on_events(user_id)
        # Refresh also checks that the account lives, so a failure here cannot revive it.
        await self.refresh_tokens.revoke_user(user_id)
        await self._revoke_access(user_id)

    async def page(self, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
        try:
            after = decode_cursor(cursor) if cursor else None
        except ValueError:
            raise InvalidCursor() from None
        users = await self.users.page(limit + 1, after)
        more = len(users) > limit
        users = users[:limit]
        return users, (encode_cursor(users[-1]) if more and users else None)

    async def change(
        self, actor_id: str, user_id: str, *, role: Role | None, disabled: bool | None
    ) -> User:
        if actor_id == user_id:
            # An admin locking themselves out could leave nobody able to undo it.
            raise ChangeNotAllowed("Admins cannot change their own role or disable themselves")
        for _ in range(3):  # optimistic: retry if the user changed between read and write
            current = await self.users.by_id(user_id)
            if current is None:
                raise UserNotFound()
            changes, events = _changes(current, role, disabled, utcnow())
            # Access tokens carry the role: after a change (or a retry of one whose
            # revocation failed) they all end, and a refresh brings the new role.
            if not changes:
                await self._revoke_access(user_id)
                return current
            updated = await self.users.change(current, changes, events, utcnow())
            if updated is not None:
                self.on_events(user_id)
                if updated.disabled:
                    await self.refresh_tokens.revoke_user(user_id)
                await self._revoke_access(user_id)
                return updated
        raise ChangeNotAllowed("The user changed concurrently; try again")

    async def create_first_admin(self, email: str, password: str) -> User | None:
        """Create the bootstrap admin if no admin exists at all; None when it is not created.

        It never touches an existing account: an address already registered (by anyone, for
        any role) is left as it is, and nothing is promoted or re-enabled. Replicas racing
        here create at most one account between them (the email and the bootstrap marker are
        unique), so a concurrent loser just finds its insert refused.
        """
        if await self.users.any_admin():
            return None
        user = User(
            id=new_user_id(),
            email=normalise_email(email),
            display_name="Administrator",
            role="admin",
            disabled=False,
            created_at=utcnow(),
            password_hash=await self.hashing.hash(password),
        )
        try:
            await self.users.add(user, [_registered(user)], bootstrap_admin=True)
        except EmailTaken:
            logger.warning(
                "bootstrap admin not created: its address is taken or another replica "
                "created it; no existing account is changed"
            )
            return None
        self.on_events(user.id)
        logger.info("bootstrap admin created")
        return user


def _changes(
    user: User, role: Role | None, disabled: bool | None, now: datetime
) -> tuple[Document, list[Document]]:
    changes: Document = {}
    events: list[Document] = []
    if role is not None and role != user.role:
        changes["role"] = role
        data = {"user_id": user.id, "role": role, "previous_role": user.role, "changed_at": now}
        events.append(outbox_entry("user.role_changed", user.id, data, source=SOURCE, time=now))
    if disabled is not None and disabled != user.disabled:
        changes["disabled"] = disabled
        data = {"user_id": user.id, "disabled": disabled, "changed_at": now}
        events.append(outbox_entry("user.disabled", user.id, data, source=SOURCE, time=now))
    return changes, events
