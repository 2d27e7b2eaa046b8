"""Per-request context shared by logging, errors and outbound calls."""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["request_id_var"]

request_id_var: ContextVar[str | None] = ContextVar("taskmesh_request_id", default=None)
