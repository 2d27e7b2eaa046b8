from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from analytics_service.adapters.store import decode_entry, encode_entry
from analytics_service.domain.model import (
    TaskRemoval,
    TaskSnapshot,
    day_of,
    entry_key,
    fact_from_removal,
    fact_from_snapshot,
    stats_entry,
    supersedes,
)

CREATED = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def make_snapshot(**overrides: object) -> TaskSnapshot:
    fields: dict[str, object] = {
        "task_id": "t1",
        "owner_id": "u1",
        "version": 1,
        "status": "todo",
        "priority": "medium",
        "due_date": None,
        "created_at": CREATED,
        "updated_at": CREATED,
        "completed_at": None,
    }
    fields.update(overrides)
    return TaskSnapshot(**fields)  # type: ignore[arg-type]


def test_only_a_strictly_newer_version_supersedes_a_fact() -> None:
    assert supersedes(1, None)
    assert supersedes(3, 2)
    assert not supersedes(2, 2)
    assert not supersedes(1, 2)


def test_days_are_utc_days_whatever_the_offset_of_the_moment() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert day_of(datetime(2026, 3, 2, 1, 0, tzinfo=plus_two)) == "2026-03-01"
    assert day_of(datetime(2026, 3, 2, 1, 0)) == "2026-03-02"


def test_a_done_task_counts_its_completion_day_and_duration() -> None:
    done_at = CREATED + timedelta(hours=1)
    fact = fact_from_snapshot(make_snapshot(status="done", completed_at=done_at, version=2))
    assert fact["created_day"] == "2026-03-01"
    assert fact["completed_day"] == "2026-03-02"
    assert fact["completion_seconds"] == 3600.0
    assert fact["deleted"] is False


def test_a_reopened_task_carries_no_completion() -> None:
    fact = fact_from_snapshot(make_snapshot(status="in_progress", completed_at=None, version=3))
    assert fact["completed_day"] is None
    assert fact["completion_seconds"] is None


def test_a_done_task_without_completed_at_falls_back_to_its_update_time() -> None:
    updated = CREATED + timedelta(days=2)
    fact = fact_from_snapshot(make_snapshot(status="done", updated_at=updated))
    assert fact["completed_day"] == "2026-03-03"


def test_a_tombstone_counts_nowhere_but_keeps_the_version() -> None:
    deleted_at = CREATED + timedelta(days=1)
    fact = fact_from_removal(TaskRemoval("t1", "u1", 7, deleted_at))
    assert fact["version"] == 7
    assert fact["deleted"] is True
    assert fact["created_day"] is None and fact["completed_day"] is None
    assert fact["changed_at"] == deleted_at


def test_plain_task_ids_are_their_own_keys_and_others_are_hashed() -> None:
    assert entry_key("65f0c0ffee") == "65f0c0ffee"
    dotted = entry_key("a.b")
    assert "." not in dotted and not dotted.startswith("$")
    assert dotted == entry_key("a.b") != entry_key("a.c")
    assert not entry_key("$where").startswith("$")


def test_a_stats_entry_keeps_what_the_summary_and_timeline_need() -> None:
    done_at = CREATED + timedelta(hours=1)
    fact = fact_from_snapshot(make_snapshot(status="done", completed_at=done_at, version=2))
    assert stats_entry(fact) == {
        "v": 2,
        "s": "done",
        "p": "medium",
        "cd": "2026-03-01",
        "kd": "2026-03-02",
        "cs": 3600.0,
        "due": None,
        "at": CREATED,
    }
    tombstone = fact_from_removal(TaskRemoval("t1", "u1", 3, done_at))
    assert stats_entry(tombstone) == {"v": 3, "x": True, "at": done_at}


def test_stored_entries_come_back_as_they_were_made_to_the_millisecond() -> None:
    done = stats_entry(
        fact_from_snapshot(
            make_snapshot(
                version=3,
                status="done",
                due_date=CREATED + timedelta(days=2, microseconds=1500),
                updated_at=CREATED + timedelta(hours=5),
                completed_at=CREATED + timedelta(hours=5),
            )
        )
    )
    open_task = stats_entry(fact_from_snapshot(make_snapshot(version=1)))
    gone = stats_entry(fact_from_removal(TaskRemoval("t1", "u1", 4, CREATED + timedelta(days=1))))
    for entry in (done, open_task, gone):
        stored = encode_entry(entry)
        assert isinstance(stored, str)
        back = decode_entry(stored)
        expected = dict(entry)
        if expected.get("due") is not None:
            # BSON keeps milliseconds, and so does the stored entry.
            expected["due"] = expected["due"].replace(microsecond=1000)
        assert back == expected
    assert decode_entry(encode_entry(done))["cs"] == done["cs"] == 5 * 3600.0


def test_entries_stored_as_documents_by_earlier_versions_still_read() -> None:
    entry = stats_entry(fact_from_snapshot(make_snapshot()))
    assert decode_entry(entry) == entry
