"""Claims on the documents themselves: exclusive while they hold, taken over once expired,
and producers' writes during a claim are neither lost nor published out of order."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import aio_pika
import pytest
from pymongo import monitoring
from taskmesh_common.events import DELETED_FIELD, OUTBOX_FIELD, EventPublisher, OutboxRelay
from taskmesh_common.events.outbox import CLAIM_FIELD
from taskmesh_common.events.outbox.claims import settle
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing import unique_name

pytestmark = pytest.mark.integration


async def test_relays_claiming_the_same_documents_at_once_each_get_their_own(
    broker, db, exchange, task_docs, relay_for
):
    docs = task_docs(60)
    await db.tasks.insert_many(docs)
    relays = [relay_for(db, broker, exchange) for _ in range(4)]
    for relay in relays:
        for doc in docs:
            relay.kick("tasks", doc["_id"])
    claims = await asyncio.gather(*(relay.claim() for relay in relays))

    claimed = Counter(doc["_id"] for _, docs_claimed in claims for _, doc in docs_claimed)
    assert set(claimed) == {doc["_id"] for doc in docs}
    assert set(claimed.values()) == {1}
    # What the others could not claim they try again later (not lost, not taken).
    for relay, (_, docs_claimed) in zip(relays, claims, strict=True):
        mine = {doc["_id"] for _, doc in docs_claimed}
        assert set(relay.named.to_claim["tasks"]) == {doc["_id"] for doc in docs} - mine


async def test_a_relay_killed_mid_publish_is_taken_over_once_its_claim_expires(
    broker, db, exchange, spy, task_docs, relay_for, drained
):
    docs = task_docs(4, updated=4)  # two events each
    await db.tasks.insert_many(docs)
    dead = relay_for(db, broker, exchange, lease_seconds=3)
    await dead.publisher.start(timeout=10)
    dead.kick()
    _, claimed = await dead.claim()
    assert len(claimed) == 4
    # It got the first event of each document confirmed, then was killed (no settle).
    await asyncio.gather(*(dead.publisher.publish(doc[OUTBOX_FIELD][0]) for _, doc in claimed))
    await dead.publisher.close()
    loop = asyncio.get_running_loop()
    died_at = loop.time()

    survivor = relay_for(db, broker, exchange, scan_interval=0.1)
    survivor.start()
    try:
        await spy.collect(4)
        assert len(await spy.quiet_for(1.0)) == 4  # the claims still hold
        await spy.collect(4 + 8, timeout=10)
        taken_over_after = loop.time() - died_at
        await drained(db.tasks)
        await spy.quiet_for(0.5)
    finally:
        await survivor.stop()
        await survivor.publisher.close()
    assert taken_over_after >= 2.9
    ids = [m.message_id for m in spy.messages]
    # At least once: the survivor published both events of every document, in order.
    assert len(ids) == 12
    for doc in docs:
        first, second = (e["id"] for e in doc[OUTBOX_FIELD])
        again = [i for i in ids[4:] if i in (first, second)]
        assert again == [first, second]
    assert await db.tasks.count_documents({CLAIM_FIELD: {"$ne": None}}) == 0


async def test_an_entry_written_while_its_document_is_claimed_goes_out_after_the_others(
    broker, db, exchange, spy, task_docs, relay_for, make_task_created
):
    [doc] = task_docs(1)
    await db.tasks.insert_one(doc)
    relay = relay_for(db, broker, exchange, scan_interval=3600)
    await relay.publisher.start(timeout=10)
    try:
        relay.kick("tasks", doc["_id"])
        token, claimed = await relay.claim()
        later = make_task_created(task_id=doc["_id"], version=2)
        await db.tasks.update_one({"_id": doc["_id"]}, {"$push": {OUTBOX_FIELD: later}})
        relay.kick("tasks", doc["_id"])
        # Publish and settle what was claimed, as run_once does.
        [(_, read)] = claimed
        assert [e["id"] for e in read[OUTBOX_FIELD]] == [doc[OUTBOX_FIELD][0]["id"]]
        await relay.publisher.publish(read[OUTBOX_FIELD][0])
        await settle(db.tasks, token, [(read, read[OUTBOX_FIELD])])
        stored = await db.tasks.find_one({"_id": doc["_id"]})
        assert stored is not None
        assert [e["id"] for e in stored[OUTBOX_FIELD]] == [later["id"]]
        assert CLAIM_FIELD not in stored
        assert await relay.run_once() == 1
        messages = await spy.collect(2)
    finally:
        await relay.publisher.close()
    assert [m.message_id for m in messages] == [doc[OUTBOX_FIELD][0]["id"], later["id"]]


@pytest.mark.parametrize("notify", ["kick", "wrote"])
async def test_producers_writing_while_the_relay_publishes_lose_no_write_and_no_event(
    broker, db, exchange, spy, make_task_created, notify, drained
):
    """Named for a claim (``kick``) or as the process's own writes (``wrote``, no claim:
    a write during its document's publish waits for the next cycle)."""
    ids = [unique_name("doc") for _ in range(10)]
    await db.docs.insert_many([{"_id": i, "writes": [], OUTBOX_FIELD: []} for i in ids])
    relay = OutboxRelay(
        db, ["docs"], EventPublisher(broker, exchange), service="test", poll_interval=0.01
    )
    sent: list[str] = []

    async def produce(doc_id: str) -> None:
        for n in range(30):
            entry = make_task_created(task_id=doc_id, version=n + 1)
            sent.append(entry["id"])
            await db.docs.update_one({"_id": doc_id}, {"$push": {"writes": n, OUTBOX_FIELD: entry}})
            getattr(relay, notify)("docs", doc_id)

    relay.start()
    try:
        await asyncio.gather(*(produce(i) for i in ids))
        await drained(db.docs, timeout=30)
        messages = await spy.collect(len(sent), timeout=15)
        await spy.quiet_for(0.5)
    finally:
        await relay.stop()
        await relay.publisher.close()
    assert sum([len(doc["writes"]) async for doc in db.docs.find({})], 0) == 300
    assert Counter(m.message_id for m in spy.messages) == Counter(sent)
    assert spy.in_version_order(messages)


async def test_a_tombstone_goes_only_once_every_event_it_holds_went_out(
    broker, db, exchange, task_docs, relay_for, make_task_created
):
    lonely = unique_name("test.nobody-listens")  # unroutable: stays pending when not dropped
    [tomb] = task_docs(1)
    tomb[DELETED_FIELD] = True
    await db.tasks.insert_one(tomb)
    relay = relay_for(db, broker, lonely, drop_unroutable=False, scan_interval=3600)
    await relay.publisher.start(timeout=10)
    try:
        relay.kick("tasks", tomb["_id"])
        with pytest.raises(aio_pika.exceptions.PublishError):  # returned: unroutable
            await relay.run_once()
        stored = await db.tasks.find_one({"_id": tomb["_id"]})
        assert stored is not None and len(stored[OUTBOX_FIELD]) == 1
        assert CLAIM_FIELD not in stored  # the claim ended: a later cycle retries
        relay.drop_unroutable = True
        relay.kick("tasks", tomb["_id"])
        assert await relay.run_once() == 1
    finally:
        await relay.publisher.close()
    assert await db.tasks.find_one({"_id": tomb["_id"]}) is None


class Finds(monitoring.CommandListener):
    """The filters of the ``find`` commands sent to one collection."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.filters: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == self.collection:
            self.filters.append(dict(event.command.get("filter") or {}))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def scans_an_index(plan: Any) -> bool:
    """Whether an explain output shows an index scan and no collection scan: ``IXSCAN`` on
    MongoDB, an ``Index Scan`` (or ``Bitmap Index Scan``) node on DocumentDB."""
    text = json.dumps(plan, default=str)
    indexed = "IXSCAN" in text or "Index Scan" in text
    return indexed and "COLLSCAN" not in text and "Seq Scan" not in text


async def test_the_pending_scan_finds_an_unnamed_write_through_an_index(
    backing_servers, broker, exchange, task_docs
):
    finds = Finds("tasks")
    client = create_mongo_client(backing_servers.mongo_url, event_listeners=[finds])
    db = client[unique_name("events")]
    try:
        # Many documents whose events went out, one written by someone who named nothing.
        await db.tasks.insert_many([{"_id": f"done{n}", OUTBOX_FIELD: []} for n in range(2000)])
        [doc] = task_docs(1)
        await db.tasks.insert_one(doc)
        relay = OutboxRelay(db, ["tasks"], EventPublisher(broker, exchange), service="test")
        relay.kick()  # names nothing: the next cycle scans
        _, claimed = await relay.claim()
        assert [d["_id"] for _, d in claimed] == [doc["_id"]]
        [scan] = [f for f in finds.filters if "_id" not in f]
        plan = await db.command("explain", {"find": "tasks", "filter": scan, "limit": 200})
    finally:
        await client.drop_database(db.name)
        await client.close()
    assert scans_an_index(plan), plan
