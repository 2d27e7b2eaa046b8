"""Creating, reading, listing, changing and deleting tasks, and removing a user's tasks.

`expected` is the set of versions an `If-Match` header accepts (None: the client asked
for no precondition). A missing task and another user's task are the same `TaskNotFound`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from taskmesh_common.errors import Forbidden

from tasks_service.adapters.idempotency import IdempotencyKeys, IdempotencyRecord
from tasks_service.adapters.removed_owners import RemovedOwners
from tasks_service.adapters.repository import TaskRepository
from tasks_service.domain.errors import (
    IdempotencyKeyGone,
    IdempotencyKeyReused,
    OwnerRemoved,
    TaskNotFound,
    VersionConflict,
)
from tasks_service.domain.listing import (
    SortOrder,
    TaskFilter,
    decode_cursor,
    encode_cursor,
    sort_values,
)
from tasks_service.domain.model import Priority, Task, apply_changes, new_task, utcnow

__all__ = ["Draft", "Page", "Tasks"]

# Without If-Match a lost race is retried on the fresh state; bounded so a hot task
# cannot keep a request spinning.
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Draft:
    """What a client asks to create."""

    title: str
    description: str = ""
    priority: Priority = Priority.MEDIUM
    due_date: datetime | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    tasks: list[Task]
    next_cursor: str | None


def _content_hash(task: Task) -> str:
    """What a retry must repeat: the new task's content, normalised (not its id or times)."""
    data = task.event_data()
    content = {name: data[name] for name in ("title", "priority", "due_date", "tags")}
    content["description"] = task.description
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class Tasks:
    def __init__(
        self,
        repo: TaskRepository,
        keys: IdempotencyKeys,
        removed: RemovedOwners,
        *,
        key_lifetime: timedelta,
    ) -> None:
        self.repo = repo
        self.keys = keys
        self.removed = removed
        self.key_lifetime = key_lifetime
        self._sweeps: set[asyncio.Task[None]] = set()

    async def create(
        self,
        owner_id: str,
        draft: Draft,
        idempotency_key: str | None = None,
        *,
        confirm_owner: bool = False,
    ) -> tuple[Task, bool]:
        """The task and whether this call inserted it (False: a replay of the same key).

        `confirm_owner`: when the token's revocation could not be checked, the owner's
        removal mark is checked after the insert: an owner whose account was deleted gets
        no task (see adapters/removed_owners.py)."""
        saved, created = await self._create(owner_id, draft, idempotency_key)
        if confirm_owner and await self.removed.contains(owner_id):
            await self.repo.remove_owner(owner_id, utcnow())
            raise OwnerRemoved()
        return saved, created

    async def _create(
        self, owner_id: str, draft: Draft, idempotency_key: str | None
    ) -> tuple[Task, bool]:
        task = new_task(owner_id=owner_id, **dataclasses.asdict(draft))
        if idempotency_key is None:
            if not await self.repo.add(task):
                raise RuntimeError(f"task id {task.id} is taken")
            return task, True
        request_hash = _content_hash(task)
        record = await self.keys.claim(
            owner_id,
            idempotency_key,
            task_id=task.id,
            request_hash=request_hash,
            expires_at=task.created_at + self.key_lifetime,
        )
        if record is None:
            return await self._insert_or_read(task)
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused()
        return await self._replay(record, task)

    async def _replay(self, record: IdempotencyRecord, task: Task) -> tuple[Task, bool]:
        found = await self.repo.get_any(record.task_id)
        if found is None:
            if record.task_deleted:
                raise IdempotencyKeyGone()
            # The request that claimed the key has not inserted its task: it is still
            # running, or it died. Insert this one under the claimed id; the first insert wins.
            return await self._insert_or_read(dataclasses.replace(task, id=record.task_id))
        saved, deleted = found
        if deleted:
            raise IdempotencyKeyGone()
        return saved, False

    async def _insert_or_read(self, task: Task) -> tuple[Task, bool]:
        if await self.repo.add(task):
            return task, True
        found = await self.repo.get_any(task.id)
        if found is None or found[1]:
            raise IdempotencyKeyGone()
        return found[0], False

    async def get(self, task_id: str, user_id: str, *, is_admin: bool = False) -> Task:
        """A live task of the caller's; admins read anyone's."""
        task = await self.repo.get(task_id, None if is_admin else user_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def list(
        self,
        flt: TaskFilter,
        order: SortOrder,
        limit: int,
        cursor: str | None,
        user_id: str,
        *,
        is_admin: bool = False,
    ) -> Page:
        """One page of `flt` in `order`, after the task `cursor` names (InvalidCursor if bad).

        Only admins list another user's tasks; for anyone else that is a 403, which reveals
        nothing about that user.
        """
        if flt.owner_id != user_id and not is_admin:
            raise Forbidden("Only admins may list another user's tasks")
        after = None if cursor is None else decode_cursor(cursor, order)
        tasks, more = await self.repo.list(flt, order, limit, after)
        next_cursor = encode_cursor(order, sort_values(tasks[-1], order)) if more else None
        return Page(tasks, next_cursor)

    async def update(
        self,
        task_id: str,
        owner_id: str,
        changes: Mapping[str, Any],
        expected: Set[int] | None = None,
    ) -> Task:
        """Apply a partial update; of racing writers with the same If-Match exactly one wins.

        The current task is read first because the new state and its event follow from it;
        the write is then conditional on that version. A lost race reads once more, which
        tells a deleted task (404) from a moved version (412, or a retry without If-Match).
        """
        for _ in range(_ATTEMPTS):
            current = await self.get(task_id, owner_id)
            if expected is not None and current.version not in expected:
                raise VersionConflict(task_id, current.version)
            result = apply_changes(current, changes)
            if result is None:
                return current
            after, event = result
            if await self.repo.replace(current, after, event):
                return after
        raise VersionConflict(task_id)

    async def delete(self, task_id: str, owner_id: str, expected: Set[int] | None) -> None:
        """Tombstone the caller's task; with one If-Match version, in a single write."""
        await self.keys.task_deleting(task_id, owner_id)
        now = utcnow()
        if expected is not None and len(expected) == 1:
            (version,) = expected
            if await self.repo.delete(task_id, owner_id, version, now):
                return
            current = await self.get(task_id, owner_id)  # 404 when gone or not the caller's
            raise VersionConflict(task_id, current.version)
        for _ in range(_ATTEMPTS):
            current = await self.get(task_id, owner_id)
            if expected is not None and current.version not in expected:
                raise VersionConflict(task_id, current.version)
            if await self.repo.delete(task_id, owner_id, current.version, now):
                return
        raise VersionConflict(task_id)

    def remove_owner_again_later(self, owner_id: str, delay: float) -> None:
        """One more removal after `delay` seconds, in the background: a create that passed
        its revocation check just before auth revoked the token may land after the first
        removal; requests are bounded in time, so a later sweep finds it."""

        async def later() -> None:
            await asyncio.sleep(delay)
            await self.repo.remove_owner(owner_id, utcnow())

        sweep = asyncio.create_task(later(), name=f"remove-owner-again-{owner_id}")
        self._sweeps.add(sweep)
        sweep.add_done_callback(self._sweeps.discard)

    async def close(self) -> None:
        for sweep in list(self._sweeps):
            sweep.cancel()
        await asyncio.gather(*self._sweeps, return_exceptions=True)

    async def remove_owner(self, owner_id: str) -> None:
        """Every task of a deleted user goes (idempotent: a second call finds nothing).
        Marked first, so a create racing this sees the mark or has its task removed here."""
        await self.removed.mark(owner_id, utcnow())
        await self.keys.owner_deleting(owner_id)
        await self.repo.remove_owner(owner_id, utcnow())
