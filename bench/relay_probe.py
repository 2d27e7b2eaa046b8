"""Where the outbox relay's time goes, and what the MongoDB-protocol server charges per write.

Runs the library's own ``OutboxRelay`` over ``documents`` task-like documents with one
pending event each (a throwaway database and exchange, a queue bound so nothing is
unroutable) and times each phase of its cycle, then the sweep that pulls the published
entries out of their documents afterwards (off the publishing path). Beside it, the primitive costs the relay
is made of, measured on the same server: one-document writes, and one ``update_many``
touching many documents (per document).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import aio_pika
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import EventPublisher, OutboxRelay
from taskmesh_common.events.envelope import OUTBOX_FIELD, outbox_entry
from taskmesh_common.mongo import create_mongo_client

__all__ = ["created_entry", "relay_anatomy"]

T = TypeVar("T")


def created_entry(
    task_id: str, owner: str, *, version: int = 1, done: bool = False
) -> dict[str, Any]:
    """A `task.created` outbox entry (or, with `done`, the task's `task.completed`)."""
    now = datetime.now(UTC)
    data = {
        "task_id": task_id, "owner_id": owner, "version": version, "title": "probe",
        "status": "done" if done else "todo", "priority": "medium", "due_date": None,
        "tags": ["bench"], "created_at": now, "updated_at": now,
        "completed_at": now if done else None,
    }  # fmt: skip
    kind = "task.completed" if done else "task.created"
    return outbox_entry(kind, task_id, data, source="tasks")


def _timed(totals: dict[str, float], name: str, fn: Callable[..., Awaitable[T]]) -> Any:
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        began = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - began

    return wrapper


async def _primitives(db: Any, samples: int) -> dict[str, float]:
    """Milliseconds per operation (per document for the batch ones)."""
    coll = db["primitives"]
    owner = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(samples)]
    out: dict[str, float] = {}
    began = time.perf_counter()
    for i in ids:
        await coll.insert_one({"_id": i, OUTBOX_FIELD: [created_entry(i, owner)], "n": 0})
    out["insert_one_ms"] = (time.perf_counter() - began) * 1000 / samples
    began = time.perf_counter()
    for i in ids:
        await coll.find_one({"_id": i})
    out["find_one_by_id_ms"] = (time.perf_counter() - began) * 1000 / samples
    began = time.perf_counter()
    for i in ids:
        await coll.update_one({"_id": i}, {"$set": {"n": 1}})
    out["update_one_by_id_ms"] = (time.perf_counter() - began) * 1000 / samples
    began = time.perf_counter()
    _ = [doc async for doc in coll.find({"_id": {"$in": ids}})]
    out["find_in_per_document_ms"] = (time.perf_counter() - began) * 1000 / samples
    began = time.perf_counter()
    await coll.update_many({"_id": {"$in": ids}}, {"$set": {OUTBOX_FIELD: []}})
    out["update_many_per_document_ms"] = (time.perf_counter() - began) * 1000 / samples
    began = time.perf_counter()
    await coll.insert_many([{"_id": str(uuid.uuid4()), "n": 0} for _ in range(samples)])
    out["insert_many_per_document_ms"] = (time.perf_counter() - began) * 1000 / samples
    began = time.perf_counter()
    await coll.delete_many({"_id": {"$in": ids}})
    out["delete_many_per_document_ms"] = (time.perf_counter() - began) * 1000 / samples
    return {k: round(v, 2) for k, v in out.items()}


async def relay_anatomy(mongo_url: str, amqp_url: str, *, documents: int) -> dict[str, Any]:
    client = create_mongo_client(mongo_url, timeout_seconds=10)
    db = client[f"bench_relay_{uuid.uuid4().hex[:8]}"]
    exchange = f"bench.relay.{uuid.uuid4().hex[:8]}"
    broker = BrokerConnection(amqp_url, name="bench-relay")
    broker.start()
    sink = await aio_pika.connect(amqp_url)
    try:
        channel = await sink.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(ex, routing_key="#")
        owner = str(uuid.uuid4())
        ids = [str(uuid.uuid4()) for _ in range(documents)]
        await db["tasks"].insert_many(
            [{"_id": i, "owner_id": owner, OUTBOX_FIELD: [created_entry(i, owner)]} for i in ids]
        )
        publisher = EventPublisher(broker, exchange)
        await publisher.start(timeout=10)
        relay = OutboxRelay(db, ["tasks"], publisher, service="bench")
        phases: dict[str, float] = {}
        relay.claim = _timed(phases, "claim (scan + leases + read)", relay.claim)  # type: ignore[method-assign]
        relay.leases.acquire = _timed(phases, "  of which leases.acquire", relay.leases.acquire)  # type: ignore[method-assign]
        relay._settle = _timed(phases, "record published (insert_many)", relay._settle)  # type: ignore[method-assign]
        relay.leases.release = _timed(phases, "leases.release", relay.leases.release)  # type: ignore[method-assign]
        cycles, published = 0, 0
        began = time.perf_counter()
        while published < documents and cycles < 10 * documents:
            claimed = await relay.run_once()
            published += claimed
            cycles += 1
        total = time.perf_counter() - began
        await publisher.close()
        named = sum(v for k, v in phases.items() if not k.startswith(" "))
        phases["publish (confirms)"] = total - named
        # Off the publishing path: pull the published entries out of their documents.
        began = time.perf_counter()
        while await relay.sweep():
            pass
        sweep_seconds = time.perf_counter() - began
        primitives = await _primitives(db, min(documents, 200))
        await channel.exchange_delete(exchange)
    finally:
        await sink.close()
        await broker.close()
        await client.drop_database(db.name)
        await client.close()
    return {
        "documents": documents,
        "cycles": cycles,
        "batch_size": relay.batch_size,
        "seconds": round(total, 2),
        "events_per_s": round(published / total, 1) if total else None,
        "phase_seconds": {k: round(v, 2) for k, v in phases.items()},
        "sweep_seconds_after": round(sweep_seconds, 2),
        "ferretdb_ms": primitives,
    }
