"""The relay and a producer writing the same documents at once, against the real servers.

On FerretDB 1.24 an update is a read-then-replace outside a transaction (FerretDB#3040):
the relay's batched pull of published entries, landing over a producer's concurrent
write, puts the old document back, losing the write and its new outbox entry. With
``locks`` the relay pulls per document under the producer's lock, and nothing is lost.

Without ``locks`` (``race(..., relay_locked=False)``) this fails on FerretDB: checked by
hand, three runs of 300 writes over 10 documents lost 29-31 writes and 31-46 events each
(with locks: none). On MongoDB both pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import OUTBOX_FIELD, EventPublisher, OutboxRelay
from taskmesh_common.locks import DocumentLocks
from taskmesh_common.testing import unique_name

pytestmark = pytest.mark.integration

DOCUMENTS = 10
WRITES_PER_DOCUMENT = 30
PENDING = {f"{OUTBOX_FIELD}.0": {"$exists": True}}


async def race(
    db: AsyncDatabase[dict[str, Any]],
    broker: BrokerConnection,
    exchange: str,
    spy: Any,
    make_task_created: Any,
    *,
    relay_locked: bool,
) -> tuple[int, int]:
    """Producers write while the relay publishes; returns (writes lost, events lost)."""
    locks = DocumentLocks(db[unique_name("locks")])
    ids = [unique_name("doc") for _ in range(DOCUMENTS)]
    await db.docs.insert_many([{"_id": i, "writes": [], OUTBOX_FIELD: []} for i in ids])
    relay = OutboxRelay(
        db,
        ["docs"],
        EventPublisher(broker, exchange),
        service="test",
        poll_interval=0.01,
        locks={"docs": locks} if relay_locked else None,
    )
    sent: list[str] = []

    async def produce(doc_id: str) -> None:
        for n in range(WRITES_PER_DOCUMENT):
            entry = make_task_created(task_id=doc_id, version=n + 1)
            sent.append(entry["id"])
            async with locks.holding(doc_id):
                await db.docs.update_one(
                    {"_id": doc_id}, {"$push": {"writes": n, OUTBOX_FIELD: entry}}
                )
            relay.kick()

    relay.start()
    try:
        await asyncio.gather(*(produce(i) for i in ids))

        async def drained() -> None:
            while await db.docs.count_documents(PENDING):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(drained(), 30)
        # Published: on the spy's queue, fetched one by one. A lost event makes this wait out.
        with contextlib.suppress(TimeoutError):
            await spy.collect(len(sent), timeout=15)
    finally:
        await relay.stop()
        await relay.publisher.close()
    kept = sum([len(doc["writes"]) async for doc in db.docs.find({})], 0)
    published = {m.message_id for m in spy.messages}
    return len(ids) * WRITES_PER_DOCUMENT - kept, len(set(sent) - published)


async def test_relay_under_the_producers_lock_never_loses_a_concurrent_write(
    broker, db, exchange, spy, make_task_created
):
    lost_writes, lost_events = await race(
        db, broker, exchange, spy, make_task_created, relay_locked=True
    )
    assert (lost_writes, lost_events) == (0, 0)
