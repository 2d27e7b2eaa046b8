"""Hostile input is a 4xx problem+json: never a 500, never a change, never a leak."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from .conftest import TASKS, User

pytestmark = pytest.mark.integration

CreateTask = Callable[..., Awaitable[dict[str, Any]]]

BAD_CREATE_BODIES: list[Any] = [
    {"title": {"$gt": ""}},
    {"title": "x", "$set": {"owner_id": "someone"}},
    {"title": "x", "a.b": 1},
    {"title": "x", "owner_id": "someone"},
    {"title": "x", "status": "done"},
    {"title": "x", "version": 9},
    {"title": 5},
    {"title": None},
    {"title": ""},
    {"title": "   "},
    {"title": "x" * 201},
    {"title": "x", "description": "y" * 10_001},
    {"title": "x", "tags": [f"t{n}" for n in range(21)]},
    {"title": "x", "tags": ["x" * 51]},
    {"title": "x", "tags": "one"},
    {"title": "x", "tags": [{"$ne": 1}]},
    {"title": "x", "priority": "critical"},
    {"title": "x", "priority": {"$in": ["low"]}},
    {"title": "x", "due_date": {"$gt": ""}},
    {"title": "x", "due_date": 12345},
    {"title": "x", "due_date": "tomorrow"},
    {},
    [],
    ["title"],
    "title",
]


@pytest.mark.parametrize("body", BAD_CREATE_BODIES, ids=range(len(BAD_CREATE_BODIES)))
async def test_bad_create_bodies_are_422_and_create_nothing(
    client: httpx.AsyncClient, make_user: Callable[..., User], body: Any
) -> None:
    user = make_user()
    response = await client.post(TASKS, json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(TASKS, headers=user.headers)).json()["items"] == []


async def test_a_body_that_is_not_json_is_4xx(
    client: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    response = await client.post(
        TASKS,
        content=b"{not json",
        headers=user.with_headers(**{"Content-Type": "application/json"}),
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


BAD_PATCH_BODIES: list[Any] = [
    {"version": 5},
    {"owner_id": "someone"},
    {"status": {"$ne": "x"}},
    {"status": "finished"},
    {"title": None},
    {"tags": None},
    {"$set": {"title": "x"}},
    {"title.first": "x"},
    {"completed_at": "2030-01-01"},
    [],
]


@pytest.mark.parametrize("body", BAD_PATCH_BODIES, ids=range(len(BAD_PATCH_BODIES)))
async def test_bad_patch_bodies_are_422_and_change_nothing(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask, body: Any
) -> None:
    user = make_user()
    task = await create_task(user)
    url = f"{TASKS}/{task['id']}"
    response = await client.patch(url, json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert (await client.get(url, headers=user.headers)).json() == task


BAD_QUERIES: list[dict[str, str]] = [
    {"limit": "1000"},
    {"limit": "0"},
    {"limit": "-1"},
    {"limit": "ten"},
    {"cursor": "garbage"},
    {"cursor": "eyJzIjoiLWNyZWF0ZWRfYXQiLCJrIjpbMSwiJGd0Il19"},
    {"cursor": "x" * 2000},
    {"sort": "owner_id"},
    {"sort": "-priority"},
    {"status": "bogus"},
    {"priority": "$ne"},
    {"status[$ne]": "todo"},
    {"owner_id[$ne]": "x"},
    {"due_before": "soon"},
    {"due_after": "2030-13-01"},
    {"q": "x" * 201},
    {"tag": "x" * 51},
]


@pytest.mark.parametrize("params", BAD_QUERIES, ids=range(len(BAD_QUERIES)))
async def test_bad_list_queries_are_4xx(
    client: httpx.AsyncClient, make_user: Callable[..., User], params: dict[str, str]
) -> None:
    response = await client.get(TASKS, params=params, headers=make_user().headers)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_cursor_from_another_sort_is_refused(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    user = make_user()
    for _ in range(3):
        await create_task(user)
    first = (await client.get(TASKS, params={"limit": 1}, headers=user.headers)).json()
    response = await client.get(
        TASKS,
        params={"limit": 1, "sort": "due_date", "cursor": first["next_cursor"]},
        headers=user.headers,
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:taskmesh:problem:invalid-cursor"


@pytest.mark.parametrize(
    "task_id", ["not-a-uuid", '{"$gt":""}', "..", "%24where", "1" * 200, "' OR 1=1"]
)
async def test_ids_that_cannot_be_tasks_are_404_or_422(
    client: httpx.AsyncClient, make_user: Callable[..., User], task_id: str
) -> None:
    user = make_user()
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method, f"{TASKS}/{task_id}", json={"title": "x"}, headers=user.headers
        )
        assert response.status_code in (404, 405, 422), (method, response.text)


async def test_garbage_if_match_is_412_and_oversized_headers_are_422(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    user = make_user()
    task = await create_task(user)
    url = f"{TASKS}/{task['id']}"
    garbage = await client.patch(
        url, json={"title": "y"}, headers=user.with_headers(**{"If-Match": "garbage"})
    )
    assert garbage.status_code == 412
    long_key = await client.post(
        TASKS, json={"title": "x"}, headers=user.with_headers(**{"Idempotency-Key": "k" * 300})
    )
    assert long_key.status_code == 422
    assert (await client.get(url, headers=user.headers)).json() == task
