"""Listing tasks: filters, sort orders and the opaque keyset cursor.

A cursor is base64url(JSON) of the sort's name and the sort key of the last task on
the page (always ending with the task id, so keys are unique and a page boundary is
exact). Walking by key rather than by offset is what makes every task appear exactly
once even while tasks are added or changed between pages.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tasks_service.domain.errors import InvalidCursor
from tasks_service.domain.model import Priority, Status, Task

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "NO_DUE_DATE",
    "SORT_KEYS",
    "SortKey",
    "SortOrder",
    "TaskFilter",
    "decode_cursor",
    "encode_cursor",
    "sort_values",
]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_CURSOR_CHARS = 512
# Tasks without a due date sort after every dated one: they are the least pressing.
NO_DUE_DATE = datetime(9999, 12, 31, tzinfo=UTC)


class SortOrder(StrEnum):
    NEWEST_FIRST = "-created_at"
    OLDEST_FIRST = "created_at"
    DUE_DATE = "due_date"
    PRIORITY = "priority"


class SortKey(StrEnum):
    """The components a sort key is made of (the repository maps them to stored fields)."""

    CREATED_AT = "created_at"
    DUE = "due"
    PRIORITY_RANK = "priority_rank"
    ID = "id"


# Each order ends with the id, so no two tasks share a key.
SORT_KEYS: dict[SortOrder, tuple[tuple[SortKey, int], ...]] = {
    SortOrder.NEWEST_FIRST: ((SortKey.CREATED_AT, -1), (SortKey.ID, -1)),
    SortOrder.OLDEST_FIRST: ((SortKey.CREATED_AT, 1), (SortKey.ID, 1)),
    SortOrder.DUE_DATE: ((SortKey.DUE, 1), (SortKey.ID, 1)),
    SortOrder.PRIORITY: ((SortKey.PRIORITY_RANK, 1), (SortKey.CREATED_AT, -1), (SortKey.ID, -1)),
}

_DATETIME_KEYS = frozenset({SortKey.CREATED_AT, SortKey.DUE})


@dataclass(frozen=True, slots=True)
class TaskFilter:
    owner_id: str
    status: Status | None = None
    priority: Priority | None = None
    tag: str | None = None
    q: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None


def sort_values(task: Task, order: SortOrder) -> list[Any]:
    values: dict[SortKey, Any] = {
        SortKey.CREATED_AT: task.created_at,
        SortKey.DUE: task.due_date or NO_DUE_DATE,
        SortKey.PRIORITY_RANK: task.priority.rank,
        SortKey.ID: task.id,
    }
    return [values[key] for key, _ in SORT_KEYS[order]]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _millis(value: datetime) -> int:
    # Integer arithmetic: float timestamps can lose the last millisecond.
    return (value - _EPOCH) // _MILLISECOND


def encode_cursor(order: SortOrder, values: list[Any]) -> str:
    encoded = [_millis(v) if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"s": order.value, "k": encoded}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, order: SortOrder) -> list[Any]:
    """The sort key a cursor carries; InvalidCursor for anything we did not issue."""
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise InvalidCursor("too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor() from None
    if not isinstance(payload, dict) or set(payload) != {"s", "k"}:
        raise InvalidCursor()
    if payload["s"] != order.value:
        raise InvalidCursor("issued for another sort order")
    keys = SORT_KEYS[order]
    encoded = payload["k"]
    if not isinstance(encoded, list) or len(encoded) != len(keys):
        raise InvalidCursor()
    return [_decode_value(key, value) for (key, _), value in zip(keys, encoded, strict=True)]


def _decode_value(key: SortKey, value: Any) -> Any:
    # bool is an int in Python; a cursor holding `true` was not made by us.
    if key in _DATETIME_KEYS:
        if type(value) is not int:
            raise InvalidCursor()
        try:
            return _EPOCH + value * _MILLISECOND
        except (OverflowError, ValueError):
            raise InvalidCursor() from None
    if key is SortKey.PRIORITY_RANK:
        if type(value) is not int or not 0 <= value <= len(Priority):
            raise InvalidCursor()
        return value
    if not isinstance(value, str):
        raise InvalidCursor()
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidCursor() from None
