"""Query strings that carry anything unexpected are refused, not ignored.

FastAPI ignores unknown query parameters; a client that sends `from[$gt]=` or
misspells `limit` then gets an answer to a question it did not ask. Routes
declare what they accept and everything else is a 422 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

__all__ = ["only_query_params"]


def only_query_params(*allowed: str) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A dependency refusing any query parameter not in `allowed` (and any repeated one)."""
    known = frozenset(allowed)

    async def check(request: Request) -> None:
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for name, _value in request.query_params.multi_items():
            if name not in known:
                errors.append(
                    {
                        "loc": ("query", name),
                        "msg": "Unknown query parameter",
                        "type": "extra_forbidden",
                    }
                )
            elif name in seen:
                errors.append(
                    {"loc": ("query", name), "msg": "Repeated query parameter", "type": "repeated"}
                )
            seen.add(name)
        if errors:
            raise RequestValidationError(errors)

    return check
