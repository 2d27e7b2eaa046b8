"""A process's own writes go out without a claim, and other relays leave them to it until
their grace has passed (then they take them over under a claim)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from pymongo import monitoring
from taskmesh_common.events import OUTBOX_FIELD
from taskmesh_common.events.outbox import CLAIM_FIELD
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing import unique_name

pytestmark = pytest.mark.integration


class Commands(monitoring.CommandListener):
    """The commands sent to one collection: name and body."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command.get(event.command_name) == self.collection:
            self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_write_of_this_process_goes_out_with_one_read_and_one_write(
    backing_servers, broker, exchange, spy, task_docs, relay_for
):
    commands = Commands("tasks")
    client = create_mongo_client(backing_servers.mongo_url, event_listeners=[commands])
    db = client[unique_name("events")]
    try:
        relay = relay_for(db, broker, exchange, scan_interval=3600)
        await relay.publisher.start(timeout=10)
        assert await relay.run_once() == 0  # the first cycle scans: nothing pending
        docs = task_docs(5, updated=2)
        await db.tasks.insert_many(docs)
        for doc in docs:
            relay.wrote("tasks", doc["_id"])
        commands.sent.clear()
        assert await relay.run_once() == 5
        sent = list(commands.sent)
        messages = await spy.collect(7)
        left = [doc async for doc in db.tasks.find({})]
        await relay.publisher.close()
    finally:
        await client.drop_database(db.name)
        await client.close()
    # The read, then the removal of what went out: no claim written, none to end.
    assert [name for name, _ in sent] == ["find", "update"]
    assert all(CLAIM_FIELD not in json.dumps(body, default=str) for _, body in sent[1:])
    assert sorted(m.message_id for m in messages) == sorted(
        entry["id"] for doc in docs for entry in doc[OUTBOX_FIELD]
    )
    assert [doc[OUTBOX_FIELD] for doc in left] == [[]] * 5
    assert all(CLAIM_FIELD not in doc for doc in left)


async def test_another_replicas_background_pass_leaves_fresh_writes_to_their_writer(
    broker, db, exchange, spy, make_task_created, relay_for, drained
):
    # A grace far above the writer's publishing time, even on a busy machine.
    writer = relay_for(db, broker, exchange, grace_seconds=30)
    # Another replica, scanning all the time: it must not publish what the writer publishes.
    other = relay_for(db, broker, exchange, grace_seconds=30, scan_interval=0.02)
    other.start()
    await asyncio.sleep(0.5)  # past its first cycle's scan, which takes whatever it finds
    writer.start()
    sent: list[str] = []
    try:
        for _ in range(20):
            docs = [
                {"_id": (entry := make_task_created())["subject"], OUTBOX_FIELD: [entry]}
                for _ in range(10)
            ]
            await db.tasks.insert_many(docs)
            for doc in docs:
                sent.append(doc[OUTBOX_FIELD][0]["id"])
                writer.wrote("tasks", doc["_id"])
        await drained(db.tasks)
        await spy.collect(len(sent), timeout=15)
        await spy.quiet_for(0.5)
    finally:
        for relay in (writer, other):
            await relay.stop()
            await relay.publisher.close()
    assert Counter(m.message_id for m in spy.messages) == Counter(sent)


async def test_a_write_whose_writer_died_is_taken_over_after_its_grace(
    broker, db, exchange, spy, task_docs, relay_for, drained
):
    survivor = relay_for(db, broker, exchange, grace_seconds=2, scan_interval=0.1)
    survivor.start()
    await asyncio.sleep(0.5)  # past its first cycle's scan, which takes whatever it finds
    loop = asyncio.get_running_loop()
    try:
        [doc] = task_docs(1)
        await db.tasks.insert_one(doc)
        written_at = loop.time()
        # Its writer named it (`wrote`) and was killed before its relay's next cycle.
        assert await survivor.maintain() == 0  # fresh: left to its writer
        [message] = await spy.collect(1, timeout=15)
        taken_after = loop.time() - written_at
        await drained(db.tasks)
        await spy.quiet_for(0.5)
    finally:
        await survivor.stop()
        await survivor.publisher.close()
    assert message.message_id == doc[OUTBOX_FIELD][0]["id"]
    assert len(spy.messages) == 1
    assert taken_after >= 1.9
