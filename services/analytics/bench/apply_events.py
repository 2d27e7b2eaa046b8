"""Measure how fast analytics applies events (issue 10).

`trips`: one event at a time through `Projector.apply` (as the service's consumer runs it,
without a separate dedupe), timing every MongoDB round trip by command and collection.
`e2e`: a real analytics app consuming a real publisher's events (500 events of 20 users by
default) until its consumer counted every one processed; checks the per-user totals.

    uv run python services/analytics/bench/apply_events.py trips
    uv run python services/analytics/bench/apply_events.py e2e --events 500 --users 20

Uses TASKMESH_MONGO_URL / TASKMESH_AMQP_URL / TASKMESH_REDIS_URL; a unique database,
exchange and queues, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics_service.adapters.store import ProjectionStore
from analytics_service.service_layer.handlers import Projector
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient, monitoring
from taskmesh_common.events import Envelope, outbox_entry

NOW = datetime.now(UTC).replace(microsecond=0)


def task_history(owner: str, events: int) -> list[dict[str, Any]]:
    """created, then alternating completed/reopened: `events` versions of one task."""
    task_id = uuid.uuid4().hex
    created = NOW - timedelta(days=1)
    out = []
    for version in range(1, events + 1):
        done = version % 2 == 0
        updated = created + timedelta(minutes=version)
        data = {
            "task_id": task_id,
            "owner_id": owner,
            "version": version,
            "title": "t",
            "status": "done" if done else "todo",
            "priority": "medium",
            "due_date": None,
            "tags": [],
            "created_at": created,
            "updated_at": updated,
            "completed_at": updated if done else None,
        }
        kind = "task.created" if version == 1 else ("task.completed" if done else "task.reopened")
        out.append(outbox_entry(kind, task_id, data, source="tasks", time=updated))
    return out


def workload(
    events: int, users: int, per_task: int = 5
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """`events` entries of `users` users (tasks of `per_task` versions), shuffled."""
    owners = [uuid.uuid4().hex for _ in range(users)]
    entries: list[dict[str, Any]] = []
    live: dict[str, int] = defaultdict(int)
    n = 0
    while len(entries) < events:
        owner = owners[n % users]
        entries += task_history(owner, min(per_task, events - len(entries)))
        live[owner] += 1
        n += 1
    return entries, live


class Timings(monitoring.CommandListener):
    def __init__(self) -> None:
        self.by: dict[str, list[float]] = defaultdict(list)
        self._names: dict[int, str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        coll = event.command.get(event.command_name)
        self._names[event.request_id] = (
            f"{event.command_name} {coll if isinstance(coll, str) else ''}"
        )

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        name = self._names.pop(event.request_id, event.command_name)
        self.by[name].append(event.duration_micros / 1000)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        name = self._names.pop(event.request_id, event.command_name) + " (failed)"
        self.by[name].append(event.duration_micros / 1000)


async def trips(args: argparse.Namespace) -> None:
    listener = Timings()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        os.environ["TASKMESH_MONGO_URL"], tz_aware=True, event_listeners=[listener]
    )
    name = f"bench_an_{uuid.uuid4().hex[:8]}"
    db = client[name]
    try:
        projector = Projector(ProjectionStore(db))
        entries, _ = workload(args.events, args.users)
        random.Random(1).shuffle(entries)
        started = time.perf_counter()
        for entry in entries:
            await projector.apply(Envelope.from_entry(entry))
        seconds = time.perf_counter() - started
        print(f"{len(entries)} events one at a time: {seconds * 1000 / len(entries):.1f} ms/event")
        print_timings(listener, len(entries))
    finally:
        await client.drop_database(name)
        await client.close()


def print_timings(listener: Timings, events: int) -> None:
    """Round trips by command and collection, per event (the app's and the consumer's)."""
    for key, values in sorted(listener.by.items(), key=lambda kv: -sum(kv[1])):
        if len(values) < events / 50:
            continue
        print(
            f"  {key:40s} n={len(values):5d} per event {len(values) / events:.2f}"
            f"  avg {sum(values) / len(values):6.2f} ms  total/event {sum(values) / events:6.2f} ms"
        )


async def e2e(args: argparse.Namespace) -> None:
    import httpx
    from analytics_service.api.app import create_app
    from analytics_service.config import Settings
    from taskmesh_common.amqp import BrokerConnection, broker_user
    from taskmesh_common.events import EventPublisher
    from taskmesh_common.testing.tokens import TokenFactory

    listener = Timings()
    monitoring.register(listener)
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        consumer_prefetch=args.prefetch,
        env="test",
        mongo_db=f"bench_an_{tag}",
        redis_prefix=f"bench{tag}:",
        events_exchange=f"bench_events_{tag}",
        queue_prefix=f"bench{tag}.",
    )
    # The bench publishes the task events itself, as the consumer's own broker user.
    settings = settings.model_copy(
        update={"event_publisher_users": {"tasks": broker_user(settings.amqp_url)}}
    )
    tokens = TokenFactory()
    app = create_app(settings, verifier=tokens.verifier())
    broker = BrokerConnection(settings.amqp_url, name="analytics-bench-publisher")
    broker.start()
    publisher = EventPublisher(broker, settings.events_exchange)
    entries, live = workload(args.events, args.users)
    random.Random(2).shuffle(entries)
    async with app.router.lifespan_context(app):
        consumer = app.state.consumer
        await consumer.start(start_timeout=10)
        await publisher.start(timeout=10)
        labels = {"service": settings.service_name, "queue": consumer.queue, "outcome": "processed"}
        before = REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0
        try:
            started = time.perf_counter()
            await publisher.publish_many(entries)
            published = time.perf_counter() - started
            while (
                REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0
            ) - before < len(entries):
                if time.perf_counter() - started > args.timeout:
                    raise SystemExit("timed out")
                await asyncio.sleep(0.25)
            seconds = time.perf_counter() - started
            print(
                f"{len(entries)} events of {args.users} users, prefetch "
                f"{settings.consumer_prefetch}: published in {published:.2f} s, all applied "
                f"after {seconds:.2f} s = {len(entries) / seconds:.0f} events/s "
                f"({seconds * 1000 / len(entries):.2f} ms/event)"
            )
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://a") as http:
                for owner, count in live.items():
                    body = (
                        await http.get(
                            "/api/v1/analytics/summary", headers=tokens.auth_header(owner, "user")
                        )
                    ).json()
                    assert body["total"] == count, (owner, body, count)
            print("every user's total is exact")
            print_timings(listener, len(entries))
        finally:
            await publisher.close()
            await consumer.stop()
            connection = await broker.wait(5)
            channel = await connection.channel()
            topology = consumer.topology
            for q in [
                topology.queue,
                topology.dead_letter_queue,
                *(topology.retry_queue(n) for n in range(1, len(topology.retry_delays_ms) + 1)),
            ]:
                await channel.queue_delete(q)
            await channel.exchange_delete(settings.events_exchange)
            await app.state.mongo.drop_database(settings.mongo_db)
    await broker.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("trips", "e2e"))
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--prefetch", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(trips(args) if args.mode == "trips" else e2e(args))


if __name__ == "__main__":
    main()
