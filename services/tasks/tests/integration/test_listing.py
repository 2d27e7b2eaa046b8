"""Listing: filters, sort orders and keyset pagination over many pages."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from .conftest import TASKS, User

pytestmark = pytest.mark.integration

CreateTask = Callable[..., Awaitable[dict[str, Any]]]
PRIORITY_RANK = {"urgent": 0, "high": 1, "medium": 2, "low": 3}


async def walk(
    client: httpx.AsyncClient,
    user: User,
    params: dict[str, Any],
    between_pages: Callable[[], Awaitable[None]] | None = None,
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await client.get(TASKS, params=query, headers=user.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= params.get("limit", 20)
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        if between_pages is not None:
            await between_pages()
    raise AssertionError("pagination did not end")


@pytest.fixture(scope="module")
async def many(client: httpx.AsyncClient, tokens: Any) -> tuple[User, list[dict[str, Any]]]:
    """120 tasks of one user with mixed priorities and due dates (some none)."""
    user = User(tokens)
    rng = random.Random(5)
    bodies = [
        {
            "title": f"task {n}",
            "priority": rng.choice(list(PRIORITY_RANK)),
            **({"due_date": f"2031-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"} if n % 3 else {}),
        }
        for n in range(120)
    ]
    created: list[dict[str, Any]] = []
    for start in range(0, len(bodies), 20):
        responses = await asyncio.gather(
            *(client.post(TASKS, json=b, headers=user.headers) for b in bodies[start : start + 20])
        )
        assert all(r.status_code == 201 for r in responses)
        created.extend(r.json() for r in responses)
    return user, created


def _key(order: str, task: dict[str, Any]) -> tuple[Any, ...]:
    created = datetime.fromisoformat(task["created_at"])
    if order == "created_at":
        return (created, task["id"])
    if order == "due_date":
        return (task["due_date"] or "9999", task["id"])
    if order == "priority":
        return (PRIORITY_RANK[task["priority"]], -created.timestamp(), _neg(task["id"]))
    return (-created.timestamp(), _neg(task["id"]))


def _neg(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


@pytest.mark.parametrize("order", ["-created_at", "created_at", "due_date", "priority"])
async def test_pages_walk_every_task_exactly_once_in_order(
    client: httpx.AsyncClient, many: tuple[User, list[dict[str, Any]]], order: str
) -> None:
    user, created = many
    items = await walk(client, user, {"sort": order, "limit": 7})
    ids = [t["id"] for t in items]
    assert len(ids) == len(set(ids)) == 120
    assert set(ids) == {t["id"] for t in created}
    assert items == sorted(items, key=lambda t: _key(order, t))


async def test_default_page_is_20_newest_first_and_limit_is_capped(
    client: httpx.AsyncClient, many: tuple[User, list[dict[str, Any]]]
) -> None:
    user, _ = many
    first = (await client.get(TASKS, headers=user.headers)).json()
    assert len(first["items"]) == 20
    assert first["next_cursor"]
    full = (await client.get(TASKS, params={"limit": 100}, headers=user.headers)).json()
    assert len(full["items"]) == 100
    too_many = await client.get(TASKS, params={"limit": 101}, headers=user.headers)
    assert too_many.status_code == 422


@pytest.mark.parametrize("order", ["created_at", "-created_at"])
async def test_tasks_added_while_paging_cause_no_duplicates_or_gaps(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask, order: str
) -> None:
    user = make_user()
    originals = [await create_task(user, title=f"orig {n}") for n in range(35)]
    added: list[dict[str, Any]] = []

    async def add_some() -> None:
        for _ in range(3):
            added.append(await create_task(user, title="added later"))

    items = await walk(client, user, {"sort": order, "limit": 6}, between_pages=add_some)
    ids = [t["id"] for t in items]
    assert len(ids) == len(set(ids))
    assert {t["id"] for t in originals} <= set(ids)
    if order == "created_at":
        # Oldest first: what is added behind the cursor is still ahead of it, so it shows up.
        assert set(ids) == {t["id"] for t in originals + added}


async def test_filters_select_by_status_priority_tag_and_due_dates(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    user = make_user()
    a = await create_task(user, title="alpha", priority="low", tags=["home"], due_date="2030-01-10")
    b = await create_task(
        user, title="beta", priority="urgent", tags=["work"], due_date="2030-03-10"
    )
    c = await create_task(user, title="gamma", priority="urgent", tags=["work", "home"])
    await client.patch(f"{TASKS}/{b['id']}", json={"status": "done"}, headers=user.headers)

    async def ids(**params: str) -> set[str]:
        response = await client.get(TASKS, params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json()["items"]}

    assert await ids(status="done") == {b["id"]}
    assert await ids(status="todo") == {a["id"], c["id"]}
    assert await ids(priority="urgent") == {b["id"], c["id"]}
    assert await ids(tag="home") == {a["id"], c["id"]}
    assert await ids(tag="work", status="todo") == {c["id"]}
    assert await ids(due_before="2030-02-01") == {a["id"]}
    assert await ids(due_after="2030-02-01T00:00:00Z") == {b["id"]}
    assert await ids(due_after="2030-01-01", due_before="2030-12-31") == {a["id"], b["id"]}


async def test_q_matches_literal_text_case_insensitively_in_title_or_description(
    client: httpx.AsyncClient, make_user: Callable[..., User], create_task: CreateTask
) -> None:
    user = make_user()
    dotted = await create_task(user, title="Fix a.*b parser")
    plain = await create_task(user, title="aXXb", description="Call MOM (urgent?)")

    async def ids(q: str) -> set[str]:
        response = await client.get(TASKS, params={"q": q}, headers=user.headers)
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json()["items"]}

    assert await ids("a.*b") == {dotted["id"]}
    assert await ids("mom (URGENT?)") == {plain["id"]}
    assert await ids(".*") == {dotted["id"]}
    assert await ids("^") == set()
    assert await ids("[") == set()
