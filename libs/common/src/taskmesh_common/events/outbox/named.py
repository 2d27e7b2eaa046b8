"""Which documents a relay's next cycles take, per collection, by ``_id``.

Two kinds (:mod:`.relay`): the documents this process wrote (``own``: read and published
without a claim), and the documents named for a claim (``to_claim``: kicks, the background
pass, documents another claim held). ``in_flight`` holds the own documents a cycle is
publishing: a later write to one of them waits in ``own`` for that cycle to end, so one
relay never publishes an entry twice. Each map holds at most ``limit`` documents; a name
that does not fit is refused, and the caller scans for it instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["Named"]


class Named:
    def __init__(self, collections: Sequence[str], *, limit: int = 10_000) -> None:
        self.limit = limit
        self.own: dict[str, dict[Any, None]] = {name: {} for name in collections}
        self.in_flight: dict[str, set[Any]] = {name: set() for name in collections}
        self.to_claim: dict[str, dict[Any, None]] = {name: {} for name in collections}

    def _add(self, names: dict[Any, None] | None, ids: Iterable[Any]) -> bool:
        if names is None:
            return False
        for doc_id in ids:
            if len(names) >= self.limit:
                return False
            names[doc_id] = None
        return True

    def add_own(self, collection: str, ids: Iterable[Any]) -> bool:
        """Name documents this process wrote; False if one did not fit (or the collection
        is not the relay's)."""
        return self._add(self.own.get(collection), ids)

    def add_to_claim(self, collection: str, ids: Iterable[Any]) -> bool:
        """Name documents for a claim; False if one did not fit (or the collection is not
        the relay's)."""
        return self._add(self.to_claim.get(collection), ids)

    def take_own(self, room: int) -> dict[str, list[Any]]:
        """Up to ``room`` own documents not in flight, now in flight, per collection."""
        taken: dict[str, list[Any]] = {}
        for name, waiting in self.own.items():
            busy = self.in_flight[name]
            free = (doc_id for doc_id in waiting if doc_id not in busy)
            taken[name] = list(itertools.islice(free, max(room, 0)))
            for doc_id in taken[name]:
                del waiting[doc_id]
            busy.update(taken[name])
            room -= len(taken[name])
        return taken

    def take_to_claim(self, room: int) -> dict[str, list[Any]]:
        """Up to ``room`` documents named for a claim, per collection."""
        taken: dict[str, list[Any]] = {}
        for name, waiting in self.to_claim.items():
            taken[name] = list(itertools.islice(waiting, max(room, 0)))
            for doc_id in taken[name]:
                del waiting[doc_id]
            room -= len(taken[name])
        return taken

    def landed(self, collection: str, ids: Iterable[Any]) -> None:
        """Own documents whose cycle ended (published, or given back by :meth:`give_back`)."""
        self.in_flight[collection].difference_update(ids)

    def give_back(self, taken: dict[str, list[Any]]) -> None:
        """Own documents a failed cycle took: named again for the next one."""
        for name, ids in taken.items():
            self.landed(name, ids)
            self.add_own(name, ids)

    def ours(self, collection: str) -> set[Any]:
        """The documents of ``collection`` this process wrote and has not published yet."""
        return set(self.own[collection]) | self.in_flight[collection]
