"""The AsyncAPI 2.6 document and per-event JSON Schemas, generated from the Pydantic models.

``python -m taskmesh_common.events asyncapi --schemas-dir docs/event-schemas > docs/asyncapi.json``
regenerates the checked-in files; the contract tests fail until that is done on purpose.
"""

from __future__ import annotations

import json
from typing import Any

from taskmesh_common.events.envelope import Envelope
from taskmesh_common.events.examples import example_envelope
from taskmesh_common.events.schemas import DATA_VERSION, EVENT_DATA_MODELS

__all__ = ["SCHEMA_ID_BASE", "asyncapi_document", "dumps", "event_schema", "event_schemas"]

SCHEMA_ID_BASE = "urn:taskmesh:event-schema:"
_TRACE_HEADERS = {
    "type": "object",
    "properties": {
        "traceparent": {
            "type": "string",
            "description": "W3C Trace Context of the span that published the event",
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        },
        "tracestate": {"type": "string"},
    },
}


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a whole envelope of ``event_type``."""
    model = EVENT_DATA_MODELS[event_type]
    envelope = Envelope.model_json_schema()
    data = model.model_json_schema()
    data.pop("title", None)
    properties = dict(envelope["properties"])
    properties["type"] = {**properties["type"], "const": event_type}
    properties["data_version"] = {"type": "integer", "const": DATA_VERSION}
    properties["data"] = {"title": model.__name__, **data}
    defs = data.pop("$defs", None)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID_BASE}{event_type}:v{DATA_VERSION}",
        "title": event_type,
        "description": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else "",
        "type": "object",
        "properties": properties,
        "required": envelope["required"],
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def event_schemas() -> dict[str, dict[str, Any]]:
    return {event_type: event_schema(event_type) for event_type in sorted(EVENT_DATA_MODELS)}


def asyncapi_document(exchange: str = "taskmesh.events") -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for event_type, schema in event_schemas().items():
        model = EVENT_DATA_MODELS[event_type]
        name = event_type.replace(".", "_")
        schemas[name] = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "summary": f"{event_type} (data_version {DATA_VERSION}, data: {model.__name__})",
            "contentType": "application/json",
            "schemaFormat": "application/schema+json;version=draft-07",
            "headers": _TRACE_HEADERS,
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "correlationId": {"location": "$message.header#/traceparent"},
            "bindings": {
                "amqp": {"deliveryMode": 2, "messageType": event_type, "bindingVersion": "0.2.0"}
            },
            "examples": [{"name": "example", "payload": example_envelope(event_type)}],
        }
        channels[event_type] = {
            "description": f"Routing key {event_type} on the topic exchange {exchange}.",
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": exchange,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.2.0",
                }
            },
            # AsyncAPI 2.x: "subscribe" is what a client of the suite can subscribe to.
            "subscribe": {
                "operationId": f"on_{name}",
                "message": {"$ref": f"#/components/messages/{name}"},
            },
        }
    return {
        "asyncapi": "2.6.0",
        "id": "urn:taskmesh:events",
        "info": {
            "title": "taskmesh domain events",
            "version": f"{DATA_VERSION}.0.0",
            "description": (
                "Every event is a JSON envelope {id, type, source, time, subject, data_version,"
                " data}, published persistent to one durable topic exchange with routing key ="
                " type, message_id = id, and W3C traceparent/tracestate headers. Consumers"
                " dedupe on id and order by data.version per aggregate (subject)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "url": "amqp://127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
            }
        },
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }


def dumps(document: Any) -> str:
    """The canonical text of a generated document (what is checked in)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
