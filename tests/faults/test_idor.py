"""Cross-user access: user B reaches none of user A's tasks or statistics, on any route."""

from __future__ import annotations

import httpx
import pytest
from faults_client import assert_problem, eventually, new_user, record, summary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_another_users_task_is_a_404_on_every_route_and_never_listed_or_counted(
    gateway: httpx.AsyncClient,
) -> None:
    alice, mallory = await new_user(gateway, "alice"), await new_user(gateway, "mallory")
    created = await gateway.post(
        "/api/v1/tasks",
        json={"title": "alice's secret", "tags": ["private"], "priority": "urgent"},
        headers={**alice.headers, "Idempotency-Key": "shared-key"},
    )
    assert created.status_code == 201
    task_id = created.json()["id"]
    missing = "00000000-0000-4000-8000-000000000000"
    # (method, body, extra headers)
    attempts: dict[str, tuple[str, dict[str, str] | None, dict[str, str]]] = {
        "GET": ("GET", None, {}),
        "GET If-None-Match": ("GET", None, {"If-None-Match": '"1"'}),
        "PATCH": ("PATCH", {"title": "mine now"}, {}),
        "PATCH If-Match": ("PATCH", {"status": "done"}, {"If-Match": '"1"'}),
        "PATCH If-Match *": ("PATCH", {"status": "done"}, {"If-Match": "*"}),
        "DELETE": ("DELETE", None, {}),
        "DELETE If-Match": ("DELETE", None, {"If-Match": '"1"'}),
    }
    for name, (method, body_json, extra) in attempts.items():
        headers = {**mallory.headers, **extra}
        theirs = await gateway.request(
            method, f"/api/v1/tasks/{task_id}", headers=headers, json=body_json
        )
        nobody = await gateway.request(
            method, f"/api/v1/tasks/{missing}", headers=headers, json=body_json
        )
        body = assert_problem(theirs, 404)
        assert_problem(nobody, 404)
        # Indistinguishable from a task that does not exist.
        assert body["detail"].replace(task_id, missing) == nobody.json()["detail"], name

    # The same Idempotency-Key from another user is another user's request: a task of its own.
    replay = await gateway.post(
        "/api/v1/tasks",
        json={"title": "alice's secret", "tags": ["private"], "priority": "urgent"},
        headers={**mallory.headers, "Idempotency-Key": "shared-key"},
    )
    assert replay.status_code == 201 and replay.json()["id"] != task_id
    assert replay.json()["owner_id"] == mallory.id

    # Lists: no filter or query shows Alice's task to Mallory.
    for params in ({}, {"tag": "private"}, {"q": "secret"}, {"priority": "urgent"}):
        page = await gateway.get("/api/v1/tasks", params=params, headers=mallory.headers)
        assert task_id not in {t["id"] for t in page.json()["items"]}, params
        assert all(t["owner_id"] == mallory.id for t in page.json()["items"])
    foreign = await gateway.get(
        "/api/v1/tasks", params={"owner_id": alice.id}, headers=mallory.headers
    )
    assert_problem(foreign, (403, 404))

    # Statistics: Mallory's count is her own task only, Alice's is intact.
    await eventually(
        lambda: summary(gateway, alice), lambda s: s["total"] == 1, timeout=20, what="counted"
    )
    mine = await eventually(
        lambda: summary(gateway, mallory), lambda s: s["total"] == 1, timeout=20, what="counted"
    )
    assert mine["by_priority"]["urgent"] == 1
    overview = await gateway.get("/api/v1/analytics/overview", headers=mallory.headers)
    assert_problem(overview, 403)
    users = await gateway.get("/api/v1/auth/users", headers=mallory.headers)
    assert_problem(users, 403)
    role = await gateway.patch(
        f"/api/v1/auth/users/{alice.id}", json={"disabled": True}, headers=mallory.headers
    )
    assert_problem(role, 403)

    # After all that, Alice's task is as she left it.
    after = await gateway.get(f"/api/v1/tasks/{task_id}", headers=alice.headers)
    assert after.status_code == 200
    assert (after.json()["version"], after.json()["title"]) == (1, "alice's secret")
    record("idor", routes=len(attempts), list_queries=4, admin_routes=3, leaked=0)
