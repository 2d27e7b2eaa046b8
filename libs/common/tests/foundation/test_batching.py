from __future__ import annotations

import asyncio

import pytest
from analytics_service.batching import UserBatches


async def test_events_of_one_user_in_flight_together_are_written_in_one_batch() -> None:
    batches: list[tuple[str, list[int]]] = []

    async def apply(key: str, batch: list[int]) -> None:
        batches.append((key, batch))
        await asyncio.sleep(0.01)

    users = UserBatches(apply)
    first = asyncio.create_task(users.submit("a", 0))
    await asyncio.sleep(0.001)  # the first batch is being written: the next ones queue
    await asyncio.gather(*(users.submit("a", n) for n in range(1, 5)), users.submit("b", 9))
    await first
    await users.submit("a", 5)
    assert batches == [("a", [0]), ("b", [9]), ("a", [1, 2, 3, 4]), ("a", [5])]


async def test_a_failed_batch_fails_each_of_its_events_and_not_the_next_batch() -> None:
    async def apply(key: str, batch: list[int]) -> None:
        await asyncio.sleep(0.01)
        if 1 in batch:
            raise RuntimeError("write failed")

    users = UserBatches(apply)
    first = asyncio.create_task(users.submit("a", 0))
    await asyncio.sleep(0.001)
    results = await asyncio.gather(*(users.submit("a", n) for n in (1, 2)), return_exceptions=True)
    await first
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    await users.submit("a", 5)  # the queue is usable again


async def test_a_caller_that_gives_up_does_not_cancel_the_batch() -> None:
    written: list[int] = []

    async def apply(key: str, batch: list[int]) -> None:
        await asyncio.sleep(0.05)
        written.extend(batch)

    users = UserBatches(apply)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(users.submit("a", 1), 0.01)
    await users.submit("a", 2)
    assert written == [1, 2]
