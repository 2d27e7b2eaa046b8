"""/healthz, /readyz and the readiness checks of the backing servers.

/readyz is public (the gateway serves it on its client listener), so its body names what is
not ready and nothing more: a failed check's exception text can carry hosts, ports, URLs or
credentials. That text goes to the service's log (`readiness check failed`, with the check's
name and error), and with the details (breaker states) to the internal listener's /readyz
(taskmesh_common.internal), where operators read it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from taskmesh_common.errors import problem_response

__all__ = ["Check", "Details", "ReadinessRegistry", "health_router"]

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]
Details = Callable[[], dict[str, Any]]


class ReadinessRegistry:
    """The named dependency checks behind /readyz; each must answer within the timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.checks: dict[str, Check] = {}
        self.details: dict[str, Details] = {}

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def add_details(self, name: str, details: Details) -> None:
        """Extra information for the internal /readyz that does not decide readiness
        (breaker state)."""
        self.details[name] = details

    async def _run(self, check: Check) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {self.timeout:g}s"}
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    async def run(self) -> dict[str, dict[str, Any]]:
        """Each check's result; a failed one carries its error text, for the log only."""
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def public(self) -> dict[str, dict[str, Any]]:
        """Each check's result without error text, fit for /readyz; failures are logged."""
        checks = await self.run()
        for name, result in checks.items():
            if not result["ok"]:
                logger.warning(
                    "readiness check failed", extra={"check": name, "error": result["error"]}
                )
        return {name: {k: v for k, v in r.items() if k != "error"} for name, r in checks.items()}


def health_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        registry: ReadinessRegistry = request.app.state.readiness
        checks = await registry.public()
        failed = [name for name, result in checks.items() if not result["ok"]]
        if failed:
            return problem_response(
                503,
                f"not ready: {', '.join(failed)} unavailable",
                slug="not-ready",
                headers={"Retry-After": "2"},
                checks=checks,
                failed=failed,
            )
        return JSONResponse({"status": "ready", "checks": checks})

    return router
