"""Tasks through the gateway: life cycle, isolation between users, paging, concurrency headers."""

from __future__ import annotations

import asyncio
import uuid

import pytest

TASKS = "/api/v1/tasks"


async def test_task_life_cycle_from_create_to_delete(api, problem):
    user = await api.new_user()
    created = await api.client.post(
        TASKS,
        json={
            "title": "write the report",
            "description": "quarterly",
            "priority": "high",
            "due_date": "2031-01-31",
            "tags": ["work", "q1"],
        },
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers["Location"].endswith(task["id"])
    assert created.headers["ETag"] == '"1"'
    assert task["status"] == "todo" and task["version"] == 1 and task["completed_at"] is None
    assert task["owner_id"] == user.id and task["tags"] == ["work", "q1"]

    fetched = await api.client.get(f"{TASKS}/{task['id']}", headers=user.headers)
    assert fetched.status_code == 200 and fetched.json() == task

    listed = await api.client.get(TASKS, headers=user.headers)
    assert [t["id"] for t in listed.json()["items"]] == [task["id"]]

    started = await api.patch_task(user, task["id"], status="in_progress", title="write it")
    assert started["title"] == "write it" and started["version"] == 2
    assert started["description"] == "quarterly", "a partial update keeps other fields"

    done = await api.patch_task(user, task["id"], status="done")
    assert done["completed_at"] is not None and done["version"] == 3
    reopened = await api.patch_task(user, task["id"], status="todo")
    assert reopened["completed_at"] is None

    deleted = await api.client.delete(f"{TASKS}/{task['id']}", headers=user.headers)
    assert deleted.status_code == 204
    problem(await api.client.get(f"{TASKS}/{task['id']}", headers=user.headers), 404)
    assert (await api.client.get(TASKS, headers=user.headers)).json()["items"] == []


async def test_another_users_task_is_a_404_on_every_verb_and_stays_untouched(api, problem):
    owner, stranger = await api.new_user(), await api.new_user()
    task = await api.create_task(owner, title="secret plan", tags=["private"])
    url = f"{TASKS}/{task['id']}"

    hidden = problem(await api.client.get(url, headers=stranger.headers), 404)
    problem(await api.client.patch(url, json={"title": "mine"}, headers=stranger.headers), 404)
    problem(
        await api.client.patch(
            url, json={"title": "x"}, headers=stranger.headers | {"If-Match": '"1"'}
        ),
        404,
    )
    problem(await api.client.delete(url, headers=stranger.headers), 404)
    # Same answer as for a task that never existed: nothing tells them it is there.
    never = await api.client.get(f"{TASKS}/{uuid.uuid4()}", headers=stranger.headers)
    missing = problem(never, 404)
    assert (hidden["type"], hidden["title"]) == (missing["type"], missing["title"])

    after = await api.client.get(url, headers=owner.headers)
    assert after.status_code == 200 and after.json() == task


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "secret"},
        {"tag": "private"},
        {"status": "todo"},
        {"priority": "urgent"},
        {"due_before": "2100-01-01"},
        {"sort": "priority"},
    ],
    ids=lambda p: "-".join(p) or "no-filter",
)
async def test_list_filters_never_show_another_users_tasks(api, params):
    owner, stranger = await api.new_user(), await api.new_user()
    await api.create_task(
        owner, title="secret plan", priority="urgent", tags=["private"], due_date="2030-05-05"
    )
    listed = await api.client.get(TASKS, params=params, headers=stranger.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
    assert (await api.client.get(TASKS, params=params, headers=owner.headers)).json()["items"]


async def test_a_user_cannot_list_another_users_tasks_by_owner_id(api):
    owner, stranger = await api.new_user(), await api.new_user()
    await api.create_task(owner)
    listed = await api.client.get(TASKS, params={"owner_id": owner.id}, headers=stranger.headers)
    assert 400 <= listed.status_code < 500
    assert "items" not in listed.json()


async def test_filters_select_exactly_the_matching_tasks(api):
    user = await api.new_user()
    a = await api.create_task(
        user, title="buy milk", priority="low", tags=["home"], due_date="2030-01-10"
    )
    b = await api.create_task(
        user, title="file taxes (.*)", priority="urgent", tags=["money"], due_date="2030-03-10"
    )
    c = await api.create_task(user, title="call mum", description="about milk", priority="low")
    await api.patch_task(user, c["id"], status="done")

    async def ids(**params):
        page = await api.client.get(TASKS, params=params, headers=user.headers)
        assert page.status_code == 200, page.text
        return {t["id"] for t in page.json()["items"]}

    assert await ids(q="milk") == {a["id"], c["id"]}
    assert await ids(q="MILK") == {a["id"], c["id"]}
    assert await ids(q=".*") == {b["id"]}, "q is literal text, not a pattern"
    assert await ids(priority="low") == {a["id"], c["id"]}
    assert await ids(status="done") == {c["id"]}
    assert await ids(tag="money") == {b["id"]}
    assert await ids(due_before="2030-02-01") == {a["id"]}
    assert await ids(due_after="2030-02-01") == {b["id"]}
    by_priority = await api.client.get(TASKS, params={"sort": "priority"}, headers=user.headers)
    assert by_priority.json()["items"][0]["id"] == b["id"]


async def test_pagination_walks_every_task_once_even_while_tasks_are_added(api):
    user = await api.new_user()
    limit = asyncio.Semaphore(8)

    async def create(i: int) -> str:
        async with limit:
            return (await api.create_task(user, title=f"task {i:02d}"))["id"]

    created = set(await asyncio.gather(*(create(i) for i in range(55))))
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        page = await api.client.get(TASKS, params=params, headers=user.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 10
        seen += [t["id"] for t in body["items"]]
        pages += 1
        if pages == 2:
            await api.create_task(user, title="added while paging")
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 20, "the cursor never ends"
    assert len(seen) == len(set(seen)), "a task came twice"
    assert created <= set(seen), f"missing: {created - set(seen)}"
    assert pages >= 6


async def test_stale_if_match_is_refused_with_412_and_changes_nothing(api, problem):
    user = await api.new_user()
    task = await api.create_task(user, title="original")
    url = f"{TASKS}/{task['id']}"
    first = await api.client.patch(
        url, json={"title": "first"}, headers=user.headers | {"If-Match": '"1"'}
    )
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'

    stale = await api.client.patch(
        url, json={"title": "second"}, headers=user.headers | {"If-Match": '"1"'}
    )
    problem(stale, 412)
    stale_delete = await api.client.delete(url, headers=user.headers | {"If-Match": '"1"'})
    problem(stale_delete, 412)
    now = await api.client.get(url, headers=user.headers)
    assert now.json()["title"] == "first" and now.json()["version"] == 2


async def test_racing_writers_with_the_same_if_match_only_one_wins(api):
    user = await api.new_user()
    task = await api.create_task(user)
    url = f"{TASKS}/{task['id']}"
    answers = await asyncio.gather(
        *(
            api.client.patch(
                url, json={"title": f"writer {i}"}, headers=user.headers | {"If-Match": '"1"'}
            )
            for i in range(5)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1, statuses
    assert all(s in (200, 409, 412) for s in statuses), statuses


async def test_unchanged_task_answers_304_to_if_none_match(api):
    user = await api.new_user()
    task = await api.create_task(user)
    url = f"{TASKS}/{task['id']}"
    first = await api.client.get(url, headers=user.headers)
    etag = first.headers["ETag"]
    cached = await api.client.get(url, headers=user.headers | {"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    await api.patch_task(user, task["id"], title="changed")
    fresh = await api.client.get(url, headers=user.headers | {"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.json()["title"] == "changed"


async def test_idempotency_key_makes_a_retried_create_return_the_first_task(api, problem):
    user = await api.new_user()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"title": "pay rent"}
    first = await api.client.post(TASKS, json=body, headers=user.headers | key)
    again = await api.client.post(TASKS, json=body, headers=user.headers | key)
    assert first.status_code == 201 and again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    listed = await api.client.get(TASKS, headers=user.headers)
    assert [t["id"] for t in listed.json()["items"]] == [first.json()["id"]]

    other_user = await api.new_user()
    theirs = await api.client.post(TASKS, json=body, headers=other_user.headers | key)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]

    reused = await api.client.post(
        TASKS, json={"title": "something else"}, headers=user.headers | key
    )
    assert 400 <= reused.status_code < 500
