"""Merging the services' OpenAPI documents into the one public document.

Pure functions over plain dicts: only public paths are kept, schema names that collide with
different content are prefixed with the service name, and every operation that needs a token
says so through the `bearerAuth` scheme.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from taskmesh_common.openapi import document_problems

from gateway_service.domain.routing import is_public, upstream_for

__all__ = ["merge_openapi"]

_SCHEMA_REF = "#/components/schemas/"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
# What the gateway itself answers, on any route: a body or headers too large, a rate limit,
# an upstream that answers badly, is away or too slow. And 401 where a token is needed.
GATEWAY_ERRORS = (413, 429, 431, 502, 503, 504)


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_SCHEMA_REF):
                name = value[len(_SCHEMA_REF) :]
                out[key] = _SCHEMA_REF + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def merge_openapi(
    documents: Mapping[str, Mapping[str, Any]], *, title: str, version: str
) -> dict[str, Any]:
    """One OpenAPI 3.1 document from the services' documents, keyed by service name."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for service in sorted(documents):
        doc = documents[service]
        own_schemas: dict[str, Any] = dict(doc.get("components", {}).get("schemas", {}))
        renames = {
            name: f"{service}_{name}"
            for name, schema in own_schemas.items()
            if name in schemas and _canonical(schemas[name]) != _canonical(schema)
        }
        doc = _rewrite_refs(copy.deepcopy(dict(doc)), renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        for path, item in doc.get("paths", {}).items():
            # Only what a client can reach through the gateway, and only from its owner.
            if upstream_for(path) != service:
                continue
            item = dict(item)
            for method, operation in item.items():
                if method in _METHODS and not is_public(path):
                    operation.setdefault("security", [{"bearerAuth": []}])
            paths[path] = item
    merged = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": {"bearerAuth": BEARER}},
    }
    return document_problems(merged, everywhere=GATEWAY_ERRORS, secured=(401,))
