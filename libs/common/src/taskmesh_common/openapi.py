"""Error responses in the OpenAPI documents: RFC 9457 problem details, one shared schema.

Every error a service or the gateway answers is `application/problem+json` (see errors.py),
so the documents say so: one `Problem` schema, used by every 4xx and 5xx response, 422
included (FastAPI documents its own `HTTPValidationError` JSON, which is never sent).

Routes name the errors they answer with `problems(...)` in their `responses=`; the
document-wide ones are added by `document_problems`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from taskmesh_common.errors import PROBLEM_CONTENT_TYPE, problem_title

__all__ = ["PROBLEM_SCHEMA", "document_problems", "problems"]

_REF = "#/components/schemas/Problem"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# FastAPI's validation schemas: replaced by Problem, dropped once nothing refers to them.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:taskmesh:problem:<slug>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "upstream": {"type": "string", "description": "The part that is away (gateway)."},
        "errors": {
            "type": "array",
            "description": "The fields a 422 refused.",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


def _problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or problem_title(status),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": _REF}}},
    }


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the errors a route answers, as problem details."""
    return {str(status): _problem_response(status) for status in statuses}


def _is_error(status: str) -> bool:
    return status.isdigit() and int(status) >= 400


def _operations(doc: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                yield path, operation


def _refers_to(node: Any, name: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == f"#/components/schemas/{name}" or any(
            _refers_to(v, name) for v in node.values()
        )
    if isinstance(node, list):
        return any(_refers_to(v, name) for v in node)
    return False


def document_problems(
    doc: dict[str, Any],
    *,
    everywhere: Iterable[int] = (),
    secured: Iterable[int] = (),
    with_path_params: Iterable[int] = (),
    with_body: Iterable[int] = (),
) -> dict[str, Any]:
    """Make every error response of `doc` a Problem, in place; returns `doc`.

    `everywhere` statuses are added to every operation, `secured` to those that need a token
    (a `security` entry), `with_path_params` to those whose path names a resource,
    `with_body` to those that take a request body.
    """
    everywhere, secured = tuple(everywhere), tuple(secured)
    with_path_params, with_body = tuple(with_path_params), tuple(with_body)
    for path, operation in _operations(doc):
        responses = operation.setdefault("responses", {})
        added = list(everywhere)
        if operation.get("security"):
            added += secured
        if "{" in path:
            added += with_path_params
        if "requestBody" in operation:
            added += with_body
        for status in added:
            responses.setdefault(str(status), _problem_response(status))
        for status, response in responses.items():
            if _is_error(status):
                response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": _REF}}}
                if status == "422":
                    response["description"] = problem_title(422)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in _FASTAPI_VALIDATION:
        rest = {k: v for k, v in schemas.items() if k != name}
        if name in schemas and not _refers_to({"paths": doc.get("paths"), "s": rest}, name):
            del schemas[name]
    return doc
