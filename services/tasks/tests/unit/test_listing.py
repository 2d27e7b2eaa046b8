"""Cursor encoding: opaque, round-trips exactly, and refuses anything we did not issue."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from tasks_service.domain.errors import InvalidCursor
from tasks_service.domain.listing import (
    NO_DUE_DATE,
    SortOrder,
    decode_cursor,
    encode_cursor,
    sort_values,
)
from tasks_service.domain.model import Priority, new_task

WHEN = datetime(2026, 3, 1, 12, 0, 0, 999000, tzinfo=UTC)


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("order", list(SortOrder))
def test_cursor_round_trips_the_sort_key_of_every_order(order: SortOrder) -> None:
    task = new_task(owner_id="u", title="t", priority=Priority.HIGH, due_date=WHEN, now=WHEN)
    values = sort_values(task, order)
    cursor = encode_cursor(order, values)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor, order) == values


def test_a_task_without_due_date_sorts_last_and_round_trips() -> None:
    task = new_task(owner_id="u", title="t", now=WHEN)
    values = sort_values(task, SortOrder.DUE_DATE)
    assert values[0] == NO_DUE_DATE
    assert decode_cursor(encode_cursor(SortOrder.DUE_DATE, values), SortOrder.DUE_DATE) == values


def test_a_cursor_for_another_sort_order_is_refused() -> None:
    task = new_task(owner_id="u", title="t", now=WHEN)
    cursor = encode_cursor(SortOrder.NEWEST_FIRST, sort_values(task, SortOrder.NEWEST_FIRST))
    with pytest.raises(InvalidCursor, match="another sort"):
        decode_cursor(cursor, SortOrder.OLDEST_FIRST)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "x" * 600,
        _raw([1, 2]),
        _raw({"s": "-created_at"}),
        _raw({"s": "-created_at", "k": [1]}),
        _raw({"s": "-created_at", "k": ["2026-01-01", str(uuid.uuid4())]}),
        _raw({"s": "-created_at", "k": [True, str(uuid.uuid4())]}),
        _raw({"s": "-created_at", "k": [10**20, str(uuid.uuid4())]}),
        _raw({"s": "-created_at", "k": [0, {"$gt": ""}]}),
        _raw({"s": "-created_at", "k": [0, "not-a-uuid"]}),
        _raw({"s": "-created_at", "k": [0, str(uuid.uuid4())], "x": 1}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_malformed_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, SortOrder.NEWEST_FIRST)


def test_a_priority_cursor_with_an_impossible_rank_is_refused() -> None:
    cursor = _raw({"s": "priority", "k": [99, 0, str(uuid.uuid4())]})
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, SortOrder.PRIORITY)
