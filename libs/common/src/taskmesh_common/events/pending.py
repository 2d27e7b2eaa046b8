"""Finding and reading pending outbox entries: those not recorded in ``outbox_published``.

A document matches :data:`PENDING` while its ``_outbox`` holds anything, published entries
the sweep has not pulled yet included; these helpers skip the published ones (see
:mod:`.relay`).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from taskmesh_common.events.envelope import DELETED_FIELD, OUTBOX_FIELD
from taskmesh_common.events.published import Document, only_unpublished
from taskmesh_common.mongo import find_by_ids

__all__ = [
    "PENDING",
    "entry_time",
    "oldest_entry",
    "pending_entries",
    "read_unpublished",
    "scan_pending",
]

PENDING: dict[str, Any] = {f"{OUTBOX_FIELD}.0": {"$exists": True}}
_ENTRY_FIELDS = {f"{OUTBOX_FIELD}.id": 1, f"{OUTBOX_FIELD}.time": 1}


async def scan_pending(
    collection: AsyncCollection[Document],
    published: AsyncCollection[Document],
    *,
    room: int,
    scan_limit: int,
    known: Container[Any] = (),
    unrecorded: Callable[[Document, Mapping[str, Any]], bool] | None = None,
) -> tuple[list[Any], int]:
    """Ids of up to ``room`` documents with unpublished entries, read page by page.

    Reads at most ``scan_limit`` documents (entry ids and times). Returns the ids, and how
    many documents it read past because all their entries were published (the sweep's
    backlog). ``known``, ``unrecorded``: see
    :func:`~taskmesh_common.events.published.only_unpublished`.
    """
    found: list[Any] = []
    stale = 0
    page: list[Document] = []

    async def check() -> None:
        nonlocal stale
        fresh, skipped = await only_unpublished(published, page, known, unrecorded)
        found.extend(d["_id"] for d in fresh)
        stale += skipped
        page.clear()

    seen = 0
    cursor = collection.find(PENDING, _ENTRY_FIELDS, batch_size=room)
    try:
        async for doc in cursor:
            page.append(doc)
            seen += 1
            if len(page) >= room - len(found) or seen >= scan_limit:
                await check()
                if len(found) >= room or seen >= scan_limit:
                    break
        if page:
            await check()
    finally:
        await cursor.close()
    return found[:room], stale


async def read_unpublished(
    collection: AsyncCollection[Document],
    published: AsyncCollection[Document],
    ids: list[Any],
    known: Container[Any] = (),
    unrecorded: Callable[[Document, Mapping[str, Any]], bool] | None = None,
) -> list[Document]:
    """The documents ``ids`` (``_id``, ``_outbox``, ``_deleted``; read by ``_id``, see
    :func:`~taskmesh_common.mongo.find_by_ids`), outboxes cut to what is not yet published
    (:func:`~taskmesh_common.events.published.only_unpublished`); documents with nothing
    left are left out."""
    found = await find_by_ids(collection, ids, {OUTBOX_FIELD: 1, DELETED_FIELD: 1})
    docs = [doc for doc in found.values() if doc.get(OUTBOX_FIELD)]
    return (await only_unpublished(published, docs, known, unrecorded))[0]


async def pending_entries(
    collection: AsyncCollection[Document],
    published: AsyncCollection[Document],
    *,
    limit: int,
    known: Container[Any] = (),
    unrecorded: Callable[[Document, Mapping[str, Any]], bool] | None = None,
) -> tuple[list[Document], int]:
    """Up to ``limit`` documents with a pending entry (``_id``, ``_outbox.id``,
    ``_outbox.time``), outboxes cut to what is not yet published; returns those with
    something left, and how many were all published (the sweep's backlog)."""
    docs = [d async for d in collection.find(PENDING, _ENTRY_FIELDS, limit=limit)]
    return await only_unpublished(published, docs, known, unrecorded)


def entry_time(entry: Mapping[str, Any]) -> datetime | None:
    """When an outbox entry's event happened (its ``time``, UTC when naive); None when it
    has no readable time."""
    value = entry.get("time")
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def oldest_entry(docs: Sequence[Document]) -> tuple[int, datetime | None]:
    """How many entries ``docs`` hold, and the oldest one's time."""
    count, oldest = 0, None
    for doc in docs:
        for entry in doc.get(OUTBOX_FIELD) or []:
            count += 1
            when = entry_time(entry)
            if when is not None and (oldest is None or when < oldest):
                oldest = when
    return count, oldest
