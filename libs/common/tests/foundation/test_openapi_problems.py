"""document_problems: every error response of a document becomes a Problem."""

from __future__ import annotations

from typing import Any

from taskmesh_common.openapi import document_problems, problems

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _doc() -> dict[str, Any]:
    validation = {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        }
    }
    return {
        "paths": {
            "/things/{id}": {
                "get": {"responses": {"200": {"description": "ok"}, "422": validation}},
                "parameters": [],
            },
            "/things": {
                "post": {
                    "security": [{"bearerAuth": []}],
                    "responses": {"201": {"description": "made"}, **problems(409)},
                }
            },
        },
        "components": {
            "schemas": {
                "HTTPValidationError": {
                    "properties": {
                        "detail": {"items": {"$ref": "#/components/schemas/ValidationError"}}
                    }
                },
                "ValidationError": {"type": "object"},
                "Thing": {"type": "object"},
            }
        },
    }


def test_422_becomes_a_problem_and_fastapis_validation_schemas_go() -> None:
    doc = document_problems(_doc())
    assert doc["paths"]["/things/{id}"]["get"]["responses"]["422"]["content"] == PROBLEM
    assert set(doc["components"]["schemas"]) == {"Thing", "Problem"}


def test_statuses_are_added_where_they_apply() -> None:
    doc = document_problems(_doc(), everywhere=(429,), secured=(401,), with_path_params=(404,))
    get = doc["paths"]["/things/{id}"]["get"]["responses"]
    post = doc["paths"]["/things"]["post"]["responses"]
    assert {"429", "404"} <= set(get) and "401" not in get
    assert {"429", "401", "409"} <= set(post) and "404" not in post
    assert post["409"]["content"] == PROBLEM and post["409"]["description"] == "Conflict"
    assert post["201"] == {"description": "made"}


def test_a_body_that_cannot_be_parsed_is_documented_where_there_is_a_body() -> None:
    doc = _doc()
    doc["paths"]["/things"]["post"]["requestBody"] = {"content": {}}
    doc = document_problems(doc, with_body=(400,))
    assert "400" in doc["paths"]["/things"]["post"]["responses"]
    assert "400" not in doc["paths"]["/things/{id}"]["get"]["responses"]


def test_a_schema_still_referenced_is_kept() -> None:
    doc = _doc()
    doc["paths"]["/things"]["post"]["requestBody"] = {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"}}
        }
    }
    assert "ValidationError" in document_problems(doc)["components"]["schemas"]
