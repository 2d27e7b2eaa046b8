"""The outbox relay: publishes the events producers left in their documents' ``_outbox``.

Several replicas run one each. A cycle (:meth:`OutboxRelay.run_once`):

1. pick up to ``batch_size`` documents: those this process wrote (``wrote(collection,
   doc_id)`` after the write), those named for a claim (``kick(collection, doc_id)``, the
   background pass) and, after a ``kick()`` naming nothing, on the first cycle, or while a
   scan keeps finding a backlog, unclaimed ones the pending scan finds through its index
   (:mod:`.pending`);
2. read the documents this process wrote (one ``find`` per collection), and claim the others
   and read them back (:mod:`.claims`: one ``update_many`` and one ``find``); a document
   another relay's claim holds is named again for a later cycle;
3. publish each document's entries in order with publisher confirms, stopping at its first
   failure (its later entries wait, so per-document order holds); all documents at once, up
   to the publisher's ``max_in_flight`` messages awaiting their confirms;
4. settle (:mod:`.claims`): pull the entries that went out, delete the tombstones left
   without entries, end the claims.

A started relay runs ``cycles`` (2) of them at once: one picks and claims while the other
publishes and settles, so the database's round trips overlap the broker's confirms.

Beside that loop, every ``scan_interval``, a background pass (:mod:`.leftovers`) names for
a claim the pending documents nobody published within ``grace`` of their oldest entry.

Why a process's own writes go without a claim: the claim is a write of the whole document
and all its indexes, as costly as the producer's write itself
(docs/performance.md#index-write-cost). The process that wrote a document publishes it
first; no other relay takes it before ``grace`` has passed, and then under a claim.

Guarantees: an entry exists only if its write happened (it is part of the write); it goes
out at least once (an entry leaves its document only after the broker confirmed it; a relay
that dies leaves its documents to the others' background pass after ``grace`` and its claims
to expire, another publishes again, and consumers deduplicate on the event id); in its
document's order; and by one relay at a time, except when a writer is still publishing
after ``grace`` (a duplicate, which consumers drop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from pymongo.asynchronous.database import AsyncDatabase

from taskmesh_common.events.envelope import OUTBOX_FIELD
from taskmesh_common.events.metrics import (
    OUTBOX_RELAY_SECONDS,
)
from taskmesh_common.events.outbox.claims import (
    Claimed,
    settle,
)
from taskmesh_common.events.outbox.leftovers import LeftoverScan
from taskmesh_common.events.outbox.named import Named
from taskmesh_common.events.outbox.pending import (
    PENDING_INDEX,
    Document,
)
from taskmesh_common.events.outbox.picking import Batch, Picker
from taskmesh_common.events.publisher import EventPublisher, publish_in_order
from taskmesh_common.mongo import ensure_indexes

__all__ = ["OutboxRelay"]

logger = logging.getLogger("taskmesh.events.outbox")

_MAX_BACKOFF = 5.0


class OutboxRelay:
    """Publishes pending outbox entries of ``collections`` in ``db``; see the module docstring.

    ``start()`` runs it (and its background pass) in the background, ``kick()`` wakes it
    after a write (otherwise it wakes every ``poll_interval``), ``await stop()`` ends it. It
    creates the pending scan's index (:data:`~.pending.PENDING_INDEX`) on its collections.

    An event the broker returns as unroutable (no queue bound for its type) has nobody to
    go to: with ``drop_unroutable`` (the default) it is counted in
    ``events_unroutable_total``, logged and dropped, as a non-mandatory publish would be,
    instead of blocking the outbox until some consumer binds. Consumers' queues are
    durable, so this only concerns types no consumer has ever subscribed to.

    ``lease_seconds``: how long a claim holds (a dead relay's claimed documents wait that
    long); ``grace_seconds``: how long after its oldest entry a document another process
    wrote is left to that process before the background pass names it for a claim;
    ``scan_limit`` (default 4 x ``batch_size``): how many pending documents the background
    pass reads at most; ``scan_interval``: how often it runs, the longest an unnamed entry
    waits (a relay driven by ``run_once()`` alone scans in its cycle instead); ``linger``:
    how long a relay woken by a kick waits for more writes to publish with the first;
    ``cycles``: how many cycles the started relay runs at once (each claims in turn, then
    publishes and settles while the next claims: the database's round trips overlap the
    broker's confirms).
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        collections: Sequence[str],
        publisher: EventPublisher,
        *,
        service: str,
        lease_seconds: float = 15,
        grace_seconds: float = 5,
        batch_size: int = 200,
        poll_interval: float = 0.25,
        drop_unroutable: bool = True,
        scan_limit: int | None = None,
        scan_interval: float = 15.0,
        linger: float = 0.02,
        cycles: int = 2,
    ) -> None:
        self.db = db
        self.collections = list(collections)
        self.publisher = publisher
        self.service = service
        self.lease = timedelta(seconds=lease_seconds)
        self.grace = timedelta(seconds=grace_seconds)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.drop_unroutable = drop_unroutable
        self.scan_limit = scan_limit or 4 * batch_size
        self.scan_interval = scan_interval
        self.linger = linger
        self.cycles = cycles
        self.owner = f"{service}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.named = Named(self.collections)
        self.picker = Picker(
            db,
            self.collections,
            self.named,
            owner=self.owner,
            batch_size=batch_size,
            lease=self.lease,
            scan_interval=scan_interval,
            timed=self._timed,
        )
        self.leftovers = LeftoverScan(
            db,
            self.collections,
            self.named,
            service=service,
            grace=self.grace,
            scan_limit=self.scan_limit,
            timed=self._timed,
        )
        self._indexed = False
        self._starting = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._maintainer: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        """Adds the time spent in ``step`` to ``outbox_relay_seconds``."""
        began = time.perf_counter()
        try:
            yield
        finally:
            OUTBOX_RELAY_SECONDS.labels(self.service, step).inc(time.perf_counter() - began)

    def start(self) -> None:
        if not self._tasks:
            self._stopping.clear()
            # The tasks inherit a context with the client libraries' instrumentation off: the
            # relay's reads and writes belong to no request, and each would start a trace of
            # one span. Its publish spans are its own and follow each event's trace.
            with suppress_instrumentation():
                self._tasks = [
                    asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}-{n}")
                    for n in range(self.cycles)
                ]
                self._maintainer = asyncio.create_task(
                    self._maintain(), name=f"outbox-relay-{self.service}-maintain"
                )

    def wrote(self, collection: str, doc_id: Any) -> None:
        """Publish soon: call right after this process wrote outbox entries into a document.

        The next cycle reads it by ``_id`` and publishes it without a claim; no other relay
        takes it before ``grace`` (see the module docstring).
        """
        if not self.named.add_own(collection, [doc_id]):
            self.picker.scan_soon()  # too much: look for it
        self._wake.set()

    def kick(self, collection: str | None = None, doc_id: Any = None) -> None:
        """Publish soon: call right after a write that added outbox entries.

        Naming the document (``collection``, ``doc_id``) lets the next cycle claim it by
        ``_id``; without a name the next cycle runs the pending scan. The process that
        wrote the document calls :meth:`wrote` instead, which spares the claim.
        """
        if doc_id is None or not self.named.add_to_claim(collection or "", [doc_id]):
            self.picker.scan_soon()  # nothing named (or too much): look for it
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        maintainer, self._maintainer = self._maintainer, None
        for running in [*tasks, maintainer]:
            if running is not None:
                with contextlib.suppress(TimeoutError):
                    # Cancelled after that: its claims expire after the lease.
                    await asyncio.wait_for(running, timeout=self.publisher.confirm_timeout + 5)

    async def ensure_indexes(self) -> None:
        """Create the pending scan's index on every collection (a no-op once there)."""
        await ensure_indexes(self.db, {name: [PENDING_INDEX] for name in self.collections})
        self._indexed = True

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                async with self._starting:  # one publisher channel for all cycles
                    if not self.publisher.started:
                        # No claims while the broker is away: other replicas may reach it.
                        timeout = min(5.0, self.lease.total_seconds() / 2)
                        await self.publisher.start(timeout=timeout)
                claimed = await self.run_once()
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

    async def _sleep(self, seconds: float) -> None:
        """Sleep until a kick (or stop), or ``seconds``."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        else:
            if self.linger > 0 and not self._stopping.is_set():
                # Woken by a write: let the writes right behind it join this cycle.
                await asyncio.sleep(self.linger)
        self._wake.clear()

    async def take(self) -> Batch:
        """Read up to ``batch_size`` pending documents: this process's own writes as they
        are, the others under a new claim (:class:`~.picking.Picker`)."""
        if not self._indexed:
            await self.ensure_indexes()
        return await self.picker.take(periodic_scans=self._maintainer is None)

    async def claim(self) -> tuple[str, list[tuple[str, Claimed]]]:
        """:meth:`take`, as the claim's token and every document read, each with its
        collection's name."""
        batch = await self.take()
        return batch.token, batch.documents

    async def run_once(self) -> int:
        """Read, publish and settle one batch; returns how many documents it read."""
        batch = await self.take()
        try:
            return await self._publish(batch)
        finally:
            for name, doc in batch.own:
                self.named.landed(name, [doc["_id"]])

    async def _publish(self, batch: Batch) -> int:
        claimed = batch.documents
        if not claimed:
            return 0
        with self._timed("publish"):
            outcomes = await asyncio.gather(
                *(
                    publish_in_order(
                        self.publisher,
                        doc[OUTBOX_FIELD],
                        service=self.service,
                        drop_unroutable=self.drop_unroutable,
                    )
                    for _, doc in claimed
                )
            )
        own = len(batch.own)
        with self._timed("settle"):
            for name in self.collections:
                for token, part in ((None, slice(0, own)), (batch.token, slice(own, None))):
                    done = [
                        (doc, published)
                        for (coll, doc), (published, _) in zip(
                            claimed[part], outcomes[part], strict=True
                        )
                        if coll == name
                    ]
                    await settle(self.db[name], token, done)
        for n, ((name, doc), (published, _)) in enumerate(zip(claimed, outcomes, strict=True)):
            if len(published) < len(doc[OUTBOX_FIELD]):
                # Its publish failed: the next cycle after the back-off tries it again.
                again = self.named.add_own if n < own else self.named.add_to_claim
                again(name, [doc["_id"]])
        failure = next((error for _, error in outcomes if error is not None), None)
        if failure is not None:
            raise failure  # the loop backs off and retries what is left
        return len(claimed)

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
        """The background pass (:mod:`.leftovers`); returns how many pending documents it
        named for the next cycle."""
        if not self._indexed:
            await self.ensure_indexes()
        named = await self.leftovers.run()
        if named:
            self._wake.set()
        return named
