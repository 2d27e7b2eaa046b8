"""A user sees and changes only their own tasks: another's is a 404 on every verb."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from .conftest import TASKS, User

pytestmark = pytest.mark.integration

CreateTask = Callable[..., Awaitable[dict[str, Any]]]


async def test_another_users_task_is_404_on_every_verb_and_stays_unchanged(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    alice, mallory = make_user(), make_user()
    task = await create_task(alice, title="private", tags=["secret"])
    url = f"{TASKS}/{task['id']}"

    responses = [
        await client.get(url, headers=mallory.headers),
        await client.get(url, headers=mallory.with_headers(**{"If-None-Match": '"1"'})),
        await client.patch(url, json={"title": "pwned"}, headers=mallory.headers),
        await client.patch(
            url, json={"status": "done"}, headers=mallory.with_headers(**{"If-Match": '"1"'})
        ),
        await client.delete(url, headers=mallory.headers),
        await client.delete(url, headers=mallory.with_headers(**{"If-Match": "*"})),
    ]
    for response in responses:
        assert response.status_code == 404, response.request
        assert response.headers["content-type"] == "application/problem+json"
        assert "private" not in response.text

    still = await client.get(url, headers=alice.headers)
    assert still.status_code == 200
    assert still.json() == task


async def test_a_stranger_and_a_missing_task_look_the_same(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    alice, mallory = make_user(), make_user()
    task = await create_task(alice)
    theirs = await client.get(f"{TASKS}/{task['id']}", headers=mallory.headers)
    missing = await client.get(
        f"{TASKS}/00000000-0000-4000-8000-000000000000", headers=mallory.headers
    )
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["title"] == missing.json()["title"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"status": "todo"},
        {"priority": "high"},
        {"tag": "shared"},
        {"q": "shared"},
        {"due_before": "2100-01-01"},
        {"due_after": "2000-01-01"},
        {"sort": "due_date"},
        {"sort": "priority"},
        {"sort": "created_at"},
    ],
)
async def test_listing_never_shows_another_users_tasks(
    client: httpx.AsyncClient,
    make_user: Callable[..., User],
    create_task: CreateTask,
    params: dict[str, str],
) -> None:
    alice, bob = make_user(), make_user()
    fields = {
        "title": "shared words",
        "priority": "high",
        "tags": ["shared"],
        "due_date": "2050-06-01",
    }
    mine = await create_task(bob, **fields)
    await create_task(alice, **fields)
    listed = await client.get(TASKS, params=params, headers=bob.headers)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [mine["id"]]


async def test_only_admins_may_list_or_read_another_users_tasks(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    alice, bob, admin = make_user(), make_user(), make_user("admin")
    task = await create_task(alice)

    refused = await client.get(TASKS, params={"owner_id": alice.id}, headers=bob.headers)
    assert refused.status_code == 403
    own = await client.get(TASKS, params={"owner_id": bob.id}, headers=bob.headers)
    assert own.status_code == 200

    listed = await client.get(TASKS, params={"owner_id": alice.id}, headers=admin.headers)
    assert [t["id"] for t in listed.json()["items"]] == [task["id"]]
    read = await client.get(f"{TASKS}/{task['id']}", headers=admin.headers)
    assert read.status_code == 200
    # Admins read; they do not edit other people's tasks.
    edit = await client.patch(f"{TASKS}/{task['id']}", json={"title": "x"}, headers=admin.headers)
    assert edit.status_code == 404


async def test_requests_without_a_valid_token_are_401(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    task = await create_task(make_user())
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        for response in (
            await client.get(TASKS, headers=headers),
            await client.get(f"{TASKS}/{task['id']}", headers=headers),
            await client.post(TASKS, json={"title": "x"}, headers=headers),
        ):
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
