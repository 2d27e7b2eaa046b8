"""The README's walk-through, through the gateway, with the generated typed client.

register → login → create → list → PATCH with If-Match → summary, plus the problem details
a client gets on a stale If-Match: what clients/python (`make client`) gives a Python user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from taskmesh_client import AuthenticatedClient, Client
from taskmesh_client.api.analytics import summary
from taskmesh_client.api.auth import login, register
from taskmesh_client.api.tasks import create_task, list_tasks, update_task
from taskmesh_client.models import (
    LoginRequest,
    Problem,
    RegisterRequest,
    Status,
    SummaryOut,
    TaskCreate,
    TaskOut,
    TaskPage,
    TaskPatch,
    TokenResponse,
    UserOut,
)
from taskmesh_common.testing import random_email

PASSWORD = "walk-through password"


async def test_the_walkthrough_with_the_generated_client(
    suite: Any, poll: Callable[..., Awaitable[Any]]
) -> None:
    email = random_email("client")
    async with Client(base_url=suite.gateway_url, timeout=None) as anonymous:
        account = await register.asyncio(
            client=anonymous, body=RegisterRequest(email=email, password=PASSWORD)
        )
        assert isinstance(account, UserOut) and account.email == email
        tokens = await login.asyncio(
            client=anonymous, body=LoginRequest(email=email, password=PASSWORD)
        )
        assert isinstance(tokens, TokenResponse)

    async with AuthenticatedClient(
        base_url=suite.gateway_url, token=tokens.access_token, timeout=None
    ) as client:
        made = await create_task.asyncio_detailed(
            client=client, body=TaskCreate(title="write the walk-through")
        )
        assert made.status_code == HTTPStatus.CREATED and isinstance(made.parsed, TaskOut)
        task = made.parsed
        etag = made.headers["etag"]

        page = await list_tasks.asyncio(client=client)
        assert isinstance(page, TaskPage)
        assert [t.id for t in page.items] == [task.id]

        done = await update_task.asyncio(
            task.id, client=client, body=TaskPatch(status=Status.DONE), if_match=etag
        )
        assert isinstance(done, TaskOut) and done.status == Status.DONE

        # The same If-Match again is stale now: a typed Problem, not an exception.
        stale = await update_task.asyncio_detailed(
            task.id, client=client, body=TaskPatch(title="late"), if_match=etag
        )
        assert stale.status_code == HTTPStatus.PRECONDITION_FAILED
        assert isinstance(stale.parsed, Problem) and stale.parsed.status == 412
        assert stale.headers["content-type"].startswith("application/problem+json")

        stats = await poll(
            lambda: summary.asyncio(client=client),
            lambda s: isinstance(s, SummaryOut) and s.completed == 1,
            timeout=30,
        )
        assert stats.total == 1 and stats.completion_rate == 1.0
