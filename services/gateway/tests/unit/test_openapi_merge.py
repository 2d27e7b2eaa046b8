"""Merging the services' OpenAPI documents into the public one."""

from __future__ import annotations

from typing import Any

from gateway_service.domain.openapi import merge_openapi


def _doc(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas}}


def _op(ref: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"responses": {"200": {"content": {"application/json": {"schema": schema}}}}}


def test_only_public_paths_of_their_owner_are_kept() -> None:
    merged = merge_openapi(
        {
            "auth": _doc({"/api/v1/auth/me": {"get": _op("User")}, "/internal": {}}, {"User": {}}),
            "tasks": _doc(
                {"/api/v1/tasks": {"get": _op("Task")}, "/api/v1/auth/x": {}}, {"Task": {}}
            ),
        },
        title="t",
        version="1",
    )
    assert sorted(merged["paths"]) == ["/api/v1/auth/me", "/api/v1/tasks"]
    assert merged["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_colliding_schema_names_are_prefixed_and_their_refs_follow() -> None:
    merged = merge_openapi(
        {
            "auth": _doc({"/api/v1/auth/me": {"get": _op("Page")}}, {"Page": {"title": "users"}}),
            "tasks": _doc({"/api/v1/tasks": {"get": _op("Page")}}, {"Page": {"title": "tasks"}}),
        },
        title="t",
        version="1",
    )
    schemas = merged["components"]["schemas"]
    assert schemas["Page"] == {"title": "users"}
    assert schemas["tasks_Page"] == {"title": "tasks"}
    task_ref = merged["paths"]["/api/v1/tasks"]["get"]["responses"]["200"]["content"]
    assert task_ref["application/json"]["schema"]["$ref"] == "#/components/schemas/tasks_Page"


def test_identical_shared_schemas_are_kept_once() -> None:
    shared = {"Shared": {"type": "object"}}
    merged = merge_openapi(
        {"auth": _doc({}, dict(shared)), "tasks": _doc({}, dict(shared))}, title="t", version="1"
    )
    assert list(merged["components"]["schemas"]) == ["Shared", "Problem"]


def test_protected_operations_require_the_bearer_scheme_and_public_ones_do_not() -> None:
    merged = merge_openapi(
        {
            "auth": _doc(
                {"/api/v1/auth/login": {"post": _op("T")}, "/api/v1/auth/me": {"get": _op("T")}},
                {"T": {}},
            )
        },
        title="t",
        version="1",
    )
    assert "security" not in merged["paths"]["/api/v1/auth/login"]["post"]
    assert merged["paths"]["/api/v1/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
