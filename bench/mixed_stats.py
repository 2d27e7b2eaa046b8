"""The mixed workload's numbers from Locust's samples (bench/locustfile.py): per route
p50/p95/p99, served, refused with Retry-After, errors; the knee over the user steps; the
storm's table; and the goals of issue 28 those allow judging."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "P95_MS",
    "ROUTES",
    "entry",
    "knee",
    "load_samples",
    "percentile",
    "route_table",
    "storm_goals",
]

ROUTES = ("register", "login", "list", "create", "get", "complete", "summary", "refresh")
# Routes a signed-in user keeps using while others arrive: a storm must not slow them.
WORK_ROUTES = ("list", "create", "get", "complete", "summary", "refresh")
P95_MS = 200.0
REFUSED_P99_MS = 100.0
ENTRY_SECONDS = 60.0
Sample = dict[str, Any]
Check = tuple[str, bool, str]


def load_samples(path: Path) -> list[Sample]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q % of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _refused(sample: Sample) -> bool:
    """An explicit overload or limit answer a client can act on: 503 or 429 with Retry-After."""
    return sample["status"] in (429, 503) and bool(sample.get("retry_after"))


def _served(sample: Sample) -> bool:
    # 409 on register: a retried registration that the first attempt had stored.
    return 0 < sample["status"] < 400 or (sample["route"], sample["status"]) == ("register", 409)


def route_table(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    """Per route: requests, served, refused (with Retry-After), errors (anything else: no
    answer, 504, other 4xx/5xx), their statuses, p50/p95/p99 of all answers and p99 of the
    refusals alone."""
    table: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        mine = [s for s in samples if s["route"] == route]
        if not mine:
            continue
        refused = [s for s in mine if _refused(s)]
        served = [s for s in mine if _served(s)]
        statuses: dict[str, int] = {}
        for s in mine:
            statuses[str(s["status"])] = statuses.get(str(s["status"]), 0) + 1
        times = [s["ms"] for s in mine]
        table[route] = {
            "requests": len(mine),
            "served": len(served),
            "refused": len(refused),
            "errors": len(mine) - len(served) - len(refused),
            "statuses": dict(sorted(statuses.items())),
            "p50_ms": percentile(times, 50),
            "p95_ms": percentile(times, 95),
            "p99_ms": percentile(times, 99),
            "refused_p99_ms": percentile((s["ms"] for s in refused), 99),
        }
    return table


def holds(table: dict[str, dict[str, Any]], routes: tuple[str, ...] = ROUTES) -> bool:
    """Every one of `routes` served all its requests (nothing refused, no error) with
    p95 < 200 ms."""
    rows = [row for route, row in table.items() if route in routes]
    return bool(rows) and all(
        row["errors"] == 0 and row["refused"] == 0 and (row["p95_ms"] or 0.0) < P95_MS
        for row in rows
    )


def knee(steps: list[dict[str, Any]], key: str = "holds") -> dict[str, Any] | None:
    """The most users (and their req/s) of the steps, taken in increasing order, up to which
    every step held (`key`: "holds", every route; "work_holds", the signed-in routes
    alone); None when even the first did not."""
    found = None
    for step in sorted(steps, key=lambda s: s["users"]):
        if not step[key]:
            break
        found = {"users": step["users"], "rps": step["rps"]}
    return found


def entry(samples: list[Sample], users: int) -> dict[str, Any]:
    """How long users took from their first register to their login, refusals honoured;
    those not in when the run ended (or that gave up) are `never_entered`."""
    entered = [s["ms"] / 1000 for s in samples if s["route"] == "entered"]
    return {
        "users": users,
        "entered": len(entered),
        "never_entered": max(0, users - len(entered)),
        "p50_s": _round(percentile(entered, 50)),
        "p95_s": _round(percentile(entered, 95)),
        "max_s": _round(max(entered, default=None)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def storm_goals(mixed: dict[str, Any]) -> list[Check]:
    """Issue 28's goals, from the storm and the steps of one run."""
    storm = mixed.get("storm")
    checks: list[Check] = []
    if storm:
        routes = storm["routes"]
        timeouts = sum(row["statuses"].get("504", 0) for row in routes.values())
        checks.append(("storm: 0 answers of 504", timeouts == 0, f"{timeouts}"))
        seen = storm["breakers_seen"]
        opened = sorted(g for g, states in seen.items() if states != ["closed"])
        checks.append(
            (
                "storm: no breaker of the gateway opens",
                bool(seen) and not opened,
                ", ".join(f"{g}: {seen[g]}" for g in opened)
                or ("all closed" if seen else "never read (the gateway's /readyz)"),
            )
        )
        for route in ("register", "login"):
            row = routes.get(route)
            if row:
                p99 = row["refused_p99_ms"]
                fast = p99 is None or p99 < REFUSED_P99_MS
                checks.append(
                    (
                        f"storm: every {route} served or refused in < {REFUSED_P99_MS:g} ms (p99)",
                        row["errors"] == 0 and fast,
                        f"{row['served']} served, {row['refused']} refused (p99 "
                        f"{_ms(p99)}), {row['errors']} errors",
                    )
                )
        came = storm["entry"]
        checks.append(
            (
                f"storm: clients honouring Retry-After all in within {ENTRY_SECONDS:g} s",
                came["never_entered"] == 0 and (came["max_s"] or 0.0) <= ENTRY_SECONDS,
                f"{came['entered']} in, slowest {came['max_s']} s, {came['never_entered']} not",
            )
        )
        slow = [
            f"{r} p95 {_ms(routes[r]['p95_ms'])}, {routes[r]['errors']} errors"
            for r in WORK_ROUTES
            if r in routes and (routes[r]["errors"] or (routes[r]["p95_ms"] or 0) >= P95_MS)
        ]
        checks.append(
            (
                f"storm: {', '.join(WORK_ROUTES)} p95 < {P95_MS:g} ms, 0 errors",
                not slow,
                "; ".join(slow) or "held",
            )
        )
    found = mixed.get("knee")
    steps = mixed.get("steps") or []
    if steps:
        detail = (
            f"{found['users']} users, {found['rps']} req/s" if found else "not even the first step"
        )
        checks.append(("mixed workload: the knee found", found is not None, detail))
        if storm:
            wanted = storm["users"]
            checks.append(
                (
                    f"mixed workload: p95 < {P95_MS:g} ms on every route up to {wanted} users",
                    found is not None and found["users"] >= wanted,
                    detail,
                )
            )
    return checks


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
