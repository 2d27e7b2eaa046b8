"""A task's life through the API: create, read, update, complete, reopen, delete."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from .conftest import TASKS, User

pytestmark = pytest.mark.integration

CreateTask = Callable[..., Awaitable[dict[str, Any]]]


async def test_full_life_cycle_of_a_task(
    client: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    created = await client.post(
        TASKS,
        json={
            "title": "Ship v1",
            "description": "all of it",
            "priority": "high",
            "due_date": "2030-01-31",
            "tags": ["release", "q1"],
        },
        headers=user.headers,
    )
    assert created.status_code == 201
    task = created.json()
    assert created.headers["Location"] == f"{TASKS}/{task['id']}"
    assert created.headers["ETag"] == '"1"'
    assert task["status"] == "todo"
    assert task["version"] == 1
    assert task["owner_id"] == user.id
    assert task["due_date"] == "2030-01-31T00:00:00Z"
    assert task["completed_at"] is None

    fetched = await client.get(created.headers["Location"], headers=user.headers)
    assert fetched.status_code == 200
    assert fetched.json() == task
    assert fetched.headers["ETag"] == '"1"'

    not_modified = await client.get(
        f"{TASKS}/{task['id']}", headers=user.with_headers(**{"If-None-Match": '"1"'})
    )
    assert not_modified.status_code == 304
    assert not_modified.content == b""

    done = await client.patch(
        f"{TASKS}/{task['id']}",
        json={"status": "done"},
        headers=user.with_headers(**{"If-Match": '"1"'}),
    )
    assert done.status_code == 200
    assert done.headers["ETag"] == '"2"'
    assert done.json()["status"] == "done"
    assert done.json()["completed_at"] is not None
    assert done.json()["title"] == "Ship v1"

    changed_since = await client.get(
        f"{TASKS}/{task['id']}", headers=user.with_headers(**{"If-None-Match": '"1"'})
    )
    assert changed_since.status_code == 200
    assert changed_since.json()["version"] == 2

    reopened = await client.patch(
        f"{TASKS}/{task['id']}",
        json={"status": "in_progress", "due_date": None, "tags": []},
        headers=user.headers,
    )
    assert reopened.status_code == 200
    body = reopened.json()
    assert (body["status"], body["completed_at"], body["due_date"], body["tags"]) == (
        "in_progress",
        None,
        None,
        [],
    )
    assert body["version"] == 3

    deleted = await client.delete(
        f"{TASKS}/{task['id']}", headers=user.with_headers(**{"If-Match": '"3"'})
    )
    assert deleted.status_code == 204
    assert (await client.get(f"{TASKS}/{task['id']}", headers=user.headers)).status_code == 404
    listed = await client.get(TASKS, headers=user.headers)
    assert listed.json() == {"items": [], "next_cursor": None}
    again = await client.delete(f"{TASKS}/{task['id']}", headers=user.headers)
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"


async def test_an_empty_patch_changes_nothing(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    user = make_user()
    task = await create_task(user)
    response = await client.patch(f"{TASKS}/{task['id']}", json={}, headers=user.headers)
    assert response.status_code == 200
    assert response.json() == task


async def test_stale_if_match_is_refused_with_412_and_changes_nothing(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    user = make_user()
    task = await create_task(user)
    url = f"{TASKS}/{task['id']}"
    assert (await client.patch(url, json={"title": "v2"}, headers=user.headers)).status_code == 200

    stale = await client.patch(
        url, json={"title": "lost update"}, headers=user.with_headers(**{"If-Match": '"1"'})
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    stale_delete = await client.delete(url, headers=user.with_headers(**{"If-Match": '"1"'}))
    assert stale_delete.status_code == 412

    current = (await client.get(url, headers=user.headers)).json()
    assert (current["title"], current["version"]) == ("v2", 2)


async def test_of_ten_concurrent_patches_with_one_if_match_exactly_one_wins(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    user = make_user()
    task = await create_task(user)
    url = f"{TASKS}/{task['id']}"

    async def patch(n: int) -> httpx.Response:
        return await client.patch(
            url, json={"title": f"writer {n}"}, headers=user.with_headers(**{"If-Match": '"1"'})
        )

    responses = await asyncio.gather(*(patch(n) for n in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 9
    winner = next(r for r in responses if r.status_code == 200).json()
    current = (await client.get(url, headers=user.headers)).json()
    assert current["version"] == 2
    assert current["title"] == winner["title"]


async def test_concurrent_patches_without_if_match_all_apply(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    user = make_user()
    task = await create_task(user)
    url = f"{TASKS}/{task['id']}"
    responses = await asyncio.gather(
        client.patch(url, json={"priority": "urgent"}, headers=user.headers),
        client.patch(url, json={"tags": ["x"]}, headers=user.headers),
        client.patch(url, json={"description": "d"}, headers=user.headers),
    )
    assert [r.status_code for r in responses] == [200, 200, 200]
    current = (await client.get(url, headers=user.headers)).json()
    assert (current["priority"], current["tags"], current["description"]) == ("urgent", ["x"], "d")
    assert current["version"] == 4


async def test_same_idempotency_key_returns_the_first_task_instead_of_a_second(
    client: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    headers = user.with_headers(**{"Idempotency-Key": "order-42"})
    body = {"title": "pay invoice", "tags": ["money"]}
    first = await client.post(TASKS, json=body, headers=headers)
    retries = await asyncio.gather(
        *(client.post(TASKS, json=body, headers=headers) for _ in range(3))
    )
    assert first.status_code == 201
    for retry in retries:
        assert retry.status_code == 201
        assert retry.json() == first.json()
        assert retry.headers["Location"] == first.headers["Location"]
        assert retry.headers["Idempotent-Replayed"] == "true"
    listed = (await client.get(TASKS, headers=user.headers)).json()
    assert [t["id"] for t in listed["items"]] == [first.json()["id"]]


async def test_a_burst_of_creates_shares_inserts_and_writes_every_task_once(
    client: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    def inserts() -> float:
        labels = {"command": "insert", "collection": "tasks"}
        return REGISTRY.get_sample_value("mongo_commands_total", labels) or 0.0

    user = make_user()
    before = inserts()
    responses = await asyncio.gather(
        *(client.post(TASKS, json={"title": f"t{n}"}, headers=user.headers) for n in range(30))
    )
    assert [r.status_code for r in responses] == [201] * 30
    assert inserts() - before < 30  # one insert a task without the batching
    listed = (await client.get(TASKS, params={"limit": 100}, headers=user.headers)).json()
    assert sorted(t["id"] for t in listed["items"]) == sorted(r.json()["id"] for r in responses)


async def test_idempotency_keys_are_per_user_and_refuse_a_different_body(
    client: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    alice, bob = make_user(), make_user()
    key = {"Idempotency-Key": "shared-key"}
    a = await client.post(TASKS, json={"title": "a"}, headers=alice.with_headers(**key))
    b = await client.post(TASKS, json={"title": "a"}, headers=bob.with_headers(**key))
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["owner_id"] == bob.id

    reused = await client.post(TASKS, json={"title": "other"}, headers=alice.with_headers(**key))
    assert reused.status_code == 422
    assert reused.json()["type"] == "urn:taskmesh:problem:idempotency-key-reused"


async def test_a_key_whose_task_was_deleted_is_not_replayed(
    client: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    headers = user.with_headers(**{"Idempotency-Key": "once"})
    first = await client.post(TASKS, json={"title": "a"}, headers=headers)
    await client.delete(first.headers["Location"], headers=user.headers)
    again = await client.post(TASKS, json={"title": "a"}, headers=headers)
    assert again.status_code == 409
