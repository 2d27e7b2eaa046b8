"""Group commit (pure logic; the writes it batches are tested against real servers by its users)."""

from __future__ import annotations

import asyncio

import pytest
from taskmesh_common.batching import GroupCommit


async def test_calls_for_one_key_in_flight_together_go_in_one_batch_and_get_their_own_result() -> (
    None
):
    batches: list[tuple[str, list[int]]] = []
    first_written = asyncio.Event()

    async def run(key: str, batch: list[int]) -> list[int]:
        batches.append((key, batch))
        if batch == [0]:
            await first_written.wait()
        return [n * 10 for n in batch]

    commits: GroupCommit[str, int, int] = GroupCommit(run)
    first = asyncio.create_task(commits.submit("a", 0))
    while not batches:
        await asyncio.sleep(0)
    # The first batch is being written: the next calls for "a" queue, "b" goes at once.
    rest = asyncio.gather(*(commits.submit("a", n) for n in range(1, 5)), commits.submit("b", 9))
    while len(batches) < 2:
        await asyncio.sleep(0)
    first_written.set()
    results = await rest
    assert await first == 0
    assert results == [10, 20, 30, 40, 90]
    assert await commits.submit("a", 5) == 50
    assert batches == [("a", [0]), ("b", [9]), ("a", [1, 2, 3, 4]), ("a", [5])]


async def test_batches_are_bounded_by_max_batch() -> None:
    sizes: list[int] = []
    first_written = asyncio.Event()

    async def run(key: str, batch: list[int]) -> list[None]:
        sizes.append(len(batch))
        await first_written.wait()
        return [None] * len(batch)

    commits: GroupCommit[str, int, None] = GroupCommit(run, max_batch=3)
    first = asyncio.create_task(commits.submit("a", 0))
    while not sizes:
        await asyncio.sleep(0)
    rest = [asyncio.create_task(commits.submit("a", n)) for n in range(1, 8)]
    await asyncio.sleep(0)  # each call has queued
    first_written.set()
    await asyncio.gather(first, *rest)
    assert sizes == [1, 3, 3, 1]


async def test_a_failed_batch_fails_each_of_its_calls_and_not_the_next_batch() -> None:
    async def run(key: str, batch: list[int]) -> list[None]:
        await asyncio.sleep(0.01)
        if 1 in batch:
            raise RuntimeError("write failed")
        return [None] * len(batch)

    commits: GroupCommit[str, int, None] = GroupCommit(run)
    first = asyncio.create_task(commits.submit("a", 0))
    await asyncio.sleep(0.001)
    results = await asyncio.gather(
        *(commits.submit("a", n) for n in (1, 2)), return_exceptions=True
    )
    await first
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    await commits.submit("a", 5)  # the queue is usable again


async def test_a_run_that_returns_the_wrong_number_of_results_fails_its_callers() -> None:
    async def run(key: str, batch: list[int]) -> list[None]:
        return []

    commits: GroupCommit[str, int, None] = GroupCommit(run)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await commits.submit("a", 1)


async def test_a_caller_that_gives_up_does_not_cancel_the_batch() -> None:
    written: list[int] = []

    async def run(key: str, batch: list[int]) -> list[None]:
        await asyncio.sleep(0.05)
        written.extend(batch)
        return [None] * len(batch)

    commits: GroupCommit[str, int, None] = GroupCommit(run)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(commits.submit("a", 1), 0.01)
    await commits.submit("a", 2)
    assert written == [1, 2]


async def test_close_fails_what_is_still_queued() -> None:
    started = asyncio.Event()

    async def run(key: str, batch: list[int]) -> list[None]:
        started.set()
        await asyncio.sleep(10)
        return [None] * len(batch)

    commits: GroupCommit[str, int, None] = GroupCommit(run)
    pending = asyncio.create_task(commits.submit("a", 1))
    await started.wait()
    queued = asyncio.create_task(commits.submit("a", 2))
    await asyncio.sleep(0)
    await commits.close()
    for call in (pending, queued):
        with pytest.raises(RuntimeError, match="abandoned"):
            await call
