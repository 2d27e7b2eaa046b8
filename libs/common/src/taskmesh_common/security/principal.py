"""Who is calling: the verified content of an access token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ADMIN_ROLE", "USER_ROLE", "Principal"]

USER_ROLE = "user"
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Principal:
    """The caller, as proven by a verified access token.

    `user_id` is the token's `sub`, `token_id` its `jti`, `expires_at` its `exp` (UTC);
    `claims` holds every verified claim for the rare caller that needs more.
    """

    user_id: str
    role: str
    token_id: str
    expires_at: datetime
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE
