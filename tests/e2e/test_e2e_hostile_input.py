"""Hostile input to the tasks API through the gateway: always a 4xx problem, never a 5xx or a leak."""

from __future__ import annotations

import httpx

TASKS = "/api/v1/tasks"

BAD_CREATES = [
    {},
    {"title": ""},
    {"title": "x" * 201},
    {"title": {"$gt": ""}},
    {"title": ["a"]},
    {"title": 5},
    {"title": None},
    {"title": "ok", "$set": {"owner_id": "someone"}},
    {"title": "ok", "owner_id": "someone-else"},
    {"title": "ok", "a.b": 1},
    {"title": "ok", "status": {"$ne": "todo"}},
    {"title": "ok", "priority": "apocalyptic"},
    {"title": "ok", "description": "x" * 10_001},
    {"title": "ok", "tags": [f"t{i}" for i in range(21)]},
    {"title": "ok", "tags": ["x" * 51]},
    {"title": "ok", "tags": [{"$gt": ""}]},
    {"title": "ok", "due_date": "tomorrow-ish"},
    {"title": "ok", "due_date": 1_700_000_000},
    {"title": "ok", "version": 99},
    ["title"],
    "just a string",
]

BAD_PATCHES = [
    {"title": None},
    {"status": "finished"},
    {"status": None},
    {"$set": {"title": "x"}},
    {"title": {"$gt": ""}},
    {"owner_id": "someone-else"},
    {"tags": "not-a-list"},
    {"version": 1},
]

BAD_QUERIES = [
    {"limit": "0"},
    {"limit": "101"},
    {"limit": "100000000000000000000"},
    {"limit": "ten"},
    {"cursor": "garbage"},
    {"cursor": "eyJub3QiOiJhIGN1cnNvciJ9"},
    {"sort": "password"},
    {"sort": "$natural"},
    {"status": "nope"},
    {"status[$ne]": "done"},
    {"priority": "urgent", "extra": "1"},
    {"due_before": "not a date"},
    {"q": "x" * 5000},
]


def _offenders(responses: list[tuple[object, httpx.Response]]) -> list[tuple[object, int]]:
    bad = []
    for what, response in responses:
        problem_json = response.headers.get("content-type", "").startswith(
            "application/problem+json"
        )
        if not (400 <= response.status_code < 500 and problem_json):
            bad.append((what, response.status_code))
    return bad


async def test_malformed_or_hostile_task_bodies_are_4xx_problems(api):
    user = await api.new_user()
    answers = [
        (body, await api.client.post(TASKS, json=body, headers=user.headers))
        for body in BAD_CREATES
    ]
    answers.append(
        ("not json", await api.client.post(TASKS, content=b"{title:", headers=user.headers))
    )
    assert _offenders(answers) == []
    listed = await api.client.get(TASKS, headers=user.headers)
    assert listed.json()["items"] == [], "no hostile body created a task"


async def test_malformed_or_hostile_patches_are_4xx_problems_and_change_nothing(api):
    user = await api.new_user()
    task = await api.create_task(user, title="keep me")
    url = f"{TASKS}/{task['id']}"
    answers = [
        (body, await api.client.patch(url, json=body, headers=user.headers)) for body in BAD_PATCHES
    ]
    for if_match in ("garbage", '"not-a-number"', '"-1"', "W/"):
        answers.append(
            (
                if_match,
                await api.client.patch(
                    url, json={"title": "x"}, headers=user.headers | {"If-Match": if_match}
                ),
            )
        )
    assert _offenders(answers) == []
    after = (await api.client.get(url, headers=user.headers)).json()
    assert after == task


async def test_hostile_list_queries_are_4xx_problems(api):
    user = await api.new_user()
    answers = [
        (params, await api.client.get(TASKS, params=params, headers=user.headers))
        for params in BAD_QUERIES
    ]
    assert _offenders(answers) == []


async def test_odd_task_ids_in_the_path_are_4xx_problems(api):
    user = await api.new_user()
    ids = ["not-a-uuid", "%24gt", "..%2F..%2Fauth", "x" * 3000, "'; drop table tasks; --", "{}"]
    answers = [
        (task_id, await api.client.get(f"{TASKS}/{task_id}", headers=user.headers))
        for task_id in ids
    ]
    assert _offenders(answers) == []


async def test_an_oversized_idempotency_key_is_a_4xx_problem(api):
    user = await api.new_user()
    response = await api.client.post(
        TASKS, json={"title": "t"}, headers=user.headers | {"Idempotency-Key": "k" * 300}
    )
    assert _offenders([("key", response)]) == []
