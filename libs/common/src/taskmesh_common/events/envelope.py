"""The wire envelope of every event, and the outbox entries producers write with their change.

An outbox entry is the envelope's JSON fields plus ``headers`` (the W3C trace context of
the request that caused the event), so a relay publishing it later continues that trace.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from taskmesh_common.events.schemas import DATA_VERSION, validate_data

__all__ = [
    "DELETED_FIELD",
    "ENVELOPE_FIELDS",
    "OUTBOX_FIELD",
    "Envelope",
    "envelope_body",
    "outbox_entry",
    "trace_headers",
]

# The array of pending entries inside an aggregate document.
OUTBOX_FIELD = "_outbox"
# Marks a deleted aggregate kept as a tombstone until its last events are published.
DELETED_FIELD = "_deleted"

_UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
ENVELOPE_FIELDS = ("id", "type", "source", "time", "subject", "data_version", "data")


class Envelope(BaseModel):
    """One event as it travels: ``{id, type, source, time, subject, data_version, data}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_UUID_PATTERN, description="uuid4; also the AMQP message_id")
    type: str = Field(
        pattern=r"^[a-z][a-z_]*\.[a-z][a-z_]*$", description="e.g. task.completed; routing key"
    )
    source: str = Field(min_length=1, max_length=200, description="taskmesh/<service>")
    time: AwareDatetime = Field(description="when the change happened, UTC, ISO 8601")
    subject: str = Field(min_length=1, max_length=200, description="the aggregate's id")
    data_version: int = Field(ge=1)
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Envelope:
        """The envelope of an outbox entry (its headers are not part of it)."""
        return cls.model_validate({k: entry[k] for k in ENVELOPE_FIELDS if k in entry})

    def body(self) -> bytes:
        return self.model_dump_json().encode()


def trace_headers() -> dict[str, str]:
    """W3C ``traceparent``/``tracestate`` of the current span (empty without a valid span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def outbox_entry(
    event_type: str,
    subject: str,
    data: BaseModel | Mapping[str, Any],
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    """A validated event to store in the aggregate's ``_outbox`` in the same write as the change.

    ``source`` is ``taskmesh/<service>``; a bare service name gets the prefix. Raises
    :class:`~taskmesh_common.events.errors.InvalidEvent` (or ``UnknownEventType``) for data
    that breaks the contract, before anything is written.
    """
    model = validate_data(event_type, data)
    envelope = Envelope(
        id=event_id or str(uuid.uuid4()),
        type=event_type,
        source=source if "/" in source else f"taskmesh/{source}",
        time=time or datetime.now(UTC),
        subject=subject,
        data_version=DATA_VERSION,
        data=model.model_dump(mode="json"),
    )
    entry = envelope.model_dump(mode="json")
    entry["headers"] = trace_headers()
    return entry


def envelope_body(entry: Mapping[str, Any]) -> bytes:
    """The JSON body of an outbox entry (or envelope fields): exactly the envelope's fields."""
    return json.dumps(
        {k: entry[k] for k in ENVELOPE_FIELDS}, separators=(",", ":"), ensure_ascii=False
    ).encode()
