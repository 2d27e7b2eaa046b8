"""What one analytics event costs the MongoDB-protocol server, by how many tasks its user has.

The pipeline runs give each writer a few hundred tasks; a user with thousands must not make
each of their events dearer (FerretDB reads and rewrites a whole document per update). This
runs analytics' own projector (``Projector.apply``, as its consumer does, here in the bench's
process) on a throwaway database of the bench's FerretDB. For each size one user first gets
that many tasks (created 50 at a time), then: ``updates`` of its oldest tasks one at a time
(a steady state: a batch per event) and ``batches`` batches of ten new tasks at once. It
reads FerretDB's CPU (``/proc``) around each part, per event; ``growth`` is the largest
size's cost over the smallest's (1.0: the cost does not grow with the user).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from typing import Any

from analytics_service.adapters.store import ProjectionStore
from analytics_service.handlers import Projector
from taskmesh_common.events import Envelope
from taskmesh_common.mongo import create_mongo_client

from bench import stack
from bench.relay_probe import created_entry

__all__ = ["user_size_costs"]


def _event(task_id: str, owner: str, *, done: bool = False) -> Envelope:
    return Envelope.from_entry(created_entry(task_id, owner, version=2 if done else 1, done=done))


async def _measured(
    ferretdb_pid: int, events: int, work: Awaitable[Any]
) -> tuple[float | None, float]:
    """FerretDB's CPU ms and the wall ms per event of awaiting ``work``."""
    cpu_before, began = stack.cpu_seconds(ferretdb_pid), time.perf_counter()
    await work
    cpu_after, wall = stack.cpu_seconds(ferretdb_pid), time.perf_counter() - began
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return (None if cpu is None else round(cpu * 1000 / events, 2)), round(wall * 1000 / events, 2)


async def _one_at_a_time(projector: Projector, owner: str, tasks: list[str]) -> None:
    for task_id in tasks:
        await projector.apply(_event(task_id, owner, done=True))


async def _at_once(projector: Projector, owner: str, tasks: list[str]) -> None:
    """New tasks, their events in flight together: analytics writes them as one batch."""
    await asyncio.gather(*(projector.apply(_event(task_id, owner)) for task_id in tasks))


async def _in_turn(projector: Projector, owner: str, groups: list[list[str]]) -> None:
    for tasks in groups:
        await _at_once(projector, owner, tasks)


async def user_size_costs(
    mongo_url: str, ferretdb_pid: int, *, sizes: list[int], updates: int = 40, batches: int = 10
) -> dict[str, Any]:
    client = create_mongo_client(mongo_url, max_writes=1)
    db = client[f"bench_user_size_{uuid.uuid4().hex[:8]}"]
    projector = Projector(ProjectionStore(db))
    rows: list[dict[str, Any]] = []
    try:
        for size in sizes:
            owner = str(uuid.uuid4())
            tasks = [str(uuid.uuid4()) for _ in range(max(size, updates))]
            for start in range(0, len(tasks), 50):
                await _at_once(projector, owner, tasks[start : start + 50])
            update_cpu, update_wall = await _measured(
                ferretdb_pid, updates, _one_at_a_time(projector, owner, tasks[:updates])
            )
            tens = [[str(uuid.uuid4()) for _ in range(10)] for _ in range(batches)]
            batch_cpu, batch_wall = await _measured(
                ferretdb_pid, batches * 10, _in_turn(projector, owner, tens)
            )
            rows.append(
                {
                    "tasks": len(tasks),
                    "one_at_a_time_ferretdb_ms": update_cpu,
                    "one_at_a_time_wall_ms": update_wall,
                    "in_tens_ferretdb_ms": batch_cpu,
                    "in_tens_wall_ms": batch_wall,
                }
            )
    finally:
        await client.drop_database(db.name)
        await client.close()

    def growth(key: str) -> float | None:
        first, last = rows[0][key], rows[-1][key]
        return round(last / first, 2) if first and last is not None else None

    return {
        "sizes": rows,
        "growth_one_at_a_time": growth("one_at_a_time_ferretdb_ms"),
        "growth_in_tens": growth("in_tens_ferretdb_ms"),
    }
