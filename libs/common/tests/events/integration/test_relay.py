"""The outbox relay against the real broker and database: exactly once, outages, dead relays."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from prometheus_client import REGISTRY
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import (
    DELETED_FIELD,
    OUTBOX_FIELD,
    EventPublisher,
    OutboxRelay,
    outbox_entry,
)
from taskmesh_common.events.outbox import CLAIM_FIELD
from taskmesh_common.testing import unique_name

pytestmark = pytest.mark.integration

PENDING = {f"{OUTBOX_FIELD}.0": {"$exists": True}}


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    """The relay started for the block, then stopped and its publisher closed."""
    relay.start()
    try:
        yield relay
    finally:
        await relay.stop()
        await relay.publisher.close()


async def test_two_racing_relays_publish_every_entry_exactly_once_in_order(
    broker, backing_servers, db, exchange, spy, task_docs, relay_for, drained
):
    # A second write on some tasks: their two events must leave in the order written.
    docs = task_docs(150, updated=30)
    await db.tasks.insert_many(docs)
    expected = [e["id"] for d in docs for e in d[OUTBOX_FIELD]]

    other = BrokerConnection(backing_servers.amqp_url, name=unique_name("relay-b"))
    other.start()
    relays = [
        relay_for(db, broker, exchange, batch_size=40),
        relay_for(db, other, exchange, batch_size=40),
    ]
    for relay in relays:
        relay.start()
    try:
        await drained(db.tasks)
        messages = await spy.collect(len(expected))
        await spy.quiet_for(1.0)
    finally:
        for relay in relays:
            await relay.stop()
            await relay.publisher.close()
        await other.close()

    ids = Counter(m.message_id for m in spy.messages)
    assert sorted(ids) == sorted(expected)
    assert set(ids.values()) == {1}
    assert spy.in_version_order(messages)


async def test_the_relays_reads_and_writes_start_no_traces_of_their_own(
    broker, db, exchange, spy, task_docs, drained
):
    """The relay's database commands belong to no request: instrumented, each would be a
    trace of one span in Jaeger. Its loops run with the client instrumentation off."""
    instrumented: list[bool] = []

    class Watching(EventPublisher):
        async def publish(self, envelope_fields: Any) -> None:
            instrumented.append(is_instrumentation_enabled())
            await super().publish(envelope_fields)

    await db.tasks.insert_many(task_docs(3))
    publisher = Watching(broker, exchange)
    relay = OutboxRelay(db, ["tasks"], publisher, service="test", grace_seconds=0)
    relay.start()
    try:
        await drained(db.tasks)
        await spy.collect(3)
    finally:
        await relay.stop()
        await publisher.close()
    assert instrumented == [False, False, False]
    assert is_instrumentation_enabled()  # the caller's context is untouched


async def test_published_events_leave_the_outbox_and_tombstones_disappear(
    broker, db, exchange, spy, make_task_created, task_docs, relay_for, drained
):
    live, deleted = task_docs(2)
    deleted[DELETED_FIELD] = True
    await db.tasks.insert_many([live, deleted])
    relay = relay_for(db, broker, exchange)
    async with running(relay):
        await drained(db.tasks)
        await spy.collect(2)
    remaining = [doc async for doc in db.tasks.find({})]
    assert [doc["_id"] for doc in remaining] == [live["_id"]]
    assert remaining[0][OUTBOX_FIELD] == []


async def test_relay_continues_the_trace_recorded_in_the_outbox(
    broker, db, exchange, spy, spans, make_task_created
):
    provider, _ = spans
    with provider.get_tracer("test").start_as_current_span("PATCH /api/v1/tasks/x") as request:
        entry = make_task_created()
    await db.tasks.insert_one({"_id": entry["subject"], OUTBOX_FIELD: [entry]})
    relay = OutboxRelay(
        db,
        ["tasks"],
        EventPublisher(broker, exchange, tracer_provider=provider),
        service="test",
        poll_interval=0.05,
    )
    async with running(relay):
        [message] = await spy.collect(1)
    trace_id = f"{request.get_span_context().trace_id:032x}"
    assert str(message.headers["traceparent"]).split("-")[1] == trace_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def tcp_proxy(port: int, target_host: str, target_port: int) -> AsyncIterator[None]:
    """The broker 'coming back' on a port that was closed until now."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        for task in (pipe(reader, up_writer), pipe(up_reader, writer)):
            tasks.add(asyncio.create_task(task))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def test_entries_stay_pending_while_broker_is_away_and_go_out_when_it_returns(
    backing_servers, db, exchange, spy, make_task_created, task_docs, relay_for, drained
):
    real = urlsplit(backing_servers.amqp_url)
    port = free_port()
    away_url = urlunsplit(real._replace(netloc=f"{real.username}:{real.password}@127.0.0.1:{port}"))
    away = BrokerConnection(away_url, name=unique_name("relay-away"), max_delay=0.3)
    away.start()
    docs = task_docs(5)
    await db.tasks.insert_many(docs)
    relay = relay_for(db, away, exchange)
    relay.start()
    try:
        await asyncio.sleep(1.5)
        assert await db.tasks.count_documents(PENDING) == 5
        assert await spy.quiet_for(0.2) == []
        # Nothing is claimed while the broker is away: another replica could publish.
        assert await db.tasks.count_documents({CLAIM_FIELD: {"$ne": None}}) == 0

        async with tcp_proxy(port, real.hostname or "127.0.0.1", real.port or 5672):
            await drained(db.tasks)
            messages = await spy.collect(5)
            await relay.stop()
            await relay.publisher.close()
            await away.close()
    finally:
        await relay.stop()
        await away.close()
    assert sorted(m.message_id for m in messages) == sorted(d[OUTBOX_FIELD][0]["id"] for d in docs)


async def test_claims_of_a_relay_that_died_are_taken_over_after_the_lease(
    broker, db, exchange, spy, make_task_created, task_docs, relay_for, drained
):
    docs = task_docs(3)
    await db.tasks.insert_many(docs)
    dead = relay_for(db, broker, exchange, lease_seconds=1.5)
    _, claimed = await dead.claim()
    assert len(claimed) == 3  # ... and then the process was killed

    loop = asyncio.get_running_loop()
    died_at = loop.time()
    survivor = relay_for(db, broker, exchange)
    survivor.start()
    try:
        assert await spy.quiet_for(1.0) == []
        messages = await spy.collect(3, timeout=10)
        published_after = loop.time() - died_at
        await drained(db.tasks)
        await spy.quiet_for(0.5)
    finally:
        await survivor.stop()
        await survivor.publisher.close()
    assert published_after >= 1.4
    assert sorted(m.message_id for m in spy.messages) == sorted(
        d[OUTBOX_FIELD][0]["id"] for d in docs
    )
    assert len(messages) == 3


async def test_invalid_data_is_refused_before_anything_is_written():
    with pytest.raises(ValueError, match="title"):
        outbox_entry(
            "task.created",
            "t1",
            {"task_id": "t1", "owner_id": "u1", "version": 1, "title": ""},
            source="tasks",
        )


async def test_event_nobody_subscribed_to_is_dropped_instead_of_blocking_the_outbox(
    broker, db, make_task_created, task_docs, relay_for, drained
):
    lonely = unique_name("test.nobody-listens")
    await db.tasks.insert_many(task_docs(2))
    relay = relay_for(db, broker, lonely)
    async with running(relay):
        await drained(db.tasks)


async def test_unroutable_event_stays_pending_when_the_relay_must_not_drop_it(
    broker, db, make_task_created, task_docs, relay_for
):
    lonely = unique_name("test.nobody-listens")
    await db.tasks.insert_many(task_docs(2))
    relay = relay_for(db, broker, lonely, drop_unroutable=False)
    async with running(relay):
        await asyncio.sleep(1.0)
        assert await db.tasks.count_documents(PENDING) == 2


async def test_kick_publishes_at_once_instead_of_waiting_for_the_next_poll(
    broker, db, exchange, spy, make_task_created, task_docs, relay_for
):
    relay = relay_for(db, broker, exchange, poll_interval=30)
    async with running(relay):
        await asyncio.sleep(0.5)  # the relay found nothing and sleeps for 30 s
        [doc] = task_docs(1)
        await db.tasks.insert_one(doc)
        relay.kick()
        [message] = await spy.collect(1, timeout=5)
    assert message.message_id == doc[OUTBOX_FIELD][0]["id"]


def pending_gauge() -> float | None:
    return REGISTRY.get_sample_value("outbox_pending", {"service": "test"})


async def test_the_background_pass_names_what_nobody_named_and_counts_it(
    broker, db, exchange, spy, task_docs, relay_for
):
    relay = relay_for(db, broker, exchange, scan_interval=3600)
    await relay.publisher.start(timeout=10)
    try:
        assert await relay.run_once() == 0  # the first cycle scans: nothing pending
        docs = task_docs(3)
        await db.tasks.insert_many(docs)  # written by someone who did not kick this relay
        assert await relay.run_once() == 0  # cycles do not scan on their own
        assert await relay.maintain() == 3
        assert pending_gauge() == 3
        assert await relay.run_once() == 3  # named by the pass: read by _id
        messages = await spy.collect(3, timeout=5)
        assert await relay.maintain() == 0
        assert pending_gauge() == 0
    finally:
        await relay.publisher.close()
    assert {m.message_id for m in messages} == {d[OUTBOX_FIELD][0]["id"] for d in docs}


async def test_a_started_relay_finds_unnamed_writes_beside_its_publishing_loop(
    broker, db, exchange, spy, task_docs, relay_for
):
    # Its cycles never scan (poll and scan every hour would otherwise mean an hour's wait):
    # the background pass, every 0.2 s here, names the document for the next cycle.
    relay = relay_for(db, broker, exchange, poll_interval=3600, scan_interval=0.2)
    async with running(relay):
        await asyncio.sleep(0.5)
        [doc] = task_docs(1)
        await db.tasks.insert_one(doc)  # no kick
        [message] = await spy.collect(1, timeout=5)
    assert message.message_id == doc[OUTBOX_FIELD][0]["id"]


async def test_named_documents_go_out_without_a_scan_and_a_scan_finds_the_rest(
    broker, db, exchange, spy, task_docs, relay_for
):
    relay = relay_for(db, broker, exchange, scan_interval=3600)
    named, unnamed = task_docs(2)
    await relay.publisher.start(timeout=10)
    try:
        assert await relay.run_once() == 0  # nothing pending: this cycle scanned
        await db.tasks.insert_many([unnamed, named])
        relay.kick("tasks", named["_id"])
        # A document was named: this cycle reads it by _id and skips the (hour-long) scan.
        assert await relay.run_once() == 1
        [first] = await spy.collect(1, timeout=5)
        assert first.message_id == named[OUTBOX_FIELD][0]["id"]
        # Nobody named the other one: it waits for the (hour-long) scan interval...
        assert await relay.run_once() == 0
        # ...or for a kick that names nothing, after which the next cycle scans.
        relay.kick()
        assert await relay.run_once() == 1
        messages = await spy.collect(2, timeout=5)
    finally:
        await relay.publisher.close()
    assert [m.message_id for m in messages] == [
        named[OUTBOX_FIELD][0]["id"],
        unnamed[OUTBOX_FIELD][0]["id"],
    ]


def publish_lag_buckets() -> dict[str, float]:
    """``events_publish_lag_seconds`` of the events whose source is tasks, per bucket."""
    return {
        le: REGISTRY.get_sample_value(
            "events_publish_lag_seconds_bucket", {"service": "tasks", "le": le}
        )
        or 0.0
        for le in ("2.5", "30.0", "+Inf")
    }


async def test_an_outbox_running_behind_shows_in_the_publish_lag(
    broker, db, exchange, spy, task_docs, relay_for, drained
):
    """An SRE reads how far the outbox runs behind the writes from the relay's histogram:
    events written 3 s before the relay got to them count as more than 2.5 s behind."""
    docs = task_docs(3)
    written = (datetime.now(UTC) - timedelta(seconds=3)).isoformat()
    for doc in docs:
        doc[OUTBOX_FIELD][0]["time"] = written
    before = publish_lag_buckets()
    await db.tasks.insert_many(docs)
    relay = relay_for(db, broker, exchange)
    async with running(relay):
        await drained(db.tasks)
        await spy.collect(3)
    after = publish_lag_buckets()
    grew = {le: after[le] - before[le] for le in after}
    assert grew == {"2.5": 0, "30.0": 3, "+Inf": 3}
