"""The public OpenAPI document promises what clients get: every error is problem details.

The document is the gateway's merge of the services' current documents (built in-process,
as the gateway builds it at start-up); errors.py makes every error answer
`application/problem+json`, and this checks the document says so, operation by operation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from gateway_service.domain.openapi import GATEWAY_ERRORS, merge_openapi
from taskmesh_common.errors import PROBLEM_CONTENT_TYPE

_path = Path(__file__).parent / "openapi" / "snapshot.py"
_spec = importlib.util.spec_from_file_location("taskmesh_openapi_snapshot_problems", _path)
assert _spec is not None and _spec.loader is not None
snapshot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(snapshot)

METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _public() -> dict[str, Any]:
    documents = {service: snapshot.current_document(service) for service in snapshot.SERVICES}
    return merge_openapi(documents, title="taskmesh", version="1")


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_every_error_response_is_problem_json_with_the_one_problem_schema() -> None:
    document = _public()
    errors = 0
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert response["content"] == {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM}}, (
                    f"{method.upper()} {path} {status}"
                )
    assert errors > 0
    schemas = document["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["type", "title", "status", "detail"]
    # FastAPI's own validation error is never sent, so it is not documented.
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas


def test_validation_errors_are_documented_as_problems() -> None:
    document = _public()
    create = document["paths"]["/api/v1/tasks"]["post"]["responses"]
    assert create["422"]["content"] == {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM}}


def test_the_gateways_own_answers_are_documented_on_every_operation() -> None:
    for path, method, operation in _operations(_public()):
        documented = set(operation["responses"])
        missing = {str(s) for s in GATEWAY_ERRORS} - documented
        assert not missing, f"{method.upper()} {path} lacks {sorted(missing)}"
        if operation.get("security"):
            assert "401" in documented, f"{method.upper()} {path} needs a token but lacks 401"


def test_operations_on_one_resource_document_404() -> None:
    for path, method, operation in _operations(_public()):
        if "{" in path:
            assert "404" in operation["responses"], f"{method.upper()} {path}"
