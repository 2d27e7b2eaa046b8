"""The paced writer: every request at its time, each user's token in turn, failures counted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from taskmesh_common.testing.http import serving

from bench.paced import paced_posts


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[tuple[str, object, str | None]]]]:
    """A server that records (Authorization, JSON body, Accept-Encoding) and refuses the
    token ``bad`` with a 401."""
    seen: list[tuple[str, object, str | None]] = []

    async def create(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        seen.append((auth, await request.json(), request.headers.get("Accept-Encoding")))
        if auth == "Bearer bad":
            return web.json_response({"title": "Unauthorized"}, status=401)
        return web.json_response({"id": str(len(seen))}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/tasks", create)
    async with serving(app) as base:
        yield f"{base}/api/v1/tasks", seen


async def test_sends_every_write_with_its_users_token_and_counts_the_refused(
    server: tuple[str, list[tuple[str, object, str | None]]],
) -> None:
    url, seen = server
    body = {"title": "bench write", "priority": "high", "tags": ["bench"]}
    result = await paced_posts(url, ["alice", "bad", "carol"], body, rate=200, seconds=0.06)

    assert result["requests"] == 12
    assert result["errors"] == 4  # every third write carries the refused token
    assert sorted(auth for auth, _, _ in seen) == sorted(
        ["Bearer alice", "Bearer bad", "Bearer carol"] * 4
    )
    assert all(sent == json.loads(json.dumps(body)) for _, sent, _ in seen)
    # As wrk: no compressed answers asked for, so the gateway does no gzip for the bench.
    assert {encoding for _, _, encoding in seen} == {None}
    assert result["p50_ms"] is not None and result["p99_ms"] >= result["p50_ms"]


async def test_an_unreachable_server_is_counted_as_failed_writes_not_an_exception() -> None:
    result = await paced_posts("http://127.0.0.1:9/x", ["t"], {}, rate=100, seconds=0.03)
    assert (result["requests"], result["errors"]) == (3, 3)
