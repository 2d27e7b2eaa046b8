"""`DocumentLocks.holding_free`: the outbox sweep's bulk locks, against the real server."""

from __future__ import annotations

import asyncio

import pytest
from taskmesh_common.locks import DocumentLocks
from taskmesh_common.testing import unique_name

pytestmark = pytest.mark.integration


async def test_free_keys_are_held_for_the_block_and_busy_ones_left_out(db) -> None:
    locks = DocumentLocks(db[unique_name("locks")], wait_seconds=5)
    other_replica = DocumentLocks(locks.collection, wait_seconds=5)
    token = await other_replica.acquire("b")  # held by another replica
    async with locks.holding("c"):  # held by this process
        async with locks.holding_free(["a", "b", "c", "d", "a"]) as held:
            assert held == {"a", "d"}
            assert {d["_id"] async for d in locks.collection.find({})} == {"a", "b", "c", "d"}
    await other_replica.release("b", token)
    assert await locks.collection.count_documents({}) == 0


async def test_a_writer_waits_for_a_bulk_holder_and_then_gets_the_key(db) -> None:
    locks = DocumentLocks(db[unique_name("locks")], wait_seconds=5)
    order: list[str] = []

    async def writer() -> None:
        async with locks.holding("a"):
            order.append("writer")

    async with locks.holding_free(["a", "b"]) as held:
        assert held == {"a", "b"}
        waiting = asyncio.create_task(writer())
        await asyncio.sleep(0.1)
        order.append("bulk done")
    await asyncio.wait_for(waiting, 5)
    assert order == ["bulk done", "writer"]
    assert await locks.collection.count_documents({}) == 0
