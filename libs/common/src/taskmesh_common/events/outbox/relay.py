"""The outbox relay: publishes the events producers left in their documents' ``_outbox``.

Several replicas run one each. A cycle (:meth:`OutboxRelay.run_once`):

1. pick up to ``batch_size`` documents: those producers named (``kick(collection, doc_id)``
   after their write) and, after a ``kick()`` naming nothing, on the first cycle, or while a
   scan keeps finding a backlog, unclaimed ones the pending scan finds through its index
   (:mod:`.pending`);
2. claim them and read them back (:mod:`.claims`: one ``update_many`` and one ``find`` per
   collection); a document another relay's claim holds is named again for a later cycle;
3. publish each document's entries in order with publisher confirms, stopping at its first
   failure (its later entries wait, so per-document order holds); all documents at once, up
   to the publisher's ``max_in_flight`` messages awaiting their confirms;
4. settle (:mod:`.claims`): pull the entries that went out, delete the tombstones left
   without entries, end the claims.

A started relay runs ``cycles`` (2) of them at once: one picks and claims while the other
publishes and settles, so the database's round trips overlap the broker's confirms.

Beside that loop, every ``scan_interval``, a background pass (:meth:`OutboxRelay.maintain`)
names the pending documents nobody named (another process's writes, a crash between write
and kick) for the next cycle and sets the ``outbox_pending`` gauges.

Guarantees: an entry exists only if its write happened (it is part of the write); it goes
out at least once (an entry leaves its document only after the broker confirmed it; a relay
that dies leaves its claims to expire and another publishes again, and consumers
deduplicate on the event id); while claims hold, never by two relays at once; and in its
document's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from taskmesh_common.events.envelope import OUTBOX_FIELD
from taskmesh_common.events.metrics import (
    OUTBOX_OLDEST_AGE,
    OUTBOX_PENDING,
    OUTBOX_RELAY_SECONDS,
)
from taskmesh_common.events.outbox.claims import (
    CLAIM_FIELD,
    Claimed,
    claim,
    claim_holds,
    settle,
    unclaimed,
)
from taskmesh_common.events.outbox.pending import (
    PENDING_INDEX,
    Document,
    find_pending,
    oldest_entry,
)
from taskmesh_common.events.publisher import EventPublisher, publish_in_order
from taskmesh_common.mongo import ensure_indexes

__all__ = ["OutboxRelay"]

logger = logging.getLogger("taskmesh.events.outbox")

_MAX_BACKOFF = 5.0
_MAX_HINTS = 10_000


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

    ``lease_seconds``: how long a claim holds (a dead relay's documents wait that long);
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
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.drop_unroutable = drop_unroutable
        self.scan_limit = scan_limit or 4 * batch_size
        self.scan_interval = scan_interval
        self.linger = linger
        self.cycles = cycles
        self.owner = f"{service}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tokens = itertools.count(1)
        # Documents named by producers (or held by another claim last time), per collection.
        self._hints: dict[str, dict[Any, None]] = {name: {} for name in self.collections}
        self._indexed = False
        self._scanned_at = float("-inf")
        self._scan_now = True
        self._claiming = asyncio.Lock()
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
            self._tasks = [
                asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}-{n}")
                for n in range(self.cycles)
            ]
            self._maintainer = asyncio.create_task(
                self._maintain(), name=f"outbox-relay-{self.service}-maintain"
            )

    def kick(self, collection: str | None = None, doc_id: Any = None) -> None:
        """Publish soon: call right after a write that added outbox entries.

        Naming the document (``collection``, ``doc_id``) lets the next cycle claim it by
        ``_id``; without a name the next cycle runs the pending scan.
        """
        hints = self._hints.get(collection or "")
        if hints is not None and doc_id is not None and len(hints) < _MAX_HINTS:
            hints[doc_id] = None
        else:
            self._scan_now = True  # nothing named (or too much): look for it
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

    async def _candidates(self) -> dict[str, list[Any]]:
        """Up to ``batch_size`` documents to claim: those named, then what a scan finds."""
        room = self.batch_size
        picked: dict[str, list[Any]] = {}
        for name in self.collections:
            hints = self._hints[name]
            picked[name] = list(itertools.islice(hints, room))
            for doc_id in picked[name]:
                del hints[doc_id]
            room -= len(picked[name])
        now = asyncio.get_running_loop().time()
        periodic = self._maintainer is None and now - self._scanned_at >= self.scan_interval
        if room > 0 and (self._scan_now or periodic):
            self._scanned_at, self._scan_now = now, False
            for name in self.collections:
                if room <= 0:
                    break
                with self._timed("scan"):
                    found = await find_pending(
                        self.db[name], limit=room, also=unclaimed(datetime.now(UTC))
                    )
                if len(found) >= room:
                    self._scan_now = True  # maybe more than it read: the next cycle scans on
                named = set(picked[name])
                fresh = [doc["_id"] for doc in found if doc["_id"] not in named]
                picked[name] += fresh
                room -= len(fresh)
        return picked

    async def claim(self) -> tuple[str, list[tuple[str, Claimed]]]:
        """Claim up to ``batch_size`` pending documents and read them.

        Returns the claim's token and the documents claimed, each with its collection's name.
        """
        if not self._indexed:
            await self.ensure_indexes()
        token = f"{self.owner}:{next(self._tokens)}"
        claimed: list[tuple[str, Claimed]] = []
        # One cycle picks and claims at a time: two would scan up the same documents.
        async with self._claiming:
            for name, ids in (await self._candidates()).items():
                if not ids:
                    continue
                with self._timed("claim"):
                    docs, held = await claim(self.db[name], ids, token=token, lease=self.lease)
                hints = self._hints[name]
                for doc_id in held:
                    # Another claim's (maybe this relay's other cycle): try again later.
                    if len(hints) < _MAX_HINTS:
                        hints[doc_id] = None
                claimed += [(name, doc) for doc in docs]
        return token, claimed

    async def run_once(self) -> int:
        """Claim, publish and settle one batch; returns how many documents it claimed."""
        token, claimed = await self.claim()
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
        with self._timed("settle"):
            for name in self.collections:
                done = [
                    (doc, published)
                    for (coll, doc), (published, _) in zip(claimed, outcomes, strict=True)
                    if coll == name
                ]
                await settle(self.db[name], token, done)
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
        """The background pass (see the module docstring); returns how many pending
        documents it named for the next cycle."""
        if not self._indexed:
            await self.ensure_indexes()
        named, count, oldest = 0, 0, None
        with self._timed("background"):
            for name in self.collections:
                fields = {f"{OUTBOX_FIELD}.time": 1, CLAIM_FIELD: 1}
                docs = await find_pending(self.db[name], limit=self.scan_limit, projection=fields)
                now = datetime.now(UTC)
                hints = self._hints[name]
                for doc in docs:
                    if not claim_holds(doc, now) and len(hints) < _MAX_HINTS:
                        hints[doc["_id"]] = None
                        named += 1
                n, first = oldest_entry(docs)
                count += n
                if first is not None and (oldest is None or first < oldest):
                    oldest = first
        OUTBOX_PENDING.labels(self.service).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OUTBOX_OLDEST_AGE.labels(self.service).set(max(0.0, age))
        if named:
            self._wake.set()
        return named
