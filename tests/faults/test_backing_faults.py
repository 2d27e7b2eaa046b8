"""Redis, RabbitMQ or the MongoDB-protocol server away: bounded answers, recovery, nothing lost.

These run on servers of their own (the `outage` fixtures): the shared ones stay untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from faults_client import (
    PASSWORD,
    User,
    assert_problem,
    create_many,
    eventually,
    latency_figures,
    list_ids,
    new_user,
    record,
    summary,
)
from faults_stack import Outage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OutageClient = tuple[Outage, httpx.AsyncClient]


async def _timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = await call
    return response, time.monotonic() - began


async def _counted(client: httpx.AsyncClient, user: User, total: int, completed: int) -> float:
    """Seconds until analytics shows exactly these numbers, checked again 2 s later."""
    began = time.monotonic()
    await eventually(
        lambda: summary(client, user),
        lambda s: s["total"] >= total and s["completed"] >= completed,
        timeout=60,
        what=f"analytics counting {total} tasks, {completed} done",
    )
    took = time.monotonic() - began
    await asyncio.sleep(2)
    stats = await summary(client, user)
    assert (stats["total"], stats["completed"]) == (total, completed), stats
    return took


async def test_with_redis_away_the_gateway_fails_open_within_its_bound_and_recovers(
    outage: OutageClient,
) -> None:
    stack, client = outage
    user = await new_user(client)
    task_id = (await create_many(client, user, 1))[0]
    limited = await client.get(f"/api/v1/tasks/{task_id}", headers=user.headers)
    assert "ratelimit" in limited.headers
    await asyncio.to_thread(stack.backing.stop, "redis")
    try:
        latencies = []
        for _ in range(30):
            response, took = await _timed(
                client.get(f"/api/v1/tasks/{task_id}", headers=user.headers)
            )
            assert response.status_code == 200, response.text
            latencies.append(took)
        burst = await asyncio.gather(
            *(_timed(client.get("/api/v1/tasks", headers=user.headers)) for _ in range(20))
        )
        assert all(r.status_code == 200 for r, _ in burst), [r.status_code for r, _ in burst]
        latencies += [took for _, took in burst]
        login = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text  # auth's failure counter fails open too
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "redis" in ready.json()["failed"], ready.text
    finally:
        restart = await asyncio.to_thread(stack.backing.start, "redis")
    figures = latency_figures(latencies)
    # Documented bound: 0.25 s per Redis wait, then 1 s without trying after a refusal.
    assert figures["max_ms"] < 2000, figures
    began = time.monotonic()
    await eventually(
        lambda: client.get(f"/api/v1/tasks/{task_id}", headers=user.headers),
        lambda r: r.status_code == 200 and "ratelimit" in r.headers,
        timeout=20,
        what="rate limiting back on",
    )
    assert (await client.get("/readyz")).status_code == 200
    record(
        "redis_away",
        requests=len(latencies),
        latency=figures,
        redis_restart_seconds=round(restart, 1),
        limits_back_seconds=round(time.monotonic() - began, 1),
    )


async def test_with_rabbitmq_away_writes_succeed_and_every_event_arrives_once(
    outage: OutageClient,
) -> None:
    stack, client = outage
    user = await new_user(client)
    await asyncio.to_thread(stack.backing.stop, "rabbitmq")
    try:
        latencies = []
        ids = []
        for i in range(25):
            response, took = await _timed(
                client.post("/api/v1/tasks", json={"title": f"t{i}"}, headers=user.headers)
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
            latencies.append(took)
        for task_id in ids[:5]:
            response, took = await _timed(
                client.patch(
                    f"/api/v1/tasks/{task_id}", json={"status": "done"}, headers=user.headers
                )
            )
            assert response.status_code == 200, response.text
            latencies.append(took)
    finally:
        restart = await asyncio.to_thread(stack.backing.start, "rabbitmq")
    delivered = await _counted(client, user, 25, 5)
    record(
        "broker_away",
        writes=30,
        events=30,
        write_latency=latency_figures(latencies),
        broker_restart_seconds=round(restart, 1),
        delivered_seconds=round(delivered, 1),
        counted=25,
        completed=5,
    )


async def test_with_mongo_away_services_answer_503_fast_and_recover_with_data_intact(
    outage: OutageClient,
) -> None:
    stack, client = outage
    user = await new_user(client)
    before = await create_many(client, user, 10)
    await _counted(client, user, 10, 0)
    await asyncio.to_thread(stack.backing.stop, "mongo")
    answers: dict[str, tuple[int, float]] = {}
    try:
        calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "create": lambda: client.post(
                "/api/v1/tasks", json={"title": "x"}, headers=user.headers
            ),
            "list": lambda: client.get("/api/v1/tasks", headers=user.headers),
            "login": lambda: client.post(
                "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
            ),
        }
        for name, call in calls.items():
            response, took = await _timed(call())
            assert_problem(response, 503)
            assert "retry-after" in response.headers
            answers[name] = (response.status_code, round(took, 2))
            assert took < 6, (name, took)
        for name in ("auth", "tasks", "analytics"):
            async with httpx.AsyncClient(timeout=10) as direct:
                ready = await direct.get(f"{stack.suite.urls[name]}/readyz")
            assert ready.status_code == 503, (name, ready.text)
            assert "mongo" in ready.json()["failed"], (name, ready.text)
    finally:
        restart = await asyncio.to_thread(stack.backing.start, "mongo")
    began = time.monotonic()
    await eventually(
        lambda: client.post("/api/v1/tasks", json={"title": "after"}, headers=user.headers),
        lambda r: r.status_code == 201,
        timeout=30,
        what="tasks writing again",
    )
    recovered = time.monotonic() - began
    stored = await list_ids(client, user)
    assert set(before) <= set(stored), "tasks written before the outage are gone"
    login = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert login.status_code == 200
    await _counted(client, user, len(stored), 0)
    record(
        "mongo_away",
        answers=answers,
        mongo_restart_seconds=round(restart, 1),
        recovered_seconds=round(recovered, 1),
        written_before=len(before),
        lost=len(set(before) - set(stored)),
    )
