from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from analytics_service.api.app import create_app
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory

from .conftest import NOW, Analytics, TaskEvents, make_settings

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [
        ("2026-03-02", "2026-03-01", "after"),
        ("2024-01-01", "2025-01-01", "367 days"),
        ("2026-02-30", "2026-03-01", "from"),
        ("yesterday", "2026-03-01", "from"),
        ("2026-03-01", "", "to"),
    ],
)
async def test_bad_timeline_ranges_are_422_problems(
    analytics: Analytics, new_user: Callable[[], str], start: str, end: str, why: str
) -> None:
    response = await analytics.client.get(
        "/api/v1/analytics/timeline",
        params={"from": start, "to": end},
        headers=analytics.headers(new_user()),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert why in response.text


async def test_a_366_day_timeline_has_one_bucket_per_day(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    buckets = await analytics.timeline(new_user(), "2024-01-01", "2024-12-31")
    assert len(buckets) == 366
    assert buckets[59] == {"date": "2024-02-29", "created": 0, "completed": 0}


async def test_timeline_defaults_to_the_last_30_days(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    response = await analytics.client.get(
        "/api/v1/analytics/timeline", headers=analytics.headers(new_user())
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body["buckets"]) == 30
    assert body["to"] == body["buckets"][-1]["date"]


async def test_statistics_need_a_valid_token(analytics: Analytics) -> None:
    for path in ("summary", "timeline", "overview"):
        response = await analytics.client.get(f"/api/v1/analytics/{path}")
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")
    forged = TokenFactory().auth_header("someone")
    response = await analytics.client.get("/api/v1/analytics/summary", headers=forged)
    assert response.status_code == 401


async def test_overview_is_forbidden_to_non_admins(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    response = await analytics.client.get(
        "/api/v1/analytics/overview", headers=analytics.headers(new_user())
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM


async def test_overview_totals_every_user_and_counts_active_users(
    analytics: Analytics, new_user: Callable[[], str]
) -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    a1, a2, b1 = TaskEvents(alice), TaskEvents(alice), TaskEvents(bob)
    old = TaskEvents(carol, created_at=NOW - timedelta(days=90))
    await analytics.applied(
        a1.created(), a2.created(), a2.completed(), b1.created(), old.created(), old.deleted(2)
    )

    response = await analytics.client.get(
        "/api/v1/analytics/overview", headers=analytics.headers(new_user(), role="admin")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["totals"]["total"] == 3
    assert body["totals"]["completed"] == 1
    assert body["users_with_tasks"] == 2
    # carol's only task was deleted 90 days ago: neither a live task nor recent activity.
    assert body["active_users"] == 2
    days = body["last_30_days"]
    assert len(days) == 30
    assert days[-1]["date"] == NOW.date().isoformat()
    assert sum(d["created"] for d in days) == 3
    assert sum(d["completed"] for d in days) == 1


async def test_mongo_down_is_a_503_problem_and_readiness_says_so(
    backing_servers: BackingServers, new_user: Callable[[], str]
) -> None:
    settings = make_settings(
        backing_servers,
        mongo_url="mongodb://127.0.0.1:9/?directConnection=true",
        mongo_timeout_seconds=0.3,
        readiness_timeout_seconds=1.0,
    )
    tokens = TokenFactory()
    app = create_app(settings, verifier=tokens.verifier())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://analytics"
        ) as client:
            response = await client.get(
                "/api/v1/analytics/summary", headers=tokens.auth_header(new_user())
            )
            assert response.status_code == 503
            assert response.headers["content-type"] == PROBLEM
            assert "retry-after" in response.headers
            assert "9" not in response.json()["detail"]  # no host or port leaked
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["failed"] == ["mongo"]
        await app.state.consumer.stop()
