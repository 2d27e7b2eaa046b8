"""HTTP contracts: the gateway's routes reach real operations, and no service breaks its API.

Each service's OpenAPI document is checked in under tests/contract/openapi/. A breaking
change (a path or operation removed, a new required input, a promised output field gone)
fails here until the copy is regenerated on purpose:

    uv run python tests/contract/openapi/snapshot.py
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from gateway_service.domain.routing import AUTH_POLICY_PATHS, PUBLIC_PATHS, ROUTES, upstream_for


def _load_snapshot_module() -> ModuleType:
    path = Path(__file__).parent / "openapi" / "snapshot.py"
    spec = importlib.util.spec_from_file_location("taskmesh_openapi_snapshot", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


snapshot = _load_snapshot_module()
SERVICES: tuple[str, ...] = snapshot.SERVICES
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
REGENERATE = "regenerate on purpose: uv run python tests/contract/openapi/snapshot.py"


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _resolve(document: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    seen = 0
    while schema and "$ref" in schema and seen < 10:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document.get("components", {}).get("schemas", {}).get(name, {})
        seen += 1
    return schema or {}


def _json_schema(document: dict[str, Any], holder: dict[str, Any] | None) -> dict[str, Any]:
    content = (holder or {}).get("content", {})
    media = content.get("application/json") or next(iter(content.values()), {})
    return _resolve(document, media.get("schema"))


def _required_params(operation: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (p.get("in", ""), p.get("name", ""))
        for p in operation.get("parameters", [])
        if p.get("required")
    }


def _success(operation: dict[str, Any]) -> dict[str, Any] | None:
    for status in ("200", "201", "202"):
        if status in operation.get("responses", {}):
            response: dict[str, Any] = operation["responses"][status]
            return response
    return None


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What a client written against `old` would find broken in `new`."""
    problems = []
    new_ops = {(path, method): op for path, method, op in _operations(new)}
    for path, method, old_op in _operations(old):
        where = f"{method.upper()} {path}"
        new_op = new_ops.get((path, method))
        if new_op is None:
            problems.append(f"{where}: operation removed")
            continue
        for location, name in sorted(_required_params(new_op) - _required_params(old_op)):
            problems.append(f"{where}: new required {location} parameter {name!r}")
        old_body = _json_schema(old, old_op.get("requestBody"))
        new_body = _json_schema(new, new_op.get("requestBody"))
        for field in sorted(set(new_body.get("required", [])) - set(old_body.get("required", []))):
            problems.append(f"{where}: request body field {field!r} became required")
        old_out = _json_schema(old, _success(old_op))
        new_out = _json_schema(new, _success(new_op))
        for field in sorted(set(old_out.get("required", [])) - set(new_out.get("required", []))):
            problems.append(f"{where}: response field {field!r} no longer guaranteed")
    return problems


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_a_checked_in_openapi_document(service: str) -> None:
    assert snapshot.snapshot_path(service).is_file(), f"missing snapshot; {REGENERATE}"


@pytest.mark.parametrize("service", SERVICES)
def test_no_breaking_change_against_the_checked_in_openapi(service: str) -> None:
    problems = breaking_changes(
        snapshot.checked_in_document(service), snapshot.current_document(service)
    )
    assert not problems, "\n".join([*problems, REGENERATE])


@pytest.mark.parametrize(("prefix", "service"), ROUTES)
def test_every_gateway_route_reaches_operations_of_its_service(prefix: str, service: str) -> None:
    paths = snapshot.checked_in_document(service)["paths"]
    reached = [p for p in paths if p == prefix or p.startswith(prefix + "/")]
    assert reached, f"gateway routes {prefix} to {service}, which has no operation there"


@pytest.mark.parametrize("service", SERVICES)
def test_every_public_operation_of_a_service_is_routed_to_that_service(service: str) -> None:
    for path, method, _ in _operations(snapshot.checked_in_document(service)):
        if path.startswith("/api/") or path.startswith("/.well-known/"):
            assert upstream_for(path) == service, f"{method.upper()} {path} is unreachable"


def test_public_and_strictly_limited_paths_are_real_auth_operations() -> None:
    auth_paths = snapshot.checked_in_document("auth")["paths"]
    for path in PUBLIC_PATHS | AUTH_POLICY_PATHS:
        assert path in auth_paths, f"{path} is treated specially by the gateway but auth lacks it"
    for path in AUTH_POLICY_PATHS:
        assert "post" in auth_paths[path]


def test_the_breaking_change_check_catches_what_it_promises() -> None:
    old = {
        "paths": {
            "/a": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Out"}}
                            }
                        }
                    }
                },
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"required": ["x"]}}}
                    }
                },
            },
            "/b": {"delete": {}},
        },
        "components": {"schemas": {"Out": {"required": ["id", "name"]}}},
    }
    new = {
        "paths": {
            "/a": {
                "get": {
                    "parameters": [{"in": "query", "name": "q", "required": True}],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Out"}}
                            }
                        }
                    },
                },
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"required": ["x", "y"]}}}
                    }
                },
            }
        },
        "components": {"schemas": {"Out": {"required": ["id"]}}},
    }
    assert breaking_changes(old, new) == [
        "GET /a: new required query parameter 'q'",
        "GET /a: response field 'name' no longer guaranteed",
        "POST /a: request body field 'y' became required",
        "DELETE /b: operation removed",
    ]
    assert breaking_changes(old, old) == []
