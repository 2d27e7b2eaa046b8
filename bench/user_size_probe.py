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
from datetime import UTC, datetime
from typing import Any

from analytics_service.adapters.store import ProjectionStore
from analytics_service.handlers import Projector
from taskmesh_common.events import Envelope, outbox_entry
from taskmesh_common.mongo import create_mongo_client

from bench import stack

__all__ = ["user_size_costs"]


def _state(task_id: str, owner: str, version: int, status: str) -> Envelope:
    now = datetime.now(UTC)
    data = {
        "task_id": task_id, "owner_id": owner, "version": version, "title": "probe",
        "status": status, "priority": "medium", "due_date": None, "tags": ["bench"],
        "created_at": now, "updated_at": now, "completed_at": now if status == "done" else None,
    }  # fmt: skip
    kind = "task.completed" if status == "done" else "task.created"
    return Envelope.from_entry(outbox_entry(kind, task_id, data, source="tasks"))


async def _measured(ferretdb_pid: int, events: int, work: Any) -> tuple[float | None, float]:
    """FerretDB's CPU ms and the wall ms per event of ``work()``."""
    cpu_before, began = stack.cpu_seconds(ferretdb_pid), time.perf_counter()
    await work()
    cpu_after, wall = stack.cpu_seconds(ferretdb_pid), time.perf_counter() - began
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return (None if cpu is None else round(cpu * 1000 / events, 2)), round(wall * 1000 / events, 2)


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
                await asyncio.gather(
                    *(
                        projector.apply(_state(t, owner, 1, "todo"))
                        for t in tasks[start : start + 50]
                    )
                )

            async def one_at_a_time(tasks: list[str] = tasks, owner: str = owner) -> None:
                for task_id in tasks[:updates]:
                    await projector.apply(_state(task_id, owner, 2, "done"))

            async def in_tens(owner: str = owner) -> None:
                for _ in range(batches):
                    new = [_state(str(uuid.uuid4()), owner, 1, "todo") for _ in range(10)]
                    await asyncio.gather(*(projector.apply(envelope) for envelope in new))

            update_cpu, update_wall = await _measured(ferretdb_pid, updates, one_at_a_time)
            batch_cpu, batch_wall = await _measured(ferretdb_pid, batches * 10, in_tens)
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
