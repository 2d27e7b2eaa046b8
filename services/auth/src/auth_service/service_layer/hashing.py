"""Argon2 off the event loop, a few at a time."""

from __future__ import annotations

import asyncio

from auth_service.domain.passwords import Passwords

__all__ = ["Hashing"]


class Hashing:
    """Each Argon2 call takes tens of milliseconds and its memory cost in RAM: run it in a
    thread so the loop keeps serving, and bound the concurrency so a burst cannot exhaust RAM."""

    def __init__(self, passwords: Passwords, concurrency: int) -> None:
        self.passwords = passwords
        self._slots = asyncio.Semaphore(concurrency)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.passwords.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self.passwords.verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.passwords.needs_rehash(password_hash)
