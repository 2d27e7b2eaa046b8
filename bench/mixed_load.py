"""The mixed workload with Locust (headless, a child process per run) through the gateway:
user steps of increasing size (the knee), then the login storm. Meanwhile the gateway's
breakers are read from its internal listener's /readyz every half second.

    uv run python -m bench --only mixed [--mixed-users 25,50,100,150] [--storm-users 100]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench import stack
from bench.mixed_stats import WORK_ROUTES, entry, holds, knee, load_samples, route_table

__all__ = ["mixed_workload"]

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
BREAKER_POLL_SECONDS = 0.5
# Each run's users come from their own 127.<subnet>.0.0/16: a later run's users are never
# counted against an earlier one's per-address limits.
FIRST_SUBNET = 10
STORM_SUBNET = 99


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def _breakers_seen(internal_url: str) -> AsyncIterator[dict[str, list[str]]]:
    """Every state each of the gateway's breakers was seen in while the block ran
    (`internal_url`: the gateway's internal listener, where /readyz has the breakers)."""
    seen: dict[str, list[str]] = {}

    async def poll() -> None:
        async with httpx.AsyncClient(base_url=internal_url, timeout=2) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    upstreams = (await client.get("/readyz")).json()["upstreams"]
                    for group, detail in upstreams.items():
                        states = seen.setdefault(group, [])
                        if detail["state"] not in states:
                            states.append(detail["state"])
                await asyncio.sleep(BREAKER_POLL_SECONDS)

    poller = asyncio.create_task(poll())
    try:
        yield seen
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller


async def _locust(
    gateway_url: str,
    *,
    users: int,
    rate: float,
    seconds: float,
    subnet: int,
    work: Path,
    label: str,
) -> tuple[list[dict[str, Any]], float]:
    """Locust's samples, and the CPU seconds Locust itself used (it shares the machine)."""
    samples = work / f"locust-{label}.jsonl"
    log = work / f"locust-{label}.log"
    env = {
        **os.environ,
        "BENCH_LOCUST_SAMPLES": str(samples),
        "BENCH_LOCUST_SUBNET": str(subnet),
        "BENCH_LOCUST_ENTRY_DEADLINE": str(seconds),
    }
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(rate),
        "--run-time",
        f"{round(seconds)}s",
        "--stop-timeout",
        "3",
        "--host",
        gateway_url,
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
        code = await proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    found = load_samples(samples)
    # Locust exits with 1 when any request failed: that is a result, not a broken run.
    if code not in (0, 1) or not found:
        raise RuntimeError(f"locust ({label}) exited {code}: {log.read_text()[-2000:]}")
    return found, round(cpu, 1)


def _rate_after(samples: list[dict[str, Any]], since: float) -> float:
    """Requests a second from `since` (all users arrived) to the last request sent."""
    late = [float(s["t"]) for s in samples if s["route"] in _REQUEST_ROUTES and s["t"] >= since]
    if len(late) < 2:
        return 0.0
    return round(len(late) / max(1e-3, max(late) - since), 1)


_REQUEST_ROUTES = frozenset(
    ("register", "login", "list", "create", "get", "complete", "summary", "refresh")
)


async def _step(
    gateway_url: str, internal_url: str, users: int, args: Any, subnet: int, work: Path
) -> dict[str, Any]:
    spawn = users / args.mixed_spawn_rate
    _say(
        f"mixed workload: {users} users (arriving {args.mixed_spawn_rate:g}/s), "
        f"then {args.mixed_seconds:g} s"
    )
    began = time.time()
    async with _breakers_seen(internal_url) as breakers:
        samples, locust_cpu = await _locust(
            gateway_url,
            users=users,
            rate=args.mixed_spawn_rate,
            seconds=spawn + args.mixed_seconds,
            subnet=subnet,
            work=work,
            label=f"step-{users}",
        )
    table = route_table(samples)
    return {
        "users": users,
        "rps": _rate_after(samples, began + spawn),
        "holds": holds(table),
        "work_holds": holds(table, WORK_ROUTES),
        "routes": table,
        "breakers_seen": breakers,
        "entry": entry(samples, users),
        "seconds": round(time.time() - began, 1),
        "locust_cpu_seconds": locust_cpu,
    }


def _warm_up(gateway_url: str) -> None:
    """Every route once or a few times through the gateway: a new set's first requests pay
    for connections, indexes and caches that no step should be charged with."""
    user = stack.new_user(gateway_url, "mixed-warm")
    with httpx.Client(base_url=gateway_url, headers=user.headers, timeout=30) as client:
        for _ in range(5):
            created = client.post("/api/v1/tasks", json={"title": "warm", "tags": ["bench"]})
            created.raise_for_status()
            got = client.get(f"/api/v1/tasks/{created.json()['id']}")
            client.patch(
                f"/api/v1/tasks/{created.json()['id']}",
                json={"status": "done"},
                headers={"If-Match": got.headers["ETag"]},
            ).raise_for_status()
            client.get("/api/v1/tasks?limit=20").raise_for_status()
            client.get("/api/v1/analytics/summary").raise_for_status()


async def mixed_workload(
    gateway_url: str, internal_url: str, args: Any, work: Path
) -> dict[str, Any]:
    """The steps in increasing order (the knee is the last before the first that does not
    hold; all are taken, to show how each route bends), then the storm."""
    await asyncio.to_thread(_warm_up, gateway_url)
    steps: list[dict[str, Any]] = []
    for i, users in enumerate(int(n) for n in args.mixed_users.split(",")):
        step = await _step(gateway_url, internal_url, users, args, FIRST_SUBNET + i, work)
        steps.append(step)
    users, rate = args.storm_users, args.storm_rate
    _say(f"storm: {users} users arriving {rate:g}/s, {args.storm_seconds:g} s in all")
    async with _breakers_seen(internal_url) as breakers:
        samples, locust_cpu = await _locust(
            gateway_url,
            users=users,
            rate=rate,
            seconds=args.storm_seconds,
            subnet=STORM_SUBNET,
            work=work,
            label="storm",
        )
    storm = {
        "users": users,
        "arrivals_per_s": rate,
        "seconds": args.storm_seconds,
        "routes": route_table(samples),
        "entry": entry(samples, users),
        "breakers_seen": breakers,
        "locust_cpu_seconds": locust_cpu,
    }
    return {
        "config": {
            "think_seconds": [0.5, 2.0],
            "spawn_rate": args.mixed_spawn_rate,
            "hold_seconds": args.mixed_seconds,
            "limits": "the services' defaults, each user from its own 127.0.0.0/8 address",
        },
        "steps": steps,
        "knee": knee(steps),
        # The routes of signed-in users alone: what register and login's hashing leaves them.
        "knee_signed_in_routes": knee(steps, "work_holds"),
        "storm": storm,
    }
