"""Published entries are recorded in ``outbox_published`` and swept from documents later.

Between the two, an entry is still in its document but must never go out again: not to
two racing relays, not after a restart, not after a crash before the sweep.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import bson
import pytest
from bson.raw_bson import RawBSONDocument
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import DELETED_FIELD, OUTBOX_FIELD, OutboxRelay
from taskmesh_common.events.leases import Leases
from taskmesh_common.events.published import PUBLISHED_COLLECTION
from taskmesh_common.locks import DocumentLocks
from taskmesh_common.testing import unique_name

pytestmark = pytest.mark.integration

PENDING = {f"{OUTBOX_FIELD}.0": {"$exists": True}}


def without_sweep(relay: OutboxRelay) -> OutboxRelay:
    """A relay that records what it published but never pulls it from the documents."""

    async def no_sweep(
        *, tombstones: bool = False, yielding: bool = False, hold: bool = False
    ) -> int:
        return 0

    relay.sweep = no_sweep  # type: ignore[method-assign]
    return relay


async def run_for(relays: list[OutboxRelay], spy: Any, expected: int) -> None:
    for relay in relays:
        relay.start()
    try:
        await spy.collect(expected, timeout=20)
        await spy.quiet_for(1.0)
    finally:
        for relay in relays:
            await relay.stop()
            await relay.publisher.close()


async def drained(db: Any, timeout: float = 20.0) -> None:
    async def poll() -> None:
        while await db.tasks.count_documents(PENDING) or await db[
            PUBLISHED_COLLECTION
        ].count_documents({}):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def run_until_drained(relay: OutboxRelay, db: Any, spy: Any) -> None:
    """Run ``relay`` until every outbox is empty and swept, and nothing more arrives."""
    relay.start()
    try:
        await drained(db)
        await spy.quiet_for(0.5)
    finally:
        await relay.stop()
        await relay.publisher.close()


async def test_published_but_unswept_entries_never_go_out_again_racing_or_restarted(
    broker, backing_servers, db, exchange, spy, task_docs, relay_for
):
    docs = task_docs(60, updated=20)
    await db.tasks.insert_many(docs)
    expected = sorted(e["id"] for d in docs for e in d[OUTBOX_FIELD])

    other = BrokerConnection(backing_servers.amqp_url, name=unique_name("relay-b"))
    other.start()
    try:
        racing = [
            without_sweep(relay_for(db, broker, exchange, batch_size=15)),
            without_sweep(relay_for(db, other, exchange, batch_size=15)),
        ]
        await run_for(racing, spy, len(expected))
        # Out, recorded, and still in the documents: nothing swept them.
        assert await db.tasks.count_documents(PENDING) == len(docs)
        assert await db[PUBLISHED_COLLECTION].count_documents({}) == len(expected)

        # A restart (a new relay, sweep still off) finds nothing to publish...
        await run_for([without_sweep(relay_for(db, broker, exchange))], spy, len(expected))
        # ... and one with its sweep empties the outboxes, still publishing nothing.
        await run_until_drained(relay_for(db, other, exchange), db, spy)
    finally:
        await other.close()
    ids = Counter(m.message_id for m in spy.messages)
    assert sorted(ids) == expected
    assert set(ids.values()) == {1}


@pytest.mark.parametrize("locked", [False, True], ids=["batched", "locked"])
async def test_sweep_removes_published_entries_and_tombstones(
    broker, db, exchange, spy, make_task_created, locked, task_docs, relay_for
):
    live, deleted, empty_tombstone = task_docs(3)
    deleted[DELETED_FIELD] = True
    empty_tombstone[DELETED_FIELD] = True
    empty_tombstone[OUTBOX_FIELD] = []  # left so by a crash after its last pull
    await db.tasks.insert_many([live, deleted, empty_tombstone])
    locks = {"tasks": DocumentLocks(db[unique_name("locks")])} if locked else None
    relay = relay_for(db, broker, exchange, locks=locks)
    await relay.publisher.start(timeout=10)
    try:
        assert await relay.run_once() == 2
        await spy.collect(2)
        assert await db.tasks.count_documents(PENDING) == 2
        assert await relay.run_once() == 0  # recorded: not claimed again

        assert await relay.sweep() == 2
        assert await db[PUBLISHED_COLLECTION].count_documents({}) == 0
        remaining = {d["_id"]: d async for d in db.tasks.find({})}
        assert set(remaining) == {live["_id"], empty_tombstone["_id"]}
        assert remaining[live["_id"]][OUTBOX_FIELD] == []

        await relay.sweep(tombstones=True)
        assert [d["_id"] async for d in db.tasks.find({})] == [live["_id"]]
        assert await relay.run_once() == 0
    finally:
        await relay.publisher.close()
    assert len(await spy.quiet_for(0.5)) == 2


async def test_crash_between_recording_and_sweep_loses_and_duplicates_nothing(
    broker, db, exchange, spy, make_task_created, task_docs, relay_for
):
    docs = task_docs(5)
    await db.tasks.insert_many(docs)
    dead = relay_for(db, broker, exchange, lease_seconds=1.5)

    async def killed(held: dict[str, int]) -> None:
        pass  # the process died right after recording: no release, no sweep

    dead.leases.release = killed  # type: ignore[method-assign]
    await dead.publisher.start(timeout=10)
    assert await dead.run_once() == 5
    await dead.publisher.close()
    await spy.collect(5)
    assert await db[PUBLISHED_COLLECTION].count_documents({}) == 5
    # A producer writes again to one of the documents meanwhile: that event must go out.
    later = make_task_created(task_id=docs[0]["_id"], version=2)
    await db.tasks.update_one({"_id": docs[0]["_id"]}, {"$push": {OUTBOX_FIELD: later}})

    await run_until_drained(relay_for(db, broker, exchange), db, spy)
    ids = Counter(m.message_id for m in spy.messages)
    assert sorted(ids) == sorted([d[OUTBOX_FIELD][0]["id"] for d in docs] + [later["id"]])
    assert set(ids.values()) == {1}


async def test_a_lease_is_exclusive_until_released_or_expired(db):
    a = Leases(db.leases, owner="a", duration=timedelta(seconds=1))
    b = Leases(db.leases, owner="b", duration=timedelta(seconds=30))
    held = await a.acquire(["k1", "k2"])
    assert held == {"k1": 1, "k2": 1}
    assert await b.acquire(["k1", "k2", "k3"]) == {"k3": 1}
    await a.release({"k1": 1})
    assert await b.acquire(["k1", "k2"]) == {"k1": 3}  # generation 2 marks the release
    await asyncio.sleep(1.1)
    assert await b.acquire(["k2"]) == {"k2": 2}  # a's lease expired
    await a.release(held)  # too late: changes nothing
    assert await a.acquire(["k1", "k2", "k3"]) == {}
    await b.release({"k3": 1})
    for _ in range(6):
        again = await b.acquire(["k3"])
        assert again
        await b.release(again)
    assert await db.leases.count_documents({"key": "k3"}) <= 8


async def test_a_lease_knows_since_when_its_owner_alone_has_held_each_key(db):
    a = Leases(db.leases, owner="a", duration=timedelta(seconds=30))
    b = Leases(db.leases, owner="b", duration=timedelta(seconds=30))
    held = await a.acquire(["k"])
    since = a.sole_since["k"]
    await a.release(held)
    await a.release(await a.acquire(["k"]))
    assert a.sole_since["k"] == since  # nobody else in between
    await b.release(await b.acquire(["k"]))
    assert await a.acquire(["k"])
    assert a.sole_since["k"] > since  # b held it meanwhile: from now on


class Counted:
    """A collection counting the reads made through it (``find_one``, ``find``): lookups
    in ``outbox_published``, or reads of the documents themselves."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)

    async def find_one(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return await self.collection.find_one(*args, **kwargs)

    def find(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return self.collection.find(*args, **kwargs)


async def named(relay: OutboxRelay, db: Any, docs: list[dict[str, Any]]) -> None:
    """Write ``docs`` and name them to ``relay``, as the tasks service does."""
    await db.tasks.insert_many(docs)
    for doc in docs:
        relay.kick("tasks", doc["_id"])


async def each_out_once(relays: list[OutboxRelay], spy: Any, docs: list[Any]) -> None:
    """Close the relays' publishers; every entry of ``docs`` went out exactly once."""
    for relay in relays:
        await relay.publisher.close()
    expected = Counter(e["id"] for d in docs for e in d[OUTBOX_FIELD])
    await spy.collect(sum(expected.values()))
    await spy.quiet_for(1.0)
    assert Counter(m.message_id for m in spy.messages) == expected


async def test_a_relay_alone_on_a_partition_publishes_new_entries_without_looking_them_up(
    broker, db, exchange, spy, task_docs, relay_for
):
    # Named documents only: no pending scan (it looks up what it finds, and is not timed here).
    relay = relay_for(db, broker, exchange, partitions=1, clock_skew=0, scan_interval=3600)
    relay = without_sweep(relay)
    published = relay.published = Counted(relay.published)  # type: ignore[assignment]
    await relay.publisher.start(timeout=10)
    earlier = task_docs(3)  # written before it held the partition: maybe recorded by another
    await named(relay, db, earlier)
    assert await relay.run_once() == 3
    assert published.reads >= 3
    later = task_docs(4)
    await named(relay, db, later)
    before = published.reads
    assert await relay.run_once() == 4
    assert published.reads == before  # only this relay held the partition since
    await relay.publisher.close()
    messages = await spy.collect(7)
    await spy.quiet_for(0.5)
    expected = [d[OUTBOX_FIELD][0]["id"] for d in earlier + later]
    assert sorted(m.message_id for m in messages) == sorted(expected)


async def test_an_entry_another_relay_recorded_meanwhile_is_not_published_again(
    broker, db, exchange, spy, task_docs, relay_for
):
    a = without_sweep(relay_for(db, broker, exchange, partitions=1, clock_skew=0))
    b = without_sweep(relay_for(db, broker, exchange, partitions=1, clock_skew=0))
    for relay in (a, b):
        await relay.publisher.start(timeout=10)
    first = task_docs(1)
    await named(a, db, first)
    assert await a.run_once() == 1  # a holds the partition, alone so far
    second = task_docs(1)  # written while a was the partition's last holder
    await named(b, db, second)
    assert await b.run_once() == 1  # b takes it, publishes and records, gives it back
    a.kick("tasks", second[0]["_id"])
    assert await a.run_once() == 0  # a knows b held it: it looks, and finds it recorded
    await each_out_once([a, b], spy, first + second)


class CountedReads:
    """The relay's database, counting the reads of documents in ``tasks``."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.tasks = Counted(db.tasks)

    @property
    def reads(self) -> int:
        return self.tasks.reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    def __getitem__(self, name: str) -> Any:
        return self.tasks if name == "tasks" else self.db[name]


async def inserted(relay: OutboxRelay, db: Any, docs: list[dict[str, Any]]) -> None:
    """Insert ``docs`` and name each to ``relay`` with its outbox, as the tasks service does."""
    await db.tasks.insert_many(docs)
    for doc in docs:
        relay.kick("tasks", doc["_id"], doc[OUTBOX_FIELD])


async def test_an_inserted_document_named_with_its_outbox_goes_out_without_a_read(
    broker, db, exchange, spy, task_docs, relay_for
):
    relay = relay_for(db, broker, exchange, partitions=1, clock_skew=0, scan_interval=3600)
    relay = without_sweep(relay)
    reads = relay.db = CountedReads(db)  # type: ignore[assignment]
    published = relay.published = Counted(relay.published)  # type: ignore[assignment]
    await relay.publisher.start(timeout=10)
    earlier = task_docs(2)  # written before it held the partition: read and looked up
    await inserted(relay, db, earlier)
    assert await relay.run_once() == 2
    assert reads.reads >= 1 and published.reads >= 2

    later = task_docs(3, updated=1)  # the first holds two entries: both go, in order
    await inserted(relay, db, later)
    before = (reads.reads, published.reads)
    assert await relay.run_once() == 3
    assert (reads.reads, published.reads) == before

    # Named again after a write the kick does not describe: read, so the new entry goes too.
    again = task_docs(1)
    await inserted(relay, db, again)
    update = dict(again[0][OUTBOX_FIELD][0], id=unique_name("event"), type="task.updated")
    await db.tasks.update_one({"_id": again[0]["_id"]}, {"$push": {OUTBOX_FIELD: update}})
    relay.kick("tasks", again[0]["_id"])
    assert await relay.run_once() == 1
    assert reads.reads == before[0] + 1
    await relay.publisher.close()

    docs = earlier + later + again
    expected = [e["id"] for d in docs for e in d[OUTBOX_FIELD]] + [update["id"]]
    messages = await spy.collect(len(expected))
    await spy.quiet_for(0.5)
    assert sorted(m.message_id for m in messages) == sorted(expected)
    order = [m.message_id for m in messages]
    first, second = (e["id"] for e in later[0][OUTBOX_FIELD])
    assert order.index(first) < order.index(second)
    assert order.index(again[0][OUTBOX_FIELD][0]["id"]) < order.index(update["id"])


async def test_an_outbox_passed_for_a_partition_another_relay_held_is_read_again(
    broker, db, exchange, spy, task_docs, relay_for
):
    """Another relay may have published the entries and swept them, records and all:
    only the document tells."""
    a = without_sweep(relay_for(db, broker, exchange, partitions=1, clock_skew=0))
    b = relay_for(db, broker, exchange, partitions=1, clock_skew=0)
    for relay in (a, b):
        await relay.publisher.start(timeout=10)
    first = task_docs(1)
    await inserted(a, db, first)
    assert await a.run_once() == 1  # a holds the partition, alone so far
    second = task_docs(1)
    await inserted(b, db, second)
    assert await b.run_once() == 1  # b takes it, publishes and records, gives it back
    await b.sweep()  # and pulls the entry from its document, then deletes the record
    assert (
        await db[PUBLISHED_COLLECTION].find_one({"_id": second[0][OUTBOX_FIELD][0]["id"]}) is None
    )
    assert await db.tasks.count_documents({"_id": second[0]["_id"], **PENDING}) == 0
    a.kick("tasks", second[0]["_id"], second[0][OUTBOX_FIELD])
    assert await a.run_once() == 0  # a knows b held it: it reads, and finds nothing left
    await each_out_once([a, b], spy, first + second)


async def test_the_sweep_pulls_what_the_relay_published_without_reading_the_documents(
    broker, db, exchange, spy, task_docs, relay_for
):
    locks = DocumentLocks(db["task_write_locks"])
    # A backlog of eight entries, twice the bound: the sweep takes the oldest first, and
    # the relay still holds their values.
    relay = relay_for(
        db, broker, exchange, locks={"tasks": locks}, scan_interval=3600, max_unswept=4
    )
    await relay.publisher.start(timeout=10)
    docs = task_docs(4, updated=2)  # passed with their kicks, as the tasks service does
    await inserted(relay, db, docs)
    assert await relay.run_once() == 4
    read = task_docs(2)  # named without their outboxes: read, then remembered as read
    await named(relay, db, read)
    assert await relay.run_once() == 2
    reads = relay.db = CountedReads(db)  # type: ignore[assignment]

    assert await relay.sweep() == 8
    assert reads.reads == 0
    assert await db.tasks.count_documents(PENDING) == 0
    assert await db[PUBLISHED_COLLECTION].count_documents({}) == 0
    await relay.publisher.close()
    await spy.collect(8)
    await spy.quiet_for(0.5)
    assert len(spy.messages) == 8


async def test_a_remembered_value_the_document_does_not_hold_leaves_its_record_for_a_read(
    broker, db, exchange, spy, task_docs, relay_for
):
    """Were the values not the stored ones, the pull would change nothing: the record must
    stay (deleting it would let the entry go out again), and the next sweep reads."""
    locks = DocumentLocks(db["task_write_locks"])
    relay = relay_for(db, broker, exchange, locks={"tasks": locks}, scan_interval=3600)
    await relay.publisher.start(timeout=10)
    docs = task_docs(2)
    await inserted(relay, db, docs)
    assert await relay.run_once() == 2
    wrong = docs[0][OUTBOX_FIELD][0]["id"]
    changed = {**relay._values[wrong], "subject": "not what was stored"}
    relay._values[wrong] = RawBSONDocument(bson.encode(changed))
    reads = relay.db = CountedReads(db)  # type: ignore[assignment]

    assert await relay.sweep() == 1  # the other document only
    assert reads.reads == 0
    assert await db[PUBLISHED_COLLECTION].find_one({"_id": wrong}) is not None
    assert await db.tasks.count_documents(PENDING) == 1

    assert await relay.sweep() == 1  # read this time
    assert reads.reads == 1
    assert await db.tasks.count_documents(PENDING) == 0
    assert await db[PUBLISHED_COLLECTION].count_documents({}) == 0
    assert await relay.run_once() == 0  # nothing pending: nothing goes out again
    await relay.publisher.close()
    await spy.collect(2)
    await spy.quiet_for(0.5)
    assert sorted(m.message_id for m in spy.messages) == sorted(
        d[OUTBOX_FIELD][0]["id"] for d in docs
    )


async def test_a_busy_relay_publishes_first_and_sweeps_once_its_backlog_bound_is_reached(
    broker, db, exchange, spy, task_docs, relay_for
):
    """The sweep waits for a quiet moment (here: an hour) unless the relay recorded
    `max_unswept` entries since it last swept."""
    relay = relay_for(db, broker, exchange, sweep_interval=3600, max_unswept=3)
    relay.start()
    try:
        await asyncio.sleep(0.3)  # its first sweep (of an earlier run's records) is done
        first = task_docs(2)
        await db.tasks.insert_many(first)
        for doc in first:
            relay.kick("tasks", doc["_id"])
        await spy.collect(2)
        await asyncio.sleep(0.5)
        # Published, recorded, and still in their documents: below the bound, not swept.
        assert await db.tasks.count_documents(PENDING) == 2
        assert await db[PUBLISHED_COLLECTION].count_documents({}) == 2

        second = task_docs(2)
        await db.tasks.insert_many(second)
        for doc in second:
            relay.kick("tasks", doc["_id"])
        await spy.collect(4)

        await drained(db, 10)  # four recorded: over the bound, swept
        assert await db[PUBLISHED_COLLECTION].count_documents({}) == 0
    finally:
        await relay.stop()
        await relay.publisher.close()
    assert len(await spy.quiet_for(0.5)) == 4


async def test_a_sweep_that_yields_to_writes_stops_after_one_slice_once_a_write_waits(
    broker, db, exchange, task_docs, relay_for
):
    """The sweep the relay runs in a quiet moment takes 16 documents at a time and gives
    the loop back to publishing as soon as a write is waiting; a forced one does not."""
    relay = relay_for(db, broker, exchange, sweep_batch=40)
    await relay.publisher.start(timeout=10)
    try:
        await db.tasks.insert_many(task_docs(40))
        assert await relay.run_once() == 40
        assert await relay.sweep(yielding=True) == 40  # nothing waiting: slice after slice

        await db.tasks.insert_many(task_docs(40))
        assert await relay.run_once() == 40
        relay.kick("tasks", "written-meanwhile")
        assert await relay.sweep(yielding=True) == 16
        assert await db[PUBLISHED_COLLECTION].count_documents({}) == 24
        assert await relay.sweep() == 24
        assert await db.tasks.count_documents(PENDING) == 0
    finally:
        await relay.publisher.close()


async def latest_generations(db: Any) -> Counter[str]:
    """Each partition's latest lease generation: one more for every taking and giving back."""
    latest: Counter[str] = Counter()
    async for lease in db.outbox_leases.find({}, {"key": 1, "gen": 1}):
        latest[lease["key"]] = max(latest[lease["key"]], lease["gen"])
    return latest


async def test_a_sweep_takes_the_partitions_once_for_all_its_slices(
    broker, db, exchange, task_docs, relay_for
):
    """Three slices of 16 documents over 16 partitions: each slice would need most of the
    partitions again, a lease read, insert and delete each time, if it took its own."""
    relay = relay_for(db, broker, exchange, partitions=16, sweep_batch=48)
    await relay.publisher.start(timeout=10)
    try:
        await db.tasks.insert_many(task_docs(48))
        assert await relay.run_once() == 48
        before = await latest_generations(db)
        assert await relay.sweep(yielding=True) == 48
        after = await latest_generations(db)
        assert await db.tasks.count_documents(PENDING) == 0
    finally:
        await relay.publisher.close()
    # Taken once and given back once: two generations a partition at most.
    assert max(after[key] - before[key] for key in after) == 2
