"""A service away or killed: the gateway answers fast, nothing acknowledged is lost or doubled."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from faults_client import (
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
from faults_stack import Suite

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


async def _settled_total(
    client: httpx.AsyncClient, user: User, expected: int, *, timeout: float = 60
) -> dict[str, float]:
    """Wait until analytics counts `expected` tasks, then check it stays there (a late
    duplicate would push it over)."""
    began = time.monotonic()
    stats = await eventually(
        lambda: summary(client, user),
        lambda s: s["total"] >= expected,
        timeout=timeout,
        what=f"analytics counting {expected} tasks",
    )
    caught_up = time.monotonic() - began
    await asyncio.sleep(2)
    later = await summary(client, user)
    assert stats["total"] == later["total"] == expected, (stats["total"], later["total"])
    return {"caught_up_seconds": round(caught_up, 1), "counted": later["total"]}


async def test_writes_made_while_analytics_is_away_are_counted_once_after_it_returns(
    suite: Suite, gateway: httpx.AsyncClient
) -> None:
    user = await new_user(gateway)
    await asyncio.to_thread(suite.stop, "analytics")
    try:
        ids = await create_many(gateway, user, 30)
        for task_id in ids[:10]:
            done = await gateway.patch(
                f"/api/v1/tasks/{task_id}", json={"status": "done"}, headers=user.headers
            )
            assert done.status_code == 200, done.text
        away = await gateway.get("/api/v1/analytics/summary", headers=user.headers)
        assert_problem(away, 503)
    finally:
        restart = await asyncio.to_thread(suite.start, "analytics")
    settled = await _settled_total(gateway, user, 30)
    assert (await summary(gateway, user))["completed"] == 10
    record("consumer_away", writes=40, restart_seconds=round(restart, 1), **settled)


async def test_with_tasks_away_the_breaker_answers_fast_503s_and_closes_again(
    suite: Suite, gateway: httpx.AsyncClient
) -> None:
    user = await new_user(gateway)
    await asyncio.to_thread(suite.stop, "tasks")
    try:
        latencies, kinds = [], Counter[str]()
        for _ in range(12):
            began = time.monotonic()
            response = await gateway.get("/api/v1/tasks", headers=user.headers)
            latencies.append(time.monotonic() - began)
            kinds[assert_problem(response, 503)["type"].rsplit(":", 1)[-1]] += 1
            assert int(response.headers["retry-after"]) >= 1
        opened = [k for k in kinds if "circuit" in k]
        assert opened, f"the breaker never opened: {dict(kinds)}"
        # Breaker states are on the gateway's internal listener, not its public port.
        async with httpx.AsyncClient(base_url=suite.internal_urls["gateway"], timeout=10) as inner:
            ready = (await inner.get("/readyz")).json()
        assert ready["upstreams"]["tasks"]["state"] == "open"
        # The other upstreams are untouched by tasks' outage.
        me = await gateway.get("/api/v1/auth/me", headers=user.headers)
        assert me.status_code == 200
        stats = await gateway.get("/api/v1/analytics/summary", headers=user.headers)
        assert stats.status_code == 200
        figures = latency_figures(latencies)
        assert figures["max_ms"] < 1500, figures
    finally:
        await asyncio.to_thread(suite.start, "tasks")
    began = time.monotonic()
    await eventually(
        lambda: gateway.get("/api/v1/tasks", headers=user.headers),
        lambda r: r.status_code == 200,
        timeout=30,
        what="tasks answering through the gateway again",
    )
    record(
        "service_away",
        answers=dict(kinds),
        latency=figures,
        recovered_seconds=round(time.monotonic() - began, 1),
    )


async def test_tasks_killed_under_write_load_loses_no_acknowledged_write_or_event(
    suite: Suite, gateway: httpx.AsyncClient
) -> None:
    user = await new_user(gateway)
    acked: list[str] = []
    refused: Counter[int] = Counter()
    writing = True

    async def writer(n: int) -> None:
        i = 0
        while writing:
            i += 1
            try:
                response = await gateway.post(
                    "/api/v1/tasks", json={"title": f"w{n}-{i}"}, headers=user.headers
                )
            except httpx.HTTPError:
                refused[0] += 1
                continue
            if response.status_code == 201:
                acked.append(response.json()["id"])
            else:
                refused[response.status_code] += 1
                await asyncio.sleep(0.05)

    writers = [asyncio.create_task(writer(n)) for n in range(4)]
    try:
        await asyncio.sleep(1.5)
        before_kill = len(acked)
        await asyncio.to_thread(suite.kill, "tasks")
        await asyncio.sleep(1)
        await asyncio.to_thread(suite.start, "tasks")
        await eventually(
            lambda: asyncio.sleep(0, len(acked)),
            lambda n: n > before_kill + 20,
            timeout=30,
            what="writes succeeding after the restart",
        )
    finally:
        writing = False
        await asyncio.gather(*writers)
    assert before_kill > 0
    stored = await list_ids(gateway, user)
    lost = set(acked) - set(stored)
    assert not lost, f"{len(lost)} acknowledged writes lost"
    settled = await _settled_total(gateway, user, len(stored))
    record(
        "tasks_sigkill",
        acknowledged=len(acked),
        stored=len(stored),
        unacknowledged_but_stored=len(stored) - len(acked),
        refused=dict(refused),
        lost=len(lost),
        **settled,
    )


@pytest.mark.timeout(200)
async def test_analytics_killed_mid_batch_counts_every_event_once(
    suite: Suite, gateway: httpx.AsyncClient
) -> None:
    user = await new_user(gateway)
    # Enough for several batches: analytics applies up to 100 events of one user per batch.
    # Kill it while the backlog is being applied: some counted, not all. Analytics may apply
    # a whole backlog between starting and answering its first request (600 events did, on
    # a fast spell): then a backlog twice as large, behind the first.
    count = 0
    for backlog in (600, 1200, 2400):
        if suite.is_running("analytics"):
            await asyncio.to_thread(suite.stop, "analytics")
        try:
            await create_many(gateway, user, backlog)
        finally:
            await asyncio.to_thread(suite.start, "analytics")
        applied_before, count = count, count + backlog
        partial = await eventually(
            lambda: summary(gateway, user),
            lambda s, applied_before=applied_before: s["total"] > applied_before,
            timeout=30,
            interval=0.05,
            what="analytics starting on the backlog",
        )
        await asyncio.to_thread(suite.kill, "analytics")
        if partial["total"] < count:
            break
    assert partial["total"] < count, "every backlog was applied before the kill; nothing tested"
    await asyncio.to_thread(suite.start, "analytics")
    # A per-user lock the killed replica held keeps the backlog waiting until its 30 s lease
    # runs out (then retries back off up to 10 s): 40-60 s to catch up when the kill cut a
    # batch; 9 s when it fell between batches (eighth session).
    settled = await _settled_total(gateway, user, count, timeout=120)
    timeline = await gateway.get("/api/v1/analytics/timeline", headers=user.headers)
    assert sum(day["created"] for day in timeline.json()["buckets"]) == count
    record("analytics_sigkill", events=count, counted_at_kill=partial["total"], **settled)
