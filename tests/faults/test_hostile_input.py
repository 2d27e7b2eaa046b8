"""Hostile input through the gateway: a fuzzer, NoSQL operators, oversized requests."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faults_client import assert_problem, create_tasks, new_user, record
from faults_stack import Suite

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FUZZ_SEED = "20261123"


async def test_the_fuzzer_finds_no_server_error_and_no_response_off_the_schema(
    suite: Suite, gateway: httpx.AsyncClient, tmp_path: Path
) -> None:
    user = await new_user(gateway, "fuzz")
    await create_tasks(gateway, user, 3)
    schemathesis = Path(sys.executable).parent / "schemathesis"
    argv = [
        str(schemathesis),
        "run",
        f"{suite.gateway_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {user.token}",
        "--checks",
        "not_a_server_error,response_schema_conformance,status_code_conformance,"
        "content_type_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "5",
        # Deleting the fuzzer's own account, logging its session out or changing its
        # password would revoke its token and turn the rest of the run into 401s.
        "--exclude-operation-id",
        "delete_me",
        "--exclude-operation-id",
        "logout",
        "--exclude-operation-id",
        "logout_everywhere",
        "--exclude-operation-id",
        "change_password",
        "--workers",
        "2",
        "--no-shrink",
        "--seed",
        FUZZ_SEED,
        "--suppress-health-check",
        "all",
        "--warnings",
        "off",
        "--request-timeout",
        "20",
    ]
    # cwd: hypothesis keeps its example database in the working directory.
    result = await asyncio.to_thread(
        subprocess.run, argv, cwd=tmp_path, capture_output=True, text=True, timeout=150
    )
    cases = re.search(r"(\d+) generated", result.stdout)
    record(
        "fuzzer",
        seed=FUZZ_SEED,
        cases=int(cases.group(1)) if cases else None,
        exit_code=result.returncode,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert cases and int(cases.group(1)) > 100, result.stdout[-2000:]


def _injections(task_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx keyword arguments) of requests carrying Mongo operators."""
    tasks, one = "/api/v1/tasks", f"/api/v1/tasks/{task_id}"
    return [
        ("POST", tasks, {"json": {"title": {"$gt": ""}}}),
        ("POST", tasks, {"json": {"title": "x", "$where": "sleep(5000)"}}),
        ("POST", tasks, {"json": {"title": "x", "priority": {"$in": ["low", "high"]}}}),
        ("POST", tasks, {"json": {"title": "x", "tags": [{"$ne": None}]}}),
        ("POST", tasks, {"json": {"title": "x", "a.b": 1}}),
        ("POST", tasks, {"json": {"title": "x", "owner_id": "someone-else"}}),
        ("PATCH", one, {"json": {"status": {"$ne": "done"}}}),
        ("PATCH", one, {"json": {"$set": {"owner_id": "someone-else"}}}),
        ("PATCH", one, {"json": {"owner_id": "someone-else"}}),
        ("PATCH", one, {"json": {"version": 99}}),
        ("PATCH", one, {"json": {"title": {"$regex": ".*"}}}),
        ("GET", f"{tasks}?status[$ne]=x", {}),
        ("GET", f"{tasks}?q[$regex]=.*", {}),
        ("GET", f"{tasks}?tag[$ne]=x", {}),
        ("GET", f"{tasks}?owner_id[$ne]=x", {}),
        ("GET", f"{tasks}?status=$ne", {}),
        ("GET", f"{tasks}?sort=$natural", {}),
        ("GET", f"{tasks}?limit[$gt]=0", {}),
        ("GET", f"{tasks}?cursor=eyIkZ3QiOiAiIn0", {}),  # base64url of {"$gt": ""}
        ("GET", f"{tasks}?$where=1", {}),
        ("GET", "/api/v1/analytics/timeline?from[$gt]=2020-01-01", {}),
        ("GET", "/api/v1/analytics/timeline?from=$gt", {}),
        ("POST", "/api/v1/auth/login", {"json": {"email": {"$gt": ""}, "password": {"$gt": ""}}}),
        (
            "POST",
            "/api/v1/auth/login",
            {"json": {"email": "a@example.com", "password": {"$ne": 1}}},
        ),
        ("POST", "/api/v1/auth/refresh", {"json": {"refresh_token": {"$ne": None}}}),
        (
            "POST",
            "/api/v1/auth/register",
            {"json": {"email": "x@example.com", "password": "0123456789ab", "role": "admin"}},
        ),
        ("POST", "/api/v1/auth/register", {"json": {"email": {"$gt": ""}, "password": "x" * 12}}),
    ]


async def test_nosql_operators_in_bodies_and_query_strings_are_refused_with_4xx(
    gateway: httpx.AsyncClient,
) -> None:
    user = await new_user(gateway)
    alpha, _ = await create_tasks(gateway, user, 2, prefix="alpha")
    accepted = []
    requests = _injections(alpha)
    for method, path, kwargs in requests:
        response = await gateway.request(method, path, headers=user.headers, **kwargs)
        if not 400 <= response.status_code < 500:
            accepted.append((method, path, response.status_code))
            continue
        assert_problem(response, response.status_code)
    record("nosql_injection", requests=len(requests), accepted=accepted)
    assert not accepted, accepted
    # A regular expression in `q` is literal text: it matches no title, so it lists nothing.
    regex = await gateway.get("/api/v1/tasks", params={"q": ".*"}, headers=user.headers)
    assert regex.status_code == 200 and regex.json()["items"] == []
    literal = await gateway.get("/api/v1/tasks", params={"q": "alpha 0"}, headers=user.headers)
    assert [t["id"] for t in literal.json()["items"]] == [alpha]
    # Nothing above changed the task.
    task = await gateway.get(f"/api/v1/tasks/{alpha}", headers=user.headers)
    assert task.json()["version"] == 1 and task.json()["owner_id"] == user.id


async def _stream(total: int) -> AsyncIterator[bytes]:
    yield b'{"title": "'
    for _ in range(total // 65536):
        yield b"a" * 65536
    yield b'"}'


async def test_oversized_and_malformed_bodies_are_refused_with_4xx(
    gateway: httpx.AsyncClient,
) -> None:
    user = await new_user(gateway)
    json_headers = {**user.headers, "content-type": "application/json"}
    big = b'{"title": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    cases: dict[str, tuple[int | tuple[int, ...], httpx.Response]] = {
        "2 MiB body": (413, await gateway.post("/api/v1/tasks", content=big, headers=json_headers)),
        "2 MiB chunked body, no length": (
            413,
            await gateway.post("/api/v1/tasks", content=_stream(2 << 20), headers=json_headers),
        ),
        "50k nested arrays": (
            (400, 422),
            await gateway.post(
                "/api/v1/tasks", content="[" * 50_000 + "]" * 50_000, headers=json_headers
            ),
        ),
        "truncated JSON": (
            (400, 422),
            await gateway.post("/api/v1/tasks", content=b'{"title": "x"', headers=json_headers),
        ),
        "201-character title": (
            422,
            await gateway.post("/api/v1/tasks", json={"title": "t" * 201}, headers=user.headers),
        ),
        "10 001-character description": (
            422,
            await gateway.post(
                "/api/v1/tasks",
                json={"title": "t", "description": "d" * 10_001},
                headers=user.headers,
            ),
        ),
        "21 tags": (
            422,
            await gateway.post(
                "/api/v1/tasks",
                json={"title": "t", "tags": [f"t{i}" for i in range(21)]},
                headers=user.headers,
            ),
        ),
        "query of 8000 characters": (
            (400, 422),
            await gateway.get("/api/v1/tasks", params={"q": "q" * 8000}, headers=user.headers),
        ),
    }
    for name, (status, response) in cases.items():
        assert response.status_code < 500, (name, response.status_code)
        assert_problem(response, status)
    assert (await gateway.get("/api/v1/tasks", headers=user.headers)).json()["items"] == []
    record(
        "oversized_bodies",
        cases=len(cases),
        statuses={n: r.status_code for n, (_, r) in cases.items()},
    )


def _raw_status(port: int, request: bytes) -> int | None:
    """The status line's code, or None when the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(request)
            head = sock.recv(64)
        except OSError:
            return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else None


async def test_oversized_headers_and_urls_are_refused_and_the_gateway_keeps_answering(
    suite: Suite, gateway: httpx.AsyncClient
) -> None:
    user = await new_user(gateway)
    port = suite.ports["gateway"]
    auth = f"Authorization: Bearer {user.token}\r\n".encode()
    start = b"GET /api/v1/tasks HTTP/1.1\r\nHost: taskmesh\r\n" + auth
    requests = {
        "one 1 MiB header": start + b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
        "20 000 headers": start + b"".join(b"X-%d: v\r\n" % i for i in range(20_000)) + b"\r\n",
        "1 MiB URL": b"GET /api/v1/tasks?q=" + b"a" * (1 << 20) + b" HTTP/1.1\r\n"
        b"Host: taskmesh\r\n" + auth + b"\r\n",
    }
    statuses = {
        name: await asyncio.to_thread(_raw_status, port, raw) for name, raw in requests.items()
    }
    record("oversized_headers", statuses=statuses)
    # Refused (a 4xx, or the connection closed), never served nor a server error.
    served = {n: s for n, s in statuses.items() if s is not None and not 400 <= s < 500}
    assert (await gateway.get("/api/v1/tasks", headers=user.headers)).status_code == 200
    assert not served, f"oversized requests were not refused: {served}"
