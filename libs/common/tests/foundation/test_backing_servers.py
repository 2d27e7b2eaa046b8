"""The clients every service builds answer against the real servers, and readiness tells the truth."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.health import ReadinessRegistry
from taskmesh_common.mongo import (
    Document,
    create_mongo_client,
    ensure_indexes,
    find_by_ids,
    insert_each,
    insert_new,
    mongo_ping,
)
from taskmesh_common.redis import create_redis
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers

pytestmark = pytest.mark.integration


@pytest.fixture
async def mongo(backing_servers: BackingServers) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = create_mongo_client(backing_servers.mongo_url, timeout_seconds=5)
    yield client
    await client.close()


@pytest.fixture
async def db(mongo: AsyncMongoClient[Document]) -> AsyncIterator[AsyncDatabase[Document]]:
    database = mongo[unique_name("common")]
    yield database
    await mongo.drop_database(database.name)


async def test_mongo_client_pings_and_creates_unique_indexes(
    mongo: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    await mongo_ping(mongo)
    await ensure_indexes(db, {"things": [IndexModel([("key", ASCENDING)], unique=True)]})
    await db.things.insert_one({"key": "a"})
    with pytest.raises(DuplicateKeyError):
        await db.things.insert_one({"key": "a"})


async def test_indexes_are_ensured_again_on_restart_and_new_ones_added(
    mongo: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    """A service restarting on its existing database asks for all its indexes again: those
    that exist are left as they are, new ones are added."""
    models = [
        IndexModel([("owner", ASCENDING), (f"f{n}", DESCENDING), ("_id", DESCENDING)], name=f"i{n}")
        for n in range(4)
    ]
    await db.things.insert_one({"owner": "o"})
    await ensure_indexes(db, {"things": models[:3]})
    await ensure_indexes(db, {"things": models[:3]})
    await ensure_indexes(db, {"things": models})
    names = {index["name"] async for index in await db.things.list_indexes()}
    assert names == {"_id_", "i0", "i1", "i2", "i3"}
    await mongo_ping(mongo)


async def test_insert_new_inserts_what_is_new_and_names_what_existed(
    db: AsyncDatabase[Document],
) -> None:
    assert await insert_new(db.things, [{"_id": "a"}, {"_id": "b"}]) == set()
    refused = await insert_new(db.things, [{"_id": "c"}, {"_id": "a"}, {"_id": "c"}])
    assert refused == {1, 2}
    assert {d["_id"] async for d in db.things.find({})} == {"a", "b", "c"}
    assert await insert_new(db.things, []) == set()


async def test_insert_each_tells_written_from_duplicate_per_document(
    db: AsyncDatabase[Document],
) -> None:
    await db.things.insert_one({"_id": "a"})
    outcomes = await insert_each(
        db.things, [{"_id": "b"}, {"_id": "a"}, {"_id": "b"}, {"_id": "c"}]
    )
    assert outcomes == [True, False, False, True]
    assert await insert_each(db.things, []) == []
    assert {d["_id"] async for d in db.things.find({})} == {"a", "b", "c"}


async def test_find_by_ids_returns_the_documents_that_exist_by_id(
    db: AsyncDatabase[Document],
) -> None:
    await db.things.insert_many([{"_id": f"t{n}", "n": n, "extra": "x"} for n in range(40)])
    found = await find_by_ids(db.things, ["t3", "nope", "t39", "t3", "t0"], {"n": 1})
    assert found == {
        "t3": {"_id": "t3", "n": 3},
        "t39": {"_id": "t39", "n": 39},
        "t0": {"_id": "t0", "n": 0},
    }
    assert await find_by_ids(db.things, []) == {}


async def test_every_command_is_counted_by_command_and_collection(
    mongo: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    def count(command: str) -> float:
        value = REGISTRY.get_sample_value(
            "mongo_commands_total", {"command": command, "collection": "things"}
        )
        return value or 0.0

    finds, inserts = count("find"), count("insert")
    await db.things.insert_one({"_id": "a"})
    await db.things.find_one({"_id": "a"})
    await db.things.find_one({"_id": "b"})
    assert (count("find") - finds, count("insert") - inserts) == (2, 1)


async def test_readiness_fails_fast_naming_an_absent_server(
    backing_servers: BackingServers,
) -> None:
    redis_up = create_redis(backing_servers.redis_url)
    redis_down = create_redis("redis://127.0.0.1:1/0", timeout_seconds=0.3)
    mongo_down = create_mongo_client("mongodb://127.0.0.1:1", timeout_seconds=0.3)
    broker = BrokerConnection(backing_servers.amqp_url, name="readiness-test")
    broker.start()
    await broker.wait(timeout=15)
    registry = ReadinessRegistry(timeout=1.0)
    registry.add("redis", redis_up.ping)
    registry.add("rabbitmq", broker.check)
    registry.add("cache", redis_down.ping)
    registry.add("mongo", lambda: mongo_ping(mongo_down))
    try:
        results = await registry.run()
    finally:
        await broker.close()
        await redis_up.aclose()
        await redis_down.aclose()
        await mongo_down.close()
    assert results["redis"]["ok"] and results["rabbitmq"]["ok"]
    assert not results["cache"]["ok"] and not results["mongo"]["ok"]
