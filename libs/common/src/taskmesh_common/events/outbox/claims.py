"""A relay's claim on documents with pending entries: a lease written on the document itself.

Claims serve the documents a relay found (its scans, or another process's writes); the
documents a relay's own process just wrote are read without one (:func:`read_unclaimed`),
as no other relay takes them before they are ``grace`` old (:mod:`.relay`).

Claiming is one conditional ``update_many``: on the named documents that hold a pending entry
and carry no live claim, it sets ``_outbox_claim: {by: <token>, until: <now + lease>}``. The
update is atomic per document on MongoDB and DocumentDB, so of two relays racing for one
document exactly one matches; the claimed documents are then read back by ``_id`` and token.
While a claim holds, only its holder publishes the document's entries. Producers keep
``$push``-ing entries meanwhile (they never touch the claim), so the holder publishes what it
read and later entries wait for the next claim, which keeps each document's order.

A claim left by a relay that died expires at ``until`` and the next claim takes it over; its
entries then go out again, and consumers deduplicate on the event id. ``until`` is the
claiming relay's clock: replicas' clocks must agree to well within the lease (15 s).

Settling, after the broker confirmed: one ``delete_many`` of the claimed tombstones whose every
entry went out, then one ``update_many`` that ``$pull``s the published entries by event id and
drops the claim, both conditional on the claim still being this one (a claim that expired
meanwhile belongs to its taker, who publishes and pulls those entries itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from taskmesh_common.events.envelope import DELETED_FIELD, OUTBOX_FIELD
from taskmesh_common.events.outbox.pending import PENDING, Document

__all__ = [
    "CLAIM_FIELD",
    "Claimed",
    "claim",
    "claim_holds",
    "read_unclaimed",
    "settle",
    "unclaimed",
]

CLAIM_FIELD = "_outbox_claim"
_CLAIMED_BY = f"{CLAIM_FIELD}.by"

Entry = Mapping[str, Any]
# A document as read under a claim: its ``_id``, ``_outbox`` and ``_deleted``.
Claimed = Document


def unclaimed(now: datetime) -> dict[str, Any]:
    """Documents no live claim holds: none was ever taken, or the last one expired."""
    return {"$or": [{CLAIM_FIELD: None}, {f"{CLAIM_FIELD}.until": {"$lte": now}}]}


def claim_holds(doc: Document, now: datetime) -> bool:
    """Whether ``doc`` (read with its claim field) is held by a live claim."""
    until = (doc.get(CLAIM_FIELD) or {}).get("until")
    if not isinstance(until, datetime):
        return False
    return (until if until.tzinfo is not None else until.replace(tzinfo=UTC)) > now


async def _held(
    collection: AsyncCollection[Document], ids: Sequence[Any], read: set[Any]
) -> list[Any]:
    """Those of ``ids`` not in ``read`` that still hold pending entries: a claim holds them."""
    missed = [i for i in ids if i not in read]
    if not missed:
        return []
    query = {"_id": {"$in": missed}, **PENDING}
    return [d["_id"] async for d in collection.find(query, {"_id": 1})]


async def read_unclaimed(
    collection: AsyncCollection[Document], ids: Sequence[Any]
) -> tuple[list[Claimed], list[Any]]:
    """Read those of the documents ``ids`` that hold pending entries and no live claim,
    without claiming them: one ``find``, no write.

    Returns the documents read, and the ids of those a live claim holds while they still
    have pending entries (to try again later).
    """
    if not ids:
        return [], []
    query = {"_id": {"$in": list(ids)}, **PENDING, **unclaimed(datetime.now(UTC))}
    docs = [d async for d in collection.find(query, {OUTBOX_FIELD: 1, DELETED_FIELD: 1})]
    return docs, await _held(collection, ids, {d["_id"] for d in docs})


async def claim(
    collection: AsyncCollection[Document], ids: Sequence[Any], *, token: str, lease: timedelta
) -> tuple[list[Claimed], list[Any]]:
    """Claim those of the documents ``ids`` that hold pending entries and no live claim.

    Returns the documents claimed (read after claiming), and the ids of those another
    claim holds while they still have pending entries (to try again later).
    """
    if not ids:
        return [], []
    now = datetime.now(UTC)
    await collection.update_many(
        {"_id": {"$in": list(ids)}, **PENDING, **unclaimed(now)},
        {"$set": {CLAIM_FIELD: {"by": token, "until": now + lease}}},
    )
    fields = {OUTBOX_FIELD: 1, DELETED_FIELD: 1}
    docs = [
        d async for d in collection.find({"_id": {"$in": list(ids)}, _CLAIMED_BY: token}, fields)
    ]
    return docs, await _held(collection, ids, {d["_id"] for d in docs})


async def settle(
    collection: AsyncCollection[Document],
    token: str | None,
    done: Sequence[tuple[Claimed, Sequence[Entry]]],
) -> None:
    """Remove the entries that went out from their documents and end the claim ``token``.

    ``done``: every document the claim took, with those of its entries that went out (none
    for a document whose first publish failed: its claim ends all the same). With ``token``
    None, the documents were read without a claim (:func:`read_unclaimed`): the entries are
    removed whoever holds a claim now, and no claim is touched.
    """
    if not done:
        return
    out = [entry["id"] for _, entries in done for entry in entries]
    finished = [
        doc["_id"]
        for doc, entries in done
        if doc.get(DELETED_FIELD) is True and len(entries) == len(doc.get(OUTBOX_FIELD) or [])
    ]
    held = {} if token is None else {_CLAIMED_BY: token}
    if finished:
        # Only if nothing but published entries is left: a tombstone never loses an event.
        await collection.delete_many(
            {
                "_id": {"$in": finished},
                DELETED_FIELD: True,
                **held,
                OUTBOX_FIELD: {"$not": {"$elemMatch": {"id": {"$nin": out}}}},
            }
        )
    # Event ids are unique (uuid4): pulling all of them from every document read is exact.
    pull: dict[str, Any] = {"$pull": {OUTBOX_FIELD: {"id": {"$in": out}}}}
    if token is None:
        # No claim to end: only the documents with entries out change.
        ids = [doc["_id"] for doc, entries in done if entries]
    else:
        ids = [doc["_id"] for doc, _ in done]
        pull["$unset"] = {CLAIM_FIELD: ""}
    if ids:
        await collection.update_many({"_id": {"$in": ids}, **held}, pull)
