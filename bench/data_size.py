"""Data size: what one user's requests cost as every other user's data grows.

One user with a few tasks of its own (registered and written through the API) reads a task,
lists 20 and logs in through the gateway, with wrk, at each size in turn: the databases
topped up (``bench.seed``) to that many tasks, a hundred a user by default, so 1,000 tasks
over 10 users and then 100,000 over 1,000. The user's own data never changes; what it sees
should not either. ``ratios`` says how far it moved from the smallest size to the largest,
and how the list's throughput compares with the single task's at each size.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from taskmesh_local import RunningServices

from bench import stack
from bench.seed import seed_data
from bench.wrk import WrkResult, combine, lua_script, run_wrk

__all__ = ["ENDPOINTS", "data_size", "data_size_ratios"]

ENDPOINTS = ("get_one", "list_20", "login")
OWN_TASKS = 10
WARMUP_SECONDS = 2
# A login is an Argon2id verification, CPU-bound: more at once than the two cores only
# queue, and wrk would cut the queue at its timeout.
LOGIN_CONNECTIONS = 2


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def data_size(
    running: RunningServices,
    mongo_url: str,
    *,
    db_prefix: str,
    sizes: list[int],
    tasks_per_user: int,
    seconds: float,
    rounds: int,
    connections: int,
    work: Path,
) -> dict[str, Any]:
    """Rows of (size, endpoint) with wrk's rate and latencies, and their ratios.

    ``db_prefix``: the services' ``TASKMESH_MONGO_DB_PREFIX``, so the seed lands in the
    databases they read.
    """
    user = stack.new_user(running.urls["auth"], "data-size")
    own = stack.create_tasks(running.urls["tasks"], user, OWN_TASKS)
    gateway = running.gateway_url
    requests = {
        "get_one": (f"{gateway}/api/v1/tasks/{own[0]['id']}", lua_script(user.token)),
        "list_20": (f"{gateway}/api/v1/tasks?limit=20", lua_script(user.token)),
        "login": (
            f"{gateway}/api/v1/auth/login",
            lua_script(None, method="POST", body={"email": user.email, "password": user.password}),
        ),
    }
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    rows: list[dict[str, Any]] = []
    try:
        for size in sorted(sizes):
            users = max(1, size // tasks_per_user)
            _say(f"data size: seeding up to {size} tasks and {users} users")
            began = time.monotonic()
            added = await seed_data(
                client[f"{db_prefix}tasks"],
                client[f"{db_prefix}auth"],
                total_tasks=size,
                users=users,
                progress=lambda done: _say(f"data size: {done}"),
            )
            seed_seconds = round(time.monotonic() - began, 1)
            in_db = {
                "tasks": await client[f"{db_prefix}tasks"]["tasks"].count_documents({}),
                "users": await client[f"{db_prefix}auth"]["users"].count_documents({}),
            }
            runs: dict[str, list[WrkResult]] = {name: [] for name in ENDPOINTS}
            for name, (url, script) in requests.items():
                await run_wrk(
                    url,
                    script,
                    work,
                    seconds=WARMUP_SECONDS,
                    connections=_connections(name, connections),
                )
            # Rounds in turn, as the HTTP part does: a change in the machine's load hits
            # all three alike.
            per_round = max(1, round(seconds / rounds))
            for round_no in range(rounds):
                for name, (url, script) in requests.items():
                    _say(f"data size {size}: {name} via gateway, round {round_no + 1}")
                    runs[name].append(
                        await run_wrk(
                            url,
                            script,
                            work,
                            seconds=per_round,
                            connections=_connections(name, connections),
                        )
                    )
            for name in ENDPOINTS:
                rows.append(
                    {
                        "size": size,
                        "tasks_in_db": in_db["tasks"],
                        "users_in_db": in_db["users"],
                        "seeded_tasks": added["tasks"],
                        "seed_seconds": seed_seconds,
                        "endpoint": name,
                        "connections": _connections(name, connections),
                        **combine(runs[name]),
                    }
                )
    finally:
        await client.close()
    return {"own_tasks": OWN_TASKS, "rows": rows, "ratios": data_size_ratios(rows)}


def _connections(endpoint: str, connections: int) -> int:
    return min(connections, LOGIN_CONNECTIONS) if endpoint == "login" else connections


def data_size_ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The largest size against the smallest (p50 of the list and of login), and the list's
    throughput over the single task's at each size."""
    by = {(r["size"], r["endpoint"]): r for r in rows}
    sizes = sorted({r["size"] for r in rows})
    out: dict[str, Any] = {}
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for name in ("list_20", "login", "get_one"):
            first, last = by.get((small, name)), by.get((large, name))
            if first and last and first["p50_ms"]:
                out[f"{name}_p50_largest_over_smallest"] = round(
                    last["p50_ms"] / first["p50_ms"], 2
                )
    out["list_over_get_one_rps"] = {
        str(size): round(by[(size, "list_20")]["rps"] / by[(size, "get_one")]["rps"], 2)
        for size in sizes
        if (size, "list_20") in by and (size, "get_one") in by and by[(size, "get_one")]["rps"]
    }
    if sizes:
        out["smallest"], out["largest"] = sizes[0], sizes[-1]
    return out
