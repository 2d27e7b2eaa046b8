"""What the storage promises: lists served by indexes, guarded deletes, expiring keys."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient, monitoring
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory
from tasks_service.adapters.repository import task_indexes
from tasks_service.api.app import create_app

from .conftest import TASKS, User, make_settings

pytestmark = pytest.mark.integration

# Plan nodes that read through an index (DocumentDB's PostgreSQL plans; MongoDB's stages),
# and those that read the whole collection.
INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan", "IXSCAN"}
FULL_SCANS = {"Seq Scan", "COLLSCAN"}
OUR_INDEXES = {model.document["name"] for model in task_indexes()}
OTHER_OWNERS = 2000
# The server removes expired documents about once a minute.
EXPIRY_SECONDS = 150


class TaskFinds(monitoring.CommandListener):
    """The `find` commands sent to the tasks collection while `recording`."""

    def __init__(self) -> None:
        self.recording = False
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording and event.command_name == "find" and event.command["find"] == "tasks":
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture(scope="module")
def finds() -> TaskFinds:
    listener = TaskFinds()
    # Global listeners join clients created afterwards: the app below is created next.
    monitoring.register(listener)
    return listener


@pytest.fixture(scope="module")
async def recorded_app(
    backing_servers: BackingServers, tokens: TokenFactory, finds: TaskFinds
) -> AsyncIterator[FastAPI]:
    settings = make_settings(backing_servers, idempotency_key_seconds=1)
    app = create_app(settings, verifier=tokens.verifier())
    async with app.router.lifespan_context(app):
        await app.state.indexes_ready.wait()
        yield app


@pytest.fixture(scope="module")
async def api(recorded_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(recorded_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tasks") as client:
        yield client


def _scans(plan: Any) -> list[tuple[str, str | None]]:
    """Every node type / stage of a plan, with the index it reads if any."""
    if isinstance(plan, list):
        return [scan for item in plan for scan in _scans(item)]
    if not isinstance(plan, dict):
        return []
    node = plan.get("Node Type", plan.get("stage"))
    index = plan.get("Index Name", plan.get("indexName"))
    here = [(node, index)] if isinstance(node, str) else []
    return here + [scan for value in plan.values() for scan in _scans(value)]


@pytest.mark.parametrize("query", [{"limit": 20}, {"limit": 20, "status": "todo"}])
async def test_a_list_page_is_read_through_an_index(
    recorded_app: FastAPI,
    api: httpx.AsyncClient,
    finds: TaskFinds,
    tokens: TokenFactory,
    query: dict[str, Any],
) -> None:
    tasks = recorded_app.state.db["tasks"]
    if await tasks.estimated_document_count() < OTHER_OWNERS:
        # Other users' tasks, so that reading everything would cost what it costs in life.
        now = datetime.now(UTC)
        await tasks.insert_many(
            {
                "_id": str(uuid.uuid4()),
                "owner_id": f"other-{n % 200}",
                "status": "todo",
                "priority": "low",
                "priority_rank": 3,
                "tags": [],
                "created_at": now - timedelta(seconds=n),
                "due_sort": now,
                "version": 1,
            }
            for n in range(OTHER_OWNERS)
        )
    user = User(tokens)
    for n in range(3):
        await api.post(TASKS, json={"title": f"mine {n}"}, headers=user.headers)

    finds.recording = True
    try:
        page = await api.get(TASKS, params=query, headers=user.headers)
    finally:
        finds.recording = False
    assert page.status_code == 200
    assert len(page.json()["items"]) == 3
    # The list's own find: the relay, kicked by the writes above, reads tasks meanwhile.
    [sent] = [command for command in finds.commands if "sort" in command][-1:]
    finds.commands.clear()
    explained = await recorded_app.state.db.command(
        {
            "explain": {
                key: sent[key] for key in ("find", "filter", "sort", "limit", "projection")
            },
            "verbosity": "queryPlanner",
        }
    )
    planner = explained["queryPlanner"]
    scans = _scans(planner.get("winningPlan", planner))
    # DocumentDB reads a whole collection through its `_id_` index: one of ours must serve.
    assert any(node in INDEX_SCANS and index in OUR_INDEXES for node, index in scans), scans
    assert not any(node in FULL_SCANS for node, _ in scans), scans


async def test_of_concurrent_deletes_with_one_if_match_exactly_one_wins(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    user = User(tokens)
    created = await api.post(TASKS, json={"title": "once"}, headers=user.headers)
    url = created.headers["Location"]
    answers = await asyncio.gather(
        *(api.delete(url, headers=user.with_headers(**{"If-Match": '"1"'})) for _ in range(10))
    )
    codes = Counter(a.status_code for a in answers)
    # The losers find the task gone: 404, as for any deleted task.
    assert codes == {204: 1, 404: 9}, codes
    assert (await api.get(url, headers=user.headers)).status_code == 404


async def test_a_delete_with_if_match_is_404_for_a_stranger_and_412_when_stale(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    owner, stranger = User(tokens), User(tokens)
    created = await api.post(TASKS, json={"title": "mine"}, headers=owner.headers)
    url = created.headers["Location"]
    taken = await api.delete(url, headers=stranger.with_headers(**{"If-Match": '"1"'}))
    assert taken.status_code == 404
    await api.patch(url, json={"title": "moved on"}, headers=owner.headers)
    stale = await api.delete(url, headers=owner.with_headers(**{"If-Match": '"1"'}))
    assert stale.status_code == 412
    assert (await api.get(url, headers=owner.headers)).json()["version"] == 2


async def test_a_retry_completes_a_create_that_died_after_taking_its_key(
    recorded_app: FastAPI, api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    user = User(tokens)
    headers = user.with_headers(**{"Idempotency-Key": "crashy"})
    first = await api.post(TASKS, json={"title": "a"}, headers=headers)
    # As if the request had died between taking the key and inserting its task.
    await recorded_app.state.db["tasks"].delete_one({"_id": first.json()["id"]})

    retries = await asyncio.gather(
        *(api.post(TASKS, json={"title": "a"}, headers=headers) for _ in range(5))
    )
    assert {r.status_code for r in retries} == {201}
    assert {r.json()["id"] for r in retries} == {first.json()["id"]}
    listed = (await api.get(TASKS, headers=user.headers)).json()["items"]
    assert [t["id"] for t in listed] == [first.json()["id"]]


async def test_an_idempotency_key_is_forgotten_once_it_expires(
    recorded_app: FastAPI, api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    user = User(tokens)  # keys of this app live one second
    headers = user.with_headers(**{"Idempotency-Key": "short-lived"})
    first = await api.post(TASKS, json={"title": "a"}, headers=headers)
    keys = recorded_app.state.db["task_idempotency_keys"]

    async def remembered() -> int:
        return await keys.count_documents({"task_id": first.json()["id"]})

    assert await remembered() == 1

    async with asyncio.timeout(EXPIRY_SECONDS):
        while await remembered():
            await asyncio.sleep(1)

    # The key is free: another body under it is a new task, not a 422.
    second = await api.post(TASKS, json={"title": "b"}, headers=headers)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]


async def test_a_database_with_the_retired_unique_idem_index_takes_new_tasks(
    backing_servers: BackingServers, tokens: TokenFactory
) -> None:
    settings = make_settings(backing_servers)
    async with AsyncMongoClient(settings.mongo_url) as mongo:
        await mongo[settings.mongo_db]["tasks"].create_index(
            "idem", name="idempotency_key", unique=True
        )
    app = create_app(settings, verifier=tokens.verifier())
    async with app.router.lifespan_context(app):
        await app.state.indexes_ready.wait()
        user = User(tokens)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tasks") as client:
            for title in ("one", "two"):
                created = await client.post(TASKS, json={"title": title}, headers=user.headers)
                assert created.status_code == 201, created.text
