"""The outbox relay: publishes the events producers left in their documents' ``_outbox``.

Several replicas run one each. Documents are spread over ``partitions`` by a hash of their
id; a relay reads a partition's documents for publishing only while it holds that
partition's lease (see :mod:`.leases`: exclusive on FerretDB too, where conditional updates
are not atomic). Eight by default: at least the tasks service's most replicas (6), so each
replica's relay can hold one at once, and few, because at a steady pace every partition a
hold's writes land in is one more taking of leases (16 took FerretDB 1.73 ms an event at
120 writes/s, 8 took 1.32, docs/performance.md). Replicas must agree on the number: while
old and new overlap in a rolling change of it, an entry may go out twice (consumers
deduplicate), never not at all. A cycle:

1. claim: take the documents producers named when they kicked the relay (``kick(collection,
   doc_id)``; a producer that inserted the document may pass its outbox along, which spares
   the read below while only this relay can have recorded those entries) and, after a
   ``kick()`` naming nothing (or while a scan keeps finding a backlog), scan for documents
   with a pending entry (entry ids and times only; the scan reads the whole collection on
   FerretDB, so a relay does not poll with it), skipping those whose entries are all
   recorded as published (looked up by ``_id`` in ``outbox_published``); lease their
   partitions, read the leased documents by ``_id`` (``_id``, ``_outbox``) and cut each
   outbox to the entries not yet recorded. An entry written after this relay became its
   partition's only holder (the leases' ``sole_since``: every generation since is its own)
   is not looked up, by the claim, its scan or the background pass: only this relay can
   have recorded it, and it remembers what it recorded (the newest ``_MAX_RECORDED``;
   forgetting one, or a record that failed, starts every partition afresh). With one relay
   at work, that saves a lookup per entry;
2. publish each document's entries in order with publisher confirms, stopping at a
   document's first failure (its later entries wait, so per-document order holds);
3. record the confirmed entries with one ``insert_many(ordered=False)`` in
   ``outbox_published`` (see :mod:`.published`): the only write on the hot path, instead
   of one read-then-replace update per document (40x dearer on FerretDB 1.24/SQLite);
4. release the leases, unless more is already waiting: a busy relay keeps its partitions for
   the next cycles, up to ``lease_hold`` after it took them (taking and giving back cost
   four round trips a cycle, two of them reading the whole leases collection on FerretDB:
   at a steady 50 writes/s a third of the relay's time). The relay's own loop also keeps
   them while writes keep coming, each within ``lease_grace`` of the cycle before: at a
   steady pace a cycle often ends with nothing waiting, and taking the partitions again for
   the next write cost FerretDB a sixth of its CPU per event at 120 writes/s, the write's
   own insert included (docs/performance.md).

Producers only ``$push`` and need no change. The recorded entries are removed from their
documents lazily, by the relay's sweep (:mod:`.sweep`), under the same leases and, where
``locks`` are given, each document under its producers' lock; records are deleted only once
their entries are gone, so an entry is always either in ``outbox_published`` or out of its
document, and never published again. The sweep has low priority: it runs when a cycle found
nothing to publish, at most every ``sweep_interval``, unless swept-late documents crowd the
pending scan (it skips them but still reads them) or this relay recorded ``max_unswept``
entries since its last sweep. A burst of writes is published first and swept after; under
load that never pauses, the backlog bound makes the sweep keep pace. A sweep that is not
forced goes ``_SWEEP_SLICE`` documents at a time and stops as soon as a write is waiting.
Entries this relay recorded itself are skipped from memory, without asking
``outbox_published``.

Beside the publishing loop, every ``scan_interval``, a background pass (:meth:`maintain`)
reads the pending documents once: it names those nobody named (another process's writes,
a crash between write and kick) for the next cycle and sets the ``outbox_pending`` gauges;
every ``_TOMBSTONES_EVERY`` passes it also deletes tombstones a crash left empty. It only
reads and takes document locks (no leases), so it never holds the publishing loop up:
those full-collection reads, run inside the loop, were the pipeline's lag tail (seconds at
a steady 60 writes/s, docs/performance.md).

Guarantees: an entry exists only if its write happened (it is part of the write); it goes
out at least once (a relay that dies before recording leaves its leases to expire and
another publishes again; consumers deduplicate on the event id), normally once (recorded
entries are skipped, and records outlive their entries), and in its document's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import socket
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.database import AsyncDatabase

from taskmesh_common.events.envelope import DELETED_FIELD, OUTBOX_FIELD
from taskmesh_common.events.leases import Leases
from taskmesh_common.events.metrics import (
    OUTBOX_OLDEST_AGE,
    OUTBOX_PENDING,
    OUTBOX_RELAY_SECONDS,
)
from taskmesh_common.events.pending import (
    PENDING,
    entry_time,
    oldest_entry,
    pending_entries,
    read_unpublished,
    scan_pending,
)
from taskmesh_common.events.published import PUBLISHED_COLLECTION, only_unpublished, record
from taskmesh_common.events.publisher import EventPublisher, publish_in_order
from taskmesh_common.events.sweep import drop_empty_tombstones, sweep
from taskmesh_common.locks import DocumentLocks

__all__ = ["LEASES_COLLECTION", "PENDING", "ClaimedDocument", "OutboxRelay"]

logger = logging.getLogger("taskmesh.events.relay")

LEASES_COLLECTION = "outbox_leases"
_MAX_BACKOFF = 5.0
_MAX_HINTS = 10_000
# Documents a sweep that yields to writes takes at once (~0.1 s on FerretDB under load).
_SWEEP_SLICE = 16
# Empty tombstones are a crash's leftovers: looked for (a full read) every fourth pass.
_TOMBSTONES_EVERY = 4
_MAX_RECORDED = 50_000

Document = dict[str, Any]
Entry = Mapping[str, Any]
ClaimedDocument = tuple[str, Document]  # (collection, document as read under the lease)


def _partition(collection: str, number: int) -> str:
    """A partition's lease key."""
    return f"{collection}|{number}"


class OutboxRelay:
    """Publishes pending outbox entries of ``collections`` in ``db``; see the module docstring.

    ``start()`` runs it (and its background pass) in the background, ``kick()`` wakes it
    after a write (otherwise it wakes every ``poll_interval``), ``await stop()`` ends it.

    An event the broker returns as unroutable (no queue bound for its type) has nobody to
    go to: with ``drop_unroutable`` (the default) it is counted in
    ``events_unroutable_total``, logged and dropped, as a non-mandatory publish would be,
    instead of blocking the outbox until some consumer binds. Consumers' queues are
    durable, so this only concerns types no consumer has ever subscribed to.

    ``locks`` (collection name -> :class:`~taskmesh_common.locks.DocumentLocks`) makes the
    sweep's writes to those collections' documents one per document, each under the lock
    its producers write under, ``lock_parallelism`` at a time: needed on FerretDB, whose
    updates are not atomic (see :mod:`.sweep`). Without, one batched write (MongoDB).
    ``sweep_batch`` (default ``batch_size`` / 4) bounds the entries one sweep handles per
    collection, ``sweep_interval`` how often an idle relay sweeps (producers get the locks
    in between), ``scan_limit`` (default 4 x ``batch_size``) how many documents a claim's
    pending scan reads past published-but-not-yet-swept ones (and the background pass reads
    at most), ``scan_interval`` how often the background pass looks for pending documents
    nobody named (another process's writes, a crash between write and kick): the longest
    such an entry waits (a relay driven by ``run_once()`` alone scans in its cycle instead),
    ``max_unswept`` (default 20 x ``batch_size``) how many recorded entries a busy relay
    leaves in their documents before it sweeps anyway, ``linger`` how long a relay woken by
    a kick waits for more writes to publish with the first (each cycle costs a few round
    trips whatever its size: leases, records), ``lease_hold`` how long a busy relay keeps the
    partitions it took for its next cycles (another replica waits at most that long for
    one of them), ``lease_grace`` how long the started relay waits for the next write
    before it gives back partitions nothing is waiting for, ``clock_skew`` how far a
    producer's clock may run ahead of this relay's (entry times are the producer's; see
    the module docstring, step 1).
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        collections: Sequence[str],
        publisher: EventPublisher,
        *,
        service: str,
        lease_seconds: float = 15,
        batch_size: int = 200,
        poll_interval: float = 0.25,
        partitions: int = 8,
        drop_unroutable: bool = True,
        locks: Mapping[str, DocumentLocks] | None = None,
        lock_parallelism: int = 16,
        sweep_batch: int | None = None,
        sweep_interval: float = 0.5,
        scan_limit: int | None = None,
        scan_interval: float = 15.0,
        max_unswept: int | None = None,
        linger: float = 0.02,
        lease_hold: float = 0.5,
        lease_grace: float = 0.1,
        clock_skew: float = 5.0,
    ) -> None:
        self.db = db
        self.collections = list(collections)
        self.publisher = publisher
        self.service = service
        self.lease = timedelta(seconds=lease_seconds)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.partitions = partitions
        self.drop_unroutable = drop_unroutable
        self.locks = dict(locks or {})
        self.lock_parallelism = lock_parallelism
        self.sweep_batch = sweep_batch or max(1, batch_size // 4)
        self.sweep_interval = sweep_interval
        self.scan_limit = scan_limit or 4 * batch_size
        self.published = db[PUBLISHED_COLLECTION]
        self.owner = f"{service}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leases = Leases(db[LEASES_COLLECTION], owner=self.owner, duration=self.lease)
        self.scan_interval = scan_interval
        self.max_unswept = max_unswept or 20 * batch_size
        self.linger = linger
        self.lease_hold = lease_hold
        self.lease_grace = lease_grace
        self.clock_skew = timedelta(seconds=clock_skew)
        self._held: dict[str, int] = {}  # partitions kept from the last cycle (key: gen)
        self._held_at = 0.0
        # Documents named by producers, each with its outbox when the producer knew it.
        self._hints: dict[str, dict[Any, list[Entry] | None]] = {
            name: {} for name in self.collections
        }
        self._scanned_at = float("-inf")
        self._scan_now = True
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._maintainer: asyncio.Task[None] | None = None
        self._passes = 0
        self._sweep_due = True  # records of a previous run may be waiting
        self._swept_at = float("-inf")
        self._stale = 0  # published-but-not-yet-swept documents the last scan read past
        self._unswept = 0  # entries this relay recorded since its sweep last finished
        # Entry ids this relay recorded as published (the newest _MAX_RECORDED): claims
        # skip them without asking the database.
        self._recorded: dict[Any, None] = {}
        # The same entries' values as stored, encoded (BSON, ~1 KB each; none of
        # tombstones): the sweep pulls them by these without reading their documents, and
        # drops each it used. Twice the backlog bound: the sweep takes the oldest records
        # first, so a bound at the backlog's size would have dropped just those.
        self._values: dict[Any, RawBSONDocument] = {}

    @contextlib.contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        """Adds the time spent in ``step`` to ``outbox_relay_seconds``."""
        began = time.perf_counter()
        try:
            yield
        finally:
            OUTBOX_RELAY_SECONDS.labels(self.service, step).inc(time.perf_counter() - began)

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}")
            self._maintainer = asyncio.create_task(
                self._maintain(), name=f"outbox-relay-{self.service}-maintain"
            )

    def kick(
        self,
        collection: str | None = None,
        doc_id: Any = None,
        outbox: Sequence[Entry] | None = None,
    ) -> None:
        """Publish soon: call right after a write that added outbox entries.

        Naming the document (``collection``, ``doc_id``) lets the next cycle read it by
        ``_id``; without a name the next cycle runs the pending scan, which reads the whole
        collection on FerretDB. The background pass also finds, every ``scan_interval``,
        what nobody named (another process's writes, a crash between write and kick).

        ``outbox``: the document's whole ``_outbox`` as the write left it, which a producer
        knows only when it inserted the document. While this relay alone has held the
        document's partition since those entries were written (see :meth:`_unrecorded`),
        the cycle publishes them without reading the document: nobody else can have
        published them, and entries added later come after them, so order holds. Otherwise,
        or when the document was named again before the cycle, it is read as usual.
        """
        hints = self._hints.get(collection or "")
        if hints is not None and doc_id is not None and len(hints) < _MAX_HINTS:
            # Named twice before a cycle: something else may have been written since.
            hints[doc_id] = None if outbox is None or doc_id in hints else list(outbox)
        else:
            self._scan_now = True  # nothing named (or too much): look for it
        self._wake.set()

    @property
    def unswept(self) -> int:
        """Entries this relay published and has not yet swept from their documents."""
        return self._unswept

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        maintainer, self._maintainer = self._maintainer, None
        for running in (task, maintainer):
            if running is not None:
                try:
                    await asyncio.wait_for(running, timeout=self.publisher.confirm_timeout + 5)
                except TimeoutError:
                    pass  # wait_for cancelled it; its leases expire
        with contextlib.suppress(Exception):
            await self._give_back()  # otherwise they expire

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                if not self.publisher.started:
                    # No leases while the broker is away: other replicas may still reach it.
                    await self.publisher.start(timeout=min(5.0, self.lease.total_seconds() / 2))
                claimed = await self.run_once(hold=True)
                since = asyncio.get_running_loop().time() - self._swept_at
                quiet = claimed == 0 and self._sweep_due and since >= self.sweep_interval
                crowded = self._stale >= self.batch_size // 2 or self._unswept >= self.max_unswept
                if quiet or crowded:
                    await self.sweep(yielding=not crowded, hold=True)
                if self._held and not self._writes_waiting():
                    # Kept from a cycle that published: kept while writes keep coming,
                    # given back once none came for lease_grace.
                    if not await self._woken_within(self.lease_grace):
                        await self._give_back()
            except Exception as exc:
                logger.warning(
                    "outbox relay cycle failed, backing off",
                    extra={"error": f"{type(exc).__name__}: {exc}", "delay": delay},
                )
                await self._sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            delay = 0.2
            if claimed < self.batch_size:
                await self._sleep(self.poll_interval)

    async def _woken_within(self, seconds: float) -> bool:
        """Whether a kick (or stop) comes within ``seconds``; leaves it set for ``_sleep``."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def _sleep(self, seconds: float) -> None:
        if await self._woken_within(seconds) and self.linger > 0 and not self._stopping.is_set():
            # Woken by a write: let the writes right behind it join this cycle.
            await asyncio.sleep(self.linger)
        self._wake.clear()

    def partition_key(self, collection: str, doc_id: Any) -> str:
        partition = zlib.crc32(f"{collection}|{doc_id!r}".encode()) % self.partitions
        return _partition(collection, partition)

    async def _scan(self, candidates: list[tuple[str, Any]]) -> None:
        """Add to ``candidates`` what the pending scan finds, up to ``batch_size`` in all."""
        self._stale = 0
        for name in self.collections:
            room = self.batch_size - len(candidates)
            if room <= 0:
                break
            with self._timed("scan"):
                ids, stale = await scan_pending(
                    self.db[name],
                    self.published,
                    room=room,
                    scan_limit=self.scan_limit,
                    known=self._recorded,
                    # Only picks candidates: the claim reads them again under the lease.
                    unrecorded=functools.partial(self._unrecorded, name),
                )
            named = {i for n, i in candidates if n == name}
            candidates += [(name, i) for i in ids if i not in named]
            self._stale += stale
            if len(ids) >= room:
                self._scan_now = True  # a backlog: the next cycle scans again
        self._sweep_due = self._sweep_due or self._stale > 0

    async def claim(self) -> tuple[list[ClaimedDocument], dict[str, int]]:
        """Lease the partitions of up to ``batch_size`` pending documents and read them.

        Returns the documents read under the leases, each ``_outbox`` cut to the entries
        not yet published, and the leases this relay holds (those it kept from its last
        cycle included).
        """
        candidates: list[tuple[str, Any]] = []
        given: dict[tuple[str, Any], list[Entry]] = {}  # outboxes the producers passed
        for name in self.collections:
            hints = self._hints[name]
            for doc_id in list(itertools.islice(hints, self.batch_size - len(candidates))):
                outbox = hints.pop(doc_id)
                candidates.append((name, doc_id))
                if outbox:
                    given[(name, doc_id)] = outbox
        now = asyncio.get_running_loop().time()
        periodic = self._maintainer is None and now - self._scanned_at >= self.scan_interval
        if len(candidates) < self.batch_size and (self._scan_now or periodic):
            self._scanned_at, self._scan_now = now, False
            await self._scan(candidates)
        if not candidates:
            return [], {}
        if self._held and now - self._held_at >= self.lease_hold:
            await self._give_back()  # held long enough: other replicas get their turn
        with self._timed("lease"):
            await self.acquire({self.partition_key(n, i) for n, i in candidates})
        held = dict(self._held)
        for name, doc_id in candidates:
            if self.partition_key(name, doc_id) not in held:
                # Another relay's partition: try again later (named again meanwhile: read).
                hints = self._hints[name]
                hints[doc_id] = None if doc_id in hints else given.get((name, doc_id))
        claimed: list[ClaimedDocument] = []
        for name in self.collections:
            mine = [i for n, i in candidates if n == name and self.partition_key(n, i) in held]
            if not mine:
                continue
            unrecorded = functools.partial(self._unrecorded, name)
            known, read = [], []
            for doc_id in mine:
                doc = {"_id": doc_id, OUTBOX_FIELD: given.get((name, doc_id))}
                if doc[OUTBOX_FIELD] and all(unrecorded(doc, e) for e in doc[OUTBOX_FIELD]):
                    known.append(doc)
                else:
                    read.append(doc_id)
            with self._timed("read"):
                # Looks up nothing: every entry is one only this relay can have recorded.
                docs, _ = await only_unpublished(self.published, known, self._recorded, unrecorded)
                if read:
                    # Read after the lease is ours: nothing the previous holder recorded
                    # is missed.
                    docs += await read_unpublished(
                        self.db[name], self.published, read, self._recorded, unrecorded
                    )
            claimed += [(name, d) for d in docs]
        return claimed, held

    def _unrecorded(self, name: str, doc: Document, entry: Entry) -> bool:
        """Whether no other relay can have recorded ``entry``: it was written after this
        relay became the only holder of its document's partition, so only this relay can
        have published it, and what this relay recorded is in ``_recorded``."""
        since = self.leases.sole_since.get(self.partition_key(name, doc["_id"]))
        written = entry_time(entry)
        return since is not None and written is not None and written > since + self.clock_skew

    def _remembered(self, ids: Sequence[Any]) -> list[Mapping[str, Any]] | None:
        """The entries ``ids`` as this relay published them, if it still holds them all
        (see :mod:`.sweep`); handed out once, so a sweep that fails with them reads next."""
        values = [self._values.pop(i, None) for i in ids]
        if any(value is None for value in values):
            return None
        return [value for value in values if value is not None]

    def _look_up_all_again(self) -> None:
        """Stop trusting this relay's memory of what it recorded for entries written so
        far: they are looked up again (partitions count as solely held from their next
        taking)."""
        self.leases.sole_since.clear()

    async def run_once(self, *, hold: bool = False) -> int:
        """Claim, publish and settle one batch; returns how many documents it claimed.

        The leases are given back at the end unless more writes are already waiting, or
        ``hold`` (the relay's own loop, which gives them back after ``lease_grace`` without
        a write).
        """
        try:
            claimed, held = await self.claim()
        except Exception:
            with contextlib.suppress(Exception):
                await self._give_back()
            raise
        if not held:
            await self._give_back()
            return 0
        keep = False
        try:
            publish = functools.partial(
                publish_in_order, service=self.service, drop_unroutable=self.drop_unroutable
            )
            with self._timed("publish"):
                outcomes = await asyncio.gather(
                    *(publish(self.publisher, doc[OUTBOX_FIELD]) for _, doc in claimed)
                )
            failure = next((error for _, error in outcomes if error is not None), None)
            for name in self.collections:
                done = [
                    (doc, published)
                    for (coll, doc), (published, _) in zip(claimed, outcomes, strict=True)
                    if coll == name and published
                ]
                await self._settle(name, done)
            busy = hold or self._writes_waiting()
            keep = failure is None and busy and not self._stopping.is_set()
        finally:
            if not keep:
                await self._give_back()
        if failure is not None:
            raise failure  # the loop backs off and retries what is left
        return len(claimed)

    async def _settle(self, name: str, done: Sequence[tuple[Document, Sequence[Entry]]]) -> None:
        """Record the published entries: one insert; the sweep pulls them later."""
        if not any(entries for _, entries in done):
            return
        with self._timed("record"):
            try:
                await record(self.published, name, [(doc["_id"], entries) for doc, entries in done])
            except Exception:
                # Some records may have been written without this relay knowing which.
                self._look_up_all_again()
                raise
        for doc, entries in done:
            for entry in entries:
                self._recorded[entry["id"]] = None
                self._unswept += 1
                if name in self.locks and not doc.get(DELETED_FIELD):
                    # Only the locked sweep (FerretDB) pulls by them; MongoDB's reads all.
                    self._values[entry["id"]] = RawBSONDocument(bson.encode(entry))
        for oldest in list(
            itertools.islice(self._values, max(0, len(self._values) - 2 * self.max_unswept))
        ):
            del self._values[oldest]
        excess = len(self._recorded) - _MAX_RECORDED
        if excess > 0:
            self._look_up_all_again()  # forgotten records are no longer known by memory
        for oldest in list(itertools.islice(self._recorded, max(0, excess))):
            del self._recorded[oldest]
        self._sweep_due = True

    async def sweep(
        self, *, tombstones: bool = False, yielding: bool = False, hold: bool = False
    ) -> int:
        """Pull up to ``sweep_batch`` published entries from their documents (see
        :mod:`.sweep`); ``yielding``: ``_SWEEP_SLICE`` at a time, stopping early once a
        write is waiting to be published.

        The partitions it needs join those this relay holds (taken once for all its
        slices, and not again where a cycle holds them already), given back at the end
        unless ``hold`` (the relay's own loop: see :meth:`run_once`).

        Returns how many ``outbox_published`` records it deleted; with ``tombstones`` it
        also deletes tombstones whose outbox is empty.
        """
        swept, left, complete = 0, self.sweep_batch, True
        try:
            with self._timed("sweep"):
                while left > 0:
                    limit = min(left, _SWEEP_SLICE) if yielding else left
                    n, complete = await sweep(
                        self.db,
                        self.collections,
                        self.published,
                        leases=_Kept(self),
                        partition_key=self.partition_key,
                        locks=self.locks,
                        parallel=self.lock_parallelism,
                        limit=limit,
                        tombstones=tombstones,
                        remembered=self._remembered,
                    )
                    swept, left, tombstones = swept + n, left - limit, False
                    if complete or (yielding and self._writes_waiting()):
                        break
        except BaseException:
            with contextlib.suppress(Exception):
                await self._give_back()
            raise
        if not hold:
            await self._give_back()
        self._sweep_due = not complete
        self._stale = 0
        self._unswept = max(0, self._unswept - swept)
        self._swept_at = asyncio.get_running_loop().time()
        return swept

    async def acquire(self, keys: Iterable[str], *, every: bool = False) -> dict[str, int]:
        """Those of the partitions ``keys`` this relay holds, after taking those of them it
        did not hold that are free (``every``: then every free partition, for what comes
        next)."""
        wanted = set(keys)
        missing = wanted - self._held.keys()
        if missing and every:
            every_key = {_partition(n, p) for n in self.collections for p in range(self.partitions)}
            missing = every_key - self._held.keys()
        if missing:
            taken = await self.leases.acquire(missing)
            if taken and not self._held:
                self._held_at = asyncio.get_running_loop().time()
            self._held.update(taken)
        return {key: gen for key, gen in self._held.items() if key in wanted}

    def _writes_waiting(self) -> bool:
        return self._scan_now or any(self._hints.values())

    async def _give_back(self) -> None:
        """Release the partitions this relay holds (only after settling what it read under
        them: the next holder reads what is really left)."""
        held, self._held = self._held, {}
        if held:
            with self._timed("lease"):
                await self.leases.release(held)

    async def _maintain(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.maintain()
            except Exception as exc:
                logger.warning(
                    "outbox relay background pass failed",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.scan_interval)

    async def maintain(self) -> int:
        """The background pass (see the module docstring); returns how many pending
        documents it named for the next cycle."""
        named, count, oldest, stale = 0, 0, None, 0
        with self._timed("background"):
            for name in self.collections:
                docs, skipped = await pending_entries(
                    self.db[name],
                    self.published,
                    limit=self.scan_limit,
                    known=self._recorded,
                    unrecorded=functools.partial(self._unrecorded, name),
                )
                hints = self._hints[name]
                for doc in docs:
                    if len(hints) < _MAX_HINTS:
                        hints[doc["_id"]] = None
                if docs and len(docs) + skipped >= self.scan_limit:
                    self._scan_now = True  # maybe more than it read: the cycles scan on
                n, first = oldest_entry(docs)
                named, count, stale = named + len(docs), count + n, stale + skipped
                if first is not None and (oldest is None or first < oldest):
                    oldest = first
                if self._passes % _TOMBSTONES_EVERY == 0:
                    await drop_empty_tombstones(
                        self.db[name], self.locks.get(name), limit=self.sweep_batch
                    )
        self._passes += 1
        self._stale = stale
        self._sweep_due = self._sweep_due or stale > 0
        OUTBOX_PENDING.labels(self.service).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OUTBOX_OLDEST_AGE.labels(self.service).set(max(0.0, age))
        if named:
            self._wake.set()
        return named


class _Kept:
    """A relay's partitions as its sweep takes them (:class:`~.sweep.PartitionLeases`):
    what the sweep takes is kept with them, and given back with them."""

    def __init__(self, relay: OutboxRelay) -> None:
        self.relay = relay

    async def acquire(self, keys: Iterable[str]) -> dict[str, int]:
        return await self.relay.acquire(keys, every=True)

    async def release(self, held: dict[str, int]) -> None:
        pass  # with the relay's own: _give_back
