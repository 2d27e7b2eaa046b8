"""The outbox relay at a steady pace: what each event costs FerretDB, and the relay's round trips.

In a burst the relay's cycles are large and their fixed costs (taking and giving back the
partitions' leases, recording) are shared by many events; at a steady pace a cycle holds a
write or two. This starts the library's ``OutboxRelay`` as a service does (its loop, its
background pass, the tasks service's per-document locks) on a throwaway database of the
bench's FerretDB, writes ``rate`` task documents a second for ``seconds``, each named to
the relay as the tasks service does, waits until every event reached a queue bound to the
exchange, then until the relay swept them all. Per event: FerretDB's CPU (``/proc``; the
writes' own inserts included; measured once FerretDB is quiet, less what it then used for
others), first while publishing, then with the sweep, and the commands the relay sent, by
command and collection (``mongo_commands_total`` of this process, less the probe's writes).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

import aio_pika
from prometheus_client import REGISTRY, generate_latest
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import OUTBOX_FIELD, EventPublisher, OutboxRelay
from taskmesh_common.locks import DocumentLocks
from taskmesh_common.mongo import create_mongo_client

from bench import stack
from bench.pipeline import mongo_commands
from bench.relay_probe import created_entry

__all__ = ["commands_per_event", "relay_at_pace"]

_QUIET_CORES = 0.05
_QUIET_WAIT = 120.0


def _relay_commands(before: Mapping[str, float]) -> Counter[str]:
    """The commands this process sent since ``before`` (the library counts each in
    ``mongo_commands_total``), less the probe's own writes of the tasks."""
    now = mongo_commands(generate_latest(REGISTRY).decode())
    counts = Counter({key: round(n - before.get(key, 0.0)) for key, n in now.items()})
    del counts["insert tasks"]
    return +counts


def _task(owner: str) -> dict[str, Any]:
    task_id = str(uuid.uuid4())
    entry = created_entry(task_id, owner)
    return {"_id": task_id, "owner_id": owner, "title": "probe", OUTBOX_FIELD: [entry]}


async def _write(db: Any, relay: OutboxRelay, owner: str, count: int, rate: float) -> None:
    began = time.perf_counter()
    for n in range(count):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        doc = _task(owner)
        await db["tasks"].insert_one(doc)
        relay.kick("tasks", doc["_id"], doc[OUTBOX_FIELD])


async def _until(done: Any, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > end:
            return False
        await asyncio.sleep(0.05)
    return True


async def _quiet(pid: int) -> float | None:
    """FerretDB's cores busy for others, once that is below ``_QUIET_CORES`` over a second
    (in the bench the services' relays may still be sweeping the pipeline runs' entries),
    or after ``_QUIET_WAIT`` seconds, whatever it is then; taken off the probe's reading."""
    end = time.perf_counter() + _QUIET_WAIT
    while True:
        before = stack.cpu_seconds(pid)
        await asyncio.sleep(1.0)
        after = stack.cpu_seconds(pid)
        if before is None or after is None:
            return None
        if after - before < _QUIET_CORES or time.perf_counter() > end:
            return after - before


def commands_per_event(counts: Counter[str], events: int) -> dict[str, float]:
    """Per event, the total and each command sent at least once per hundred events."""
    rows = {name: round(n / events, 3) for name, n in counts.most_common() if n / events >= 0.01}
    return {"all": round(sum(counts.values()) / events, 2), **rows}


async def relay_at_pace(
    mongo_url: str, amqp_url: str, ferretdb_pid: int, *, rate: float, seconds: float
) -> dict[str, Any]:
    client = create_mongo_client(mongo_url, timeout_seconds=10, max_writes=1)
    name = f"bench_pace_{uuid.uuid4().hex[:8]}"
    db = client[name]
    exchange = f"bench.pace.{uuid.uuid4().hex[:8]}"
    broker = BrokerConnection(amqp_url, name="bench-pace")
    broker.start()
    sink = await aio_pika.connect(amqp_url)
    arrived = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal arrived
        arrived += 1
        await message.ack()

    publisher = EventPublisher(broker, exchange)
    # A producer's clock may run ahead by clock_skew: 1 s here, so a short warm-up makes
    # every partition solely this relay's, as it is for a relay that has run a while.
    relay = OutboxRelay(
        db,
        ["tasks"],
        publisher,
        service="bench-pace",
        locks={"tasks": DocumentLocks(db["task_write_locks"], wait_seconds=10.0)},
        clock_skew=1.0,
    )
    try:
        channel = await sink.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(ex, routing_key="#")
        await queue.consume(on_message)
        relay.start()
        owner = str(uuid.uuid4())
        warm = 4 * relay.partitions
        await _write(db, relay, owner, warm, rate)
        await _until(lambda: arrived >= warm and relay.unswept == 0, 60)
        await asyncio.sleep(relay.clock_skew.total_seconds() + 0.5)
        rest = await _quiet(ferretdb_pid)

        count = max(1, round(rate * seconds))
        arrived, before = 0, mongo_commands(generate_latest(REGISTRY).decode())
        cpu_before, began = stack.cpu_seconds(ferretdb_pid), time.perf_counter()
        await _write(db, relay, owner, count, rate)
        delivered = await _until(lambda: arrived >= count, 60)
        cpu_published, published_at = stack.cpu_seconds(ferretdb_pid), time.perf_counter()
        publishing = _relay_commands(before)
        swept = await _until(lambda: relay.unswept == 0, 120)
        cpu_swept, swept_at = stack.cpu_seconds(ferretdb_pid), time.perf_counter()
        with_sweep = _relay_commands(before)
    finally:
        await relay.stop()
        await publisher.close()
        await sink.close()
        await broker.close()
        await client.drop_database(name)
        await client.close()

    def ms(cpu: float | None, until: float) -> float | None:
        if cpu is None or cpu_before is None or rest is None:
            return None
        return round((cpu - cpu_before - rest * (until - began)) * 1000 / count, 2)

    return {
        "rate": rate,
        "events": count,
        "all_delivered": delivered,
        "all_swept": swept,
        "seconds_to_deliver": round(published_at - began, 1),
        "seconds_to_sweep": round(swept_at - began, 1),
        "ferretdb_rest_cores": None if rest is None else round(rest, 3),
        "ferretdb_ms_per_event_publishing": ms(cpu_published, published_at),
        "ferretdb_ms_per_event_with_sweep": ms(cpu_swept, swept_at),
        "relay_commands_per_event_publishing": commands_per_event(publishing, count),
        "relay_commands_per_event_with_sweep": commands_per_event(with_sweep, count),
    }
