"""The printed tables of the mixed workload, the storm and Argon2's cost per login."""

from __future__ import annotations

from typing import Any

from bench.argon2_cost import print_table as print_argon2
from bench.report import fmt

__all__ = ["print_mixed"]


def _routes(table: dict[str, dict[str, Any]]) -> None:
    print(
        f"  {'route':<10}{'requests':>9}{'served':>8}{'refused':>8}{'errors':>7}{'p50 ms':>8}"
        f"{'p95 ms':>8}{'p99 ms':>8}{'refused p99':>12}  statuses"
    )
    for route, r in table.items():
        statuses = " ".join(f"{code}:{n}" for code, n in r["statuses"].items())
        print(
            f"  {route:<10}{r['requests']:>9}{r['served']:>8}{r['refused']:>8}{r['errors']:>7}"
            f"{fmt(r['p50_ms'], 0):>8}{fmt(r['p95_ms'], 0):>8}{fmt(r['p99_ms'], 0):>8}"
            f"{fmt(r['refused_p99_ms'], 0):>12}  {statuses}"
        )


def print_mixed(results: dict[str, Any]) -> None:
    found = results.get("argon2")
    if found:
        print_argon2(found)
    mixed = results.get("mixed")
    if not mixed:
        return
    cfg = mixed["config"]
    print(
        f"\n== Mixed workload (Locust, think {cfg['think_seconds'][0]}-{cfg['think_seconds'][1]} s, "
        f"arriving {cfg['spawn_rate']:g}/s, then {cfg['hold_seconds']:g} s; {cfg['limits']}) =="
    )
    for step in mixed["steps"]:
        print(
            f"\n {step['users']} users, {step['rps']} req/s once all arrived: "
            f"{'holds' if step['holds'] else 'DOES NOT HOLD'} (p95 < 200 ms, no error); "
            f"Locust used {step['locust_cpu_seconds']} s of CPU in {step['seconds']} s"
        )
        _routes(step["routes"])
    for key, label in (("knee", "every route"), ("knee_signed_in_routes", "signed-in routes")):
        knee = mixed.get(key)
        print(
            f"\n  knee ({label}): "
            + (f"{knee['users']} users, {knee['rps']} req/s" if knee else "not even the first step")
        )
    storm = mixed.get("storm")
    if storm:
        came = storm["entry"]
        print(
            f"\n== Storm: {storm['users']} users arriving {storm['arrivals_per_s']:g}/s, "
            f"{storm['seconds']:g} s, Retry-After honoured =="
        )
        _routes(storm["routes"])
        print(
            f"  in: {came['entered']} of {came['users']}; from the first register to the "
            f"login p50 {fmt(came['p50_s'], 2)} s, p95 {fmt(came['p95_s'], 2)} s, "
            f"slowest {fmt(came['max_s'], 2)} s"
        )
        seen = ", ".join(f"{g} {'/'.join(s)}" for g, s in sorted(storm["breakers_seen"].items()))
        print(f"  the gateway's breakers seen: {seen}")
