"""Tasks and users written straight into the services' databases, for the data-size scenario.

A hundred thousand tasks through the API would take minutes of the run (and argon2 makes a
thousand registrations take as long); ``insert_many`` writes them in seconds. The documents
have the shape the services write: ``task_document`` mirrors the tasks service's repository
(``services/tasks/.../adapters/repository.py``), ``user_document`` the auth service's, so the
services read seeded documents as their own. Their outboxes are empty: seeded tasks are
already published, as the relay leaves a document once it has caught up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.events import OUTBOX_FIELD
from tasks_service.domain.listing import NO_DUE_DATE
from tasks_service.domain.model import Priority, Status, to_millis

__all__ = ["seed_data", "task_document", "user_document"]

BATCH = 1000
IN_FLIGHT = 4
PROGRESS_EVERY = 10_000
SEEDED = "seeded-"  # how a seeded user's email begins
_PRIORITIES = tuple(Priority)
_STATUSES = tuple(Status)

Document = dict[str, Any]


def task_document(owner_id: str, n: int, now: datetime) -> Document:
    """Task number ``n`` of ``owner_id``, as the tasks service stores a task nobody changed
    since its events were published. This is the one place the bench knows that shape."""
    task_id = str(uuid.uuid4())
    priority = _PRIORITIES[n % len(_PRIORITIES)]
    status = _STATUSES[n % len(_STATUSES)]
    due = to_millis(now + timedelta(days=n % 30)) if n % 4 else None
    created = to_millis(now - timedelta(seconds=n))
    return {
        "_id": task_id,
        "owner_id": owner_id,
        "title": f"seeded task {n}",
        "description": "",
        "status": status.value,
        "priority": priority.value,
        "priority_rank": priority.rank,
        "due_date": due,
        "due_sort": due or NO_DUE_DATE,
        "tags": ["seed", f"t{n % 10}"],
        "version": 1,
        "created_at": created,
        "updated_at": created,
        "completed_at": created if status is Status.DONE else None,
        OUTBOX_FIELD: [],
    }


def user_document(email: str, now: datetime) -> Document:
    """A user as the auth service stores one, with a password hash no password matches
    (seeded users never log in; only their number matters)."""
    return {
        "_id": str(uuid.uuid4()),
        "email": email,
        "display_name": None,
        "role": "user",
        "disabled": False,
        "password_hash": "seeded-no-password",
        "created_at": now,
        "updated_at": now,
        OUTBOX_FIELD: [],
    }


async def seed_data(
    tasks_db: AsyncDatabase[Document],
    auth_db: AsyncDatabase[Document],
    *,
    total_tasks: int,
    users: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Top the databases up to ``total_tasks`` tasks and ``users`` users (whatever they hold
    already counts), the new tasks spread evenly over the seeded users; ``progress`` hears
    how far it got every 10,000 tasks. Returns what was added."""
    have_users = await auth_db["users"].count_documents({})
    have_tasks = await tasks_db["tasks"].count_documents({})
    now = datetime.now(UTC)
    new_users = [
        user_document(f"{SEEDED}{uuid.uuid4().hex[:12]}@example.com", now)
        for _ in range(max(0, users - have_users))
    ]
    for start in range(0, len(new_users), BATCH):
        await auth_db["users"].insert_many(new_users[start : start + BATCH], ordered=False)
    # Over every seeded user, never over one the bench measures (its data stays its own).
    seeded = auth_db["users"].find({"email": {"$regex": f"^{SEEDED}"}}, {"_id": 1})
    owners = [u["_id"] async for u in seeded] or [str(uuid.uuid4())]
    wanted = max(0, total_tasks - have_tasks)
    # A document costs the engine far more in the tasks indexes than in the insert itself
    # (~40x a collection with `_id` alone), so a few batches go at once.
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    done = 0

    async def insert(start: int) -> None:
        nonlocal done
        batch = [
            task_document(owners[n % len(owners)], n // len(owners), now)
            for n in range(start, min(wanted, start + BATCH))
        ]
        async with in_flight:
            await tasks_db["tasks"].insert_many(batch, ordered=False)
        done += len(batch)
        if progress is not None and done % PROGRESS_EVERY < len(batch):
            progress(f"{done:,} of {wanted:,} tasks written")

    await asyncio.gather(*(insert(start) for start in range(0, wanted, BATCH)))
    return {"users": len(new_users), "tasks": wanted}
