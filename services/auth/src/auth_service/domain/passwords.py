"""Argon2id password hashing, with a dummy hash for constant-ish time on unknown emails."""

from __future__ import annotations

import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Passwords"]


class Passwords:
    """Hash and verify passwords; CPU-bound, so callers run it off the event loop."""

    def __init__(
        self, *, time_cost: int = 2, memory_kib: int = 19 * 1024, parallelism: int = 1
    ) -> None:
        # argon2-cffi's PasswordHasher is Argon2id; the defaults are OWASP's minimum, the
        # settings' defaults (auth_service.config).
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified when the email is unknown, so that answer takes as long as a wrong password.
        began = time.perf_counter()
        self._dummy_hash = self._hasher.hash("taskmesh-dummy-password")
        # One hash timed on a quiet machine: the first estimate for admission control.
        self.measured_seconds = time.perf_counter() - began

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; always spends one Argon2 verification."""
        try:
            self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """The hash was made with other parameters than today's: re-hash after a good login."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True
