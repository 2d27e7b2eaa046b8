"""The event contract: checked-in AsyncAPI document and JSON Schemas vs the Pydantic models.

Regenerate on purpose after changing a model:

    uv run python -m taskmesh_common.events asyncapi --schemas-dir docs/event-schemas \\
        > docs/asyncapi.json
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from taskmesh_common.events import EVENT_DATA_MODELS, Envelope, outbox_entry, validate_event
from taskmesh_common.events.asyncapi import asyncapi_document, dumps, event_schemas
from taskmesh_common.events.envelope import envelope_body
from taskmesh_common.events.examples import EXAMPLE_DATA

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMAS_DIR = DOCS / "event-schemas"
REGENERATE = (
    "regenerate with `uv run python -m taskmesh_common.events asyncapi "
    "--schemas-dir docs/event-schemas > docs/asyncapi.json`"
)
EVENT_TYPES = sorted(EVENT_DATA_MODELS)


# jsonschema checks "date-time" only with an optional package; check RFC 3339 here instead.
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return "T" in value and parsed.tzinfo is not None


def checked_in_schema(event_type: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / f"{event_type}.json").read_text())


def validator(event_type: str) -> Draft202012Validator:
    schema = checked_in_schema(event_type)
    return Draft202012Validator(schema, format_checker=FORMATS)


def test_checked_in_asyncapi_document_matches_the_models():
    assert (DOCS / "asyncapi.json").read_text() == dumps(asyncapi_document()), REGENERATE


def test_checked_in_event_schemas_match_the_models():
    generated = event_schemas()
    on_disk = sorted(p.stem for p in SCHEMAS_DIR.glob("*.json"))
    assert on_disk == sorted(generated), REGENERATE
    for event_type, schema in generated.items():
        assert (SCHEMAS_DIR / f"{event_type}.json").read_text() == dumps(schema), REGENERATE


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_checked_in_schemas_are_valid_json_schemas(event_type):
    Draft202012Validator.check_schema(checked_in_schema(event_type))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_messages_built_by_producers_validate_against_the_schema(event_type):
    data = EXAMPLE_DATA[event_type]
    subject = data.get("task_id") or data["user_id"]
    entry = outbox_entry(event_type, subject, data, source="taskmesh/producer")
    # Exactly the bytes the publisher sends as the message body.
    body = json.loads(envelope_body(entry))
    errors = sorted(validator(event_type).iter_errors(body), key=str)
    assert errors == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_documented_example_validates_and_is_accepted_by_consumers(event_type):
    message = asyncapi_document()["components"]["messages"][event_type.replace(".", "_")]
    [example] = message["examples"]
    assert list(validator(event_type).iter_errors(example["payload"])) == []
    envelope = Envelope.model_validate(example["payload"])
    assert isinstance(validate_event(envelope), EVENT_DATA_MODELS[event_type])


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_refuses_what_consumers_refuse(event_type):
    data = {**EXAMPLE_DATA[event_type], "unexpected": 1}
    subject = data.get("task_id") or data["user_id"]
    body = {
        "id": "3f2b8c1e-8a4d-4c6b-9e1f-2a3b4c5d6e7f",
        "type": event_type,
        "source": "taskmesh/x",
        "time": "2026-01-01T00:00:00Z",
        "subject": subject,
        "data_version": 1,
        "data": data,
    }
    assert not validator(event_type).is_valid(body)
    wrong_type = {**body, "data": EXAMPLE_DATA[event_type], "type": "task.nonexistent"}
    assert not validator(event_type).is_valid(wrong_type)


def test_schema_refuses_a_time_without_timezone():
    body = {
        **asyncapi_document()["components"]["messages"]["user_deleted"]["examples"][0]["payload"]
    }
    body["time"] = "2026-01-01T00:00:00"
    assert not validator("user.deleted").is_valid(body)
