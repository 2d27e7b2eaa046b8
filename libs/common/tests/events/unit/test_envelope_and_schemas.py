"""Envelope, schemas and outbox entries: pure, no I/O."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError
from taskmesh_common.events import (
    EVENT_DATA_MODELS,
    Envelope,
    InvalidEvent,
    UnknownEventType,
    outbox_entry,
    validate_event,
)
from taskmesh_common.events.envelope import envelope_body
from taskmesh_common.events.examples import EXAMPLE_DATA, example_envelope
from taskmesh_common.events.schemas import TaskState


def user_deleted_data() -> dict[str, object]:
    return {"user_id": "u1", "deleted_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}


def test_outbox_entry_is_a_json_ready_envelope_with_headers():
    entry = outbox_entry("user.deleted", "u1", user_deleted_data(), source="auth")
    assert set(entry) == {
        "id",
        "type",
        "source",
        "time",
        "subject",
        "data_version",
        "data",
        "headers",
    }
    assert uuid.UUID(entry["id"]).version == 4
    assert entry["source"] == "taskmesh/auth"
    assert entry["data_version"] == 1
    assert entry["data"] == {"user_id": "u1", "deleted_at": "2026-01-02T03:04:05Z"}
    assert entry["time"].endswith("Z")
    json.dumps(entry)  # storable and publishable as is


def test_outbox_entry_records_the_current_trace(monkeypatch):
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        entry = outbox_entry("user.deleted", "u1", user_deleted_data(), source="taskmesh/auth")
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert entry["headers"]["traceparent"].split("-")[1] == trace_id


def test_outbox_entry_without_a_trace_has_no_traceparent():
    entry = outbox_entry("user.deleted", "u1", user_deleted_data(), source="taskmesh/auth")
    assert "traceparent" not in entry["headers"]


def test_outbox_entry_refuses_unknown_fields():
    data = {**user_deleted_data(), "password_hash": "x"}
    with pytest.raises(InvalidEvent, match="password_hash"):
        outbox_entry("user.deleted", "u1", data, source="auth")


def test_outbox_entry_refuses_an_unknown_event_type():
    with pytest.raises(UnknownEventType):
        outbox_entry("user.exploded", "u1", user_deleted_data(), source="auth")


def test_outbox_entry_refuses_naive_datetimes():
    data = {"user_id": "u1", "deleted_at": datetime(2026, 1, 1)}
    with pytest.raises(InvalidEvent, match="deleted_at"):
        outbox_entry("user.deleted", "u1", data, source="auth")


def test_outbox_entry_accepts_the_data_model_itself():
    state = TaskState.model_validate(EXAMPLE_DATA["task.created"])
    entry = outbox_entry("task.created", state.task_id, state, source="taskmesh/tasks")
    assert entry["data"]["title"] == state.title


def test_envelope_time_is_normalised_to_utc():
    fields = example_envelope("user.deleted")
    fields["time"] = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))).isoformat()
    envelope = Envelope.model_validate(fields)
    assert envelope.time == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert json.loads(envelope.model_dump_json())["time"] == "2026-01-01T10:00:00Z"


def test_envelope_body_holds_exactly_the_envelope_fields():
    entry = outbox_entry("user.deleted", "u1", user_deleted_data(), source="auth")
    body = json.loads(envelope_body(entry))
    assert "headers" not in body
    assert Envelope.model_validate(body).id == entry["id"]


def test_envelope_without_timezone_is_refused():
    fields = {**example_envelope("user.deleted"), "time": "2026-01-01T10:00:00"}
    with pytest.raises(ValidationError):
        Envelope.model_validate(fields)


@pytest.mark.parametrize("event_type", sorted(EVENT_DATA_MODELS))
def test_every_example_is_accepted_by_its_model(event_type):
    envelope = Envelope.model_validate(example_envelope(event_type))
    assert isinstance(validate_event(envelope), EVENT_DATA_MODELS[event_type])


def test_validate_event_refuses_data_of_another_type():
    fields = {**example_envelope("task.deleted"), "data": EXAMPLE_DATA["user.deleted"]}
    with pytest.raises(InvalidEvent):
        validate_event(Envelope.model_validate(fields))


def test_validate_event_refuses_an_unknown_data_version():
    fields = {**example_envelope("user.deleted"), "data_version": 2}
    with pytest.raises(InvalidEvent, match="data_version"):
        validate_event(Envelope.model_validate(fields))
