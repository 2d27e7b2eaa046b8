"""Names unique per test, so tests never see each other's data and need no cleanup order."""

from __future__ import annotations

import secrets

__all__ = ["random_email", "unique_name"]


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(5)}"


def random_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(6)}@example.com"
