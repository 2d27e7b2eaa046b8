"""Rebuilding every projection from the service's own stored events.

`python -m analytics_service rebuild`: replays the `events` collection, in stored order and
through the same version-guarded handlers, into a fresh generation of task facts; switches
readers and consumers to it; then replays what was stored meanwhile (handlers are idempotent, so
replaying more than needed is harmless) and drops the previous generation.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.mongo import Document

from analytics_service.adapters.generations import Generation
from analytics_service.adapters.store import ProjectionStore
from analytics_service.service_layer.handlers import Projector

__all__ = ["RebuildReport", "rebuild_projections"]

logger = logging.getLogger("analytics.rebuild")

# Stored-at clocks of replicas may differ a little; catch-up starts this much earlier.
_CLOCK_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True)
class RebuildReport:
    generation: str
    previous_generation: str
    replayed: int
    caught_up: int
    seconds: float


async def _replay(
    projector: Projector, store: ProjectionStore, since: datetime | None, concurrency: int
) -> int:
    """Apply stored events with up to `concurrency` in flight.

    Order does not change the result (version guards, tombstones, deleted-user markers), so
    events may overlap, and events of one user in flight together are written as one batch.
    """
    slots = asyncio.Semaphore(concurrency)
    pending: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []
    count = 0

    async def apply(stored: dict[str, object]) -> None:
        try:
            await projector.apply_stored(stored)
        except Exception as exc:
            failures.append(exc)
        finally:
            slots.release()

    async for stored in store.events.replay(since):
        await slots.acquire()
        task = asyncio.create_task(apply(stored))
        pending.add(task)
        task.add_done_callback(pending.discard)
        count += 1
    await asyncio.gather(*pending)
    if failures:
        # A rebuild that could not apply every event must not switch readers to it.
        raise RuntimeError(f"{len(failures)} stored events could not be replayed") from failures[0]
    return count


async def rebuild_projections(
    db: AsyncDatabase[Document], *, settle_seconds: float | None = None, concurrency: int = 16
) -> RebuildReport:
    """Rebuild every projection and swap the new generation in.

    `settle_seconds` (default: a little more than the pointer cache) is how long running
    replicas get to notice the switch before the catch-up replay.
    """
    started_clock = time.perf_counter()
    started = datetime.now(UTC)
    store = ProjectionStore(db)
    previous = await store.current()
    target = Generation.of(db, f"_{secrets.token_hex(4)}")
    await target.create_indexes()
    replay = Projector(store, generation=target, record=False)

    try:
        replayed = await _replay(replay, store, None, concurrency)
    except BaseException:
        await target.drop(db)
        raise
    await store.pointer.switch_to(target)
    await asyncio.sleep(
        store.pointer.cache_seconds + 1.0 if settle_seconds is None else settle_seconds
    )
    # Events that live consumers wrote to the previous generation while we replayed.
    caught_up = await _replay(replay, store, started - _CLOCK_MARGIN, concurrency)
    await previous.drop(db)
    report = RebuildReport(
        generation=target.suffix,
        previous_generation=previous.suffix,
        replayed=replayed,
        caught_up=caught_up,
        seconds=round(time.perf_counter() - started_clock, 3),
    )
    logger.info("projections rebuilt", extra={"report": report.__dict__})
    return report
