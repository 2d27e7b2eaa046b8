"""A client's view of taskmesh for the fault suites: accounts, tasks, statistics, waiting."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from taskmesh_common.testing import random_email

__all__ = [
    "PASSWORD",
    "User",
    "assert_problem",
    "create_many",
    "create_tasks",
    "eventually",
    "latency_figures",
    "list_ids",
    "new_user",
    "record",
    "summary",
]

PASSWORD = "correct horse battery staple"
T = TypeVar("T")


@dataclass(frozen=True)
class User:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_user(client: httpx.AsyncClient, prefix: str = "fault") -> User:
    email = random_email(prefix)
    registered = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return User(registered.json()["id"], email, login.json()["access_token"])


async def create_tasks(
    client: httpx.AsyncClient, user: User, count: int, *, prefix: str = "task"
) -> list[str]:
    """`count` tasks created one after another, each answered 201; their ids."""
    ids = []
    for i in range(count):
        response = await client.post(
            "/api/v1/tasks", json={"title": f"{prefix} {i}"}, headers=user.headers
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def create_many(
    client: httpx.AsyncClient, user: User, count: int, *, concurrency: int = 8
) -> list[str]:
    """`count` tasks created by `concurrency` writers at once, each answered 201; their ids."""
    per_writer = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
    batches = await asyncio.gather(
        *(create_tasks(client, user, n, prefix=f"w{i}") for i, n in enumerate(per_writer) if n)
    )
    return [task_id for batch in batches for task_id in batch]


async def list_ids(client: httpx.AsyncClient, user: User) -> list[str]:
    """Every task of the user, page after page."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = await client.get("/api/v1/tasks", params=params, headers=user.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [task["id"] for task in body["items"]]
        if not body["next_cursor"]:
            return ids
        params["cursor"] = body["next_cursor"]


async def summary(client: httpx.AsyncClient, user: User) -> dict[str, Any]:
    response = await client.get("/api/v1/analytics/summary", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Poll `probe` until `done(value)`; fail with the last value after `timeout` seconds.

    Exceptions from the probe count as "not yet" (a service on its way back answers 503 or
    refuses connections for a moment).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
            if done(last):
                return last  # type: ignore[no-any-return]
        except (httpx.HTTPError, AssertionError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s; last: {last!r}")
        await asyncio.sleep(interval)


def assert_problem(response: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    """An RFC 9457 problem with the expected status (one of them)."""
    wanted = (status,) if isinstance(status, int) else status
    assert response.status_code in wanted, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.headers.get("content-type"),
        response.text[:300],
    )
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    return body


def latency_figures(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def record(test: str, **figures: Any) -> None:
    """Observed figures, for docs/reliability.md: printed (`-s`), and appended as JSON lines
    to `$TASKMESH_FAULTS_REPORT` when set."""
    line = json.dumps({"test": test, **figures}, default=str)
    print(f"\n[faults] {line}")
    path = os.environ.get("TASKMESH_FAULTS_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
