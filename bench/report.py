"""The printed tables, the goals of issues 24 and 28 met or missed, and the JSON file."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

__all__ = ["fmt", "print_report", "write_json"]

Results = dict[str, Any]


def fmt(value: Any, digits: int = 1) -> str:
    """A number for a table: ``-`` for none, floats to ``digits`` places."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_pipeline(pipe: dict[str, Any] | None, title: str) -> None:
    if not pipe:
        return
    print(f"\n== Event pipeline, {title}: write -> outbox -> relay -> RabbitMQ -> analytics ==")
    for key, value in pipe.items():
        if isinstance(value, dict):
            print(f"  {key}:")
            for name, number in value.items():
                print(f"    {name:<34} {fmt(number, 2)}")
        else:
            print(f"  {key:<36} {fmt(value, 3)}")


def print_report(results: Results) -> None:
    if results["http"]:
        _print_http(results)
    _print_rest(results)


def _print_http(results: Results) -> None:
    cfg = results["config"]
    print(f"\n== HTTP: wrk, {cfg['connections']} connections, {cfg['seconds']} s each ==")
    print(
        f"{'tracing':<8}{'endpoint':<10}{'path':<9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}"
    )
    for r in results["http"]:
        print(
            f"{r['tracing']:<8}{r['endpoint']:<10}{r['target']:<9}{r['rps']:>9.0f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}"
        )
    print(
        f"\n{'tracing':<8}{'endpoint':<10}{'gw/direct':>10}{'gw +p99':>10}"
        f"{'nginx/direct':>14}{'nginx +p99':>12}"
    )
    for row in results["ratios"]:
        print(
            f"{row['tracing']:<8}{row['endpoint']:<10}"
            f"{fmt(row.get('gateway_over_direct'), 2):>9}x"
            f"{fmt(row.get('gateway_added_p99_ms'), 1):>8}ms"
            f"{fmt(row.get('nginx_over_direct'), 2):>13}x"
            f"{fmt(row.get('nginx_added_p99_ms'), 1):>10}ms"
        )


def _print_rest(results: Results) -> None:
    cfg = results["config"]
    fixed = results.get("http_fixed_rate")
    if fixed:
        print(f"\n== HTTP at a fixed rate: vegeta (open loop), {cfg['latency_seconds']} s each ==")
        print(
            f"{'tracing':<8}{'endpoint':<10}{'path':<9}{'rate/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'max ms':>9}{'errors':>8}"
        )
        for r in fixed:
            print(
                f"{r['tracing']:<8}{r['endpoint']:<10}{r['target']:<9}{r['offered_rps']:>8}"
                f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}{r['errors']:>8}"
            )
        for r in results.get("http_fixed_rate_overloaded") or []:
            if r["target"] == "direct":
                print(
                    f"  (first at {r['offered_rps']}/s, {r['endpoint']}, tracing {r['tracing']}: "
                    f"direct p99 {r['p99_ms']:.1f} ms, more than the machine held; taken again)"
                )
        print(
            f"\n{'tracing':<8}{'endpoint':<10}{'rate/s':>8}{'gw +p50':>10}{'gw +p99':>10}"
            f"{'nginx +p50':>12}{'nginx +p99':>12}"
        )
        for row in results["ratios"]:
            if "fixed_rps" in row:
                print(
                    f"{row['tracing']:<8}{row['endpoint']:<10}{row['fixed_rps']:>8}"
                    f"{fmt(row.get('gateway_added_p50_fixed_ms'), 1):>8}ms"
                    f"{fmt(row.get('gateway_added_p99_fixed_ms'), 1):>8}ms"
                    f"{fmt(row.get('nginx_added_p50_fixed_ms'), 1):>10}ms"
                    f"{fmt(row.get('nginx_added_p99_fixed_ms'), 1):>10}ms"
                )
    cpu = results.get("http_cpu")
    if cpu:
        print("\n== CPU per request at the fixed rate (/proc): the gateway's and tasks' own ==")
        print(f"{'tracing':<8}{'endpoint':<10}{'rate/s':>8}{'gateway ms':>12}{'tasks ms':>10}")
        for r in cpu:
            print(
                f"{r['tracing']:<8}{r['endpoint']:<10}{r['rate']:>8}"
                f"{fmt(r['gateway_cpu_ms'], 2):>12}{fmt(r['tasks_cpu_ms'], 2):>10}"
            )
    saturated = results.get("http_cpu_saturated")
    if saturated:
        print(
            "\n== CPU per request while wrk drives each path as fast as it answers (/proc), ms =="
        )
        names = ("gateway", "nginx", "tasks", "engine", "redis", "wrk")
        print(
            f"{'tracing':<8}{'endpoint':<10}{'target':<9}{'req/s':>8}"
            + "".join(f"{name:>9}" for name in names)
            + f"{'all':>8}{'cores':>7}"
        )
        for r in saturated:
            print(
                f"{r['tracing']:<8}{r['endpoint']:<10}{r['target']:<9}{r['rps']:>8.0f}"
                + "".join(f"{fmt(r['cpu_ms'].get(name), 3):>9}" for name in names)
                + f"{r['all_ms']:>8.2f}{r['cores_busy']:>7.2f}"
            )
    writes = results.get("writes")
    if writes:
        print(
            f"\n== Writes: POST /api/v1/tasks through the gateway (tracing on) ==\n"
            f"{writes['rps']:.0f} req/s, p50 {writes['p50_ms']:.1f} ms, "
            f"p99 {writes['p99_ms']:.1f} ms, errors {writes['errors']}"
        )
    _print_pipeline(results.get("pipeline"), "writes at full speed")
    paced = results.get("paced_writes")
    if paced:
        print(
            f"\n== Paced writes (open loop, {paced['offered_rps']:.0f}/s offered) ==\n"
            f"{paced['rps']:.0f} req/s, p50 {fmt(paced['p50_ms'])} ms, "
            f"p99 {fmt(paced['p99_ms'])} ms, errors {paced['errors']}"
        )
    overloaded = results.get("paced_writes_overloaded")
    if overloaded:
        print(
            f"\n(first paced run at {overloaded['offered_rps']:.0f}/s: the writes fell behind, "
            f"{overloaded['rps']:.0f} req/s delivered, write -> analytics p99 "
            f"{fmt((results.get('pipeline_paced_overloaded') or {}).get('analytics_lag_p99_s'), 2)} s;"
            " taken again below)"
        )
    _print_pipeline(results.get("pipeline_paced"), "writes at a steady pace")
    broker = results.get("broker")
    if broker:
        print("\n== RabbitMQ alone (quorum queue, persistent, publisher confirms) ==")
        for key, value in broker.items():
            print(f"  {key:<36} {fmt(value)}")
    alone = results.get("analytics_alone")
    if alone:
        print(
            f"\n== Analytics alone: {alone['events']} task.created events straight to the "
            f"exchange ==\n  published {fmt(alone['published_per_s'])}/s; applied "
            f"{alone['applied']} in {fmt(alone['seconds'], 2)} s: "
            f"{fmt(alone['applied_per_s'])} events/s"
        )
    memory = results.get("memory")
    if memory:
        print("\n== Memory (VmRSS, MB) ==")
        for name, mem in memory.items():
            print(
                f"  {name:<10} idle {fmt(mem.get('idle_mb'))}   end {fmt(mem.get('end_mb'))}"
                f"   (tracing off, end {fmt(mem.get('tracing_off_end_mb'))})"
            )
    found = results.get("profiles")
    if found:
        print("\n== py-spy: where each profile's samples went (innermost frame's package) ==")
        for name, profile in found.items():
            shares = ", ".join(
                f"{package} {share * 100:.0f}%" for package, share in profile["by_package"].items()
            )
            print(f"  {name:<34} {profile['samples']:>6}  {shares}")
    _print_data_size(results.get("data_size"))
    # Imported here: the mixed workload's tables use this module's `fmt`.
    from bench.mixed_report import print_mixed

    print_mixed(results)
    print("\n== Goals (issues 24 and 28) ==")
    for goal, met, numbers in results["goals"]:
        print(f"  {'met   ' if met else 'MISSED'}  {goal:<64} {numbers}")


def _print_data_size(found: dict[str, Any] | None) -> None:
    if not found:
        return
    print(
        f"\n== Data size: one user ({found['own_tasks']} tasks of its own) through the gateway, "
        "wrk =="
    )
    print(
        f"{'tasks':>8}{'users':>7}{'request':>9}{'conns':>7}{'req/s':>9}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}"
    )
    for r in found["rows"]:
        print(
            f"{r['tasks_in_db']:>8}{r['users_in_db']:>7}{r['endpoint']:>9}{r['connections']:>7}"
            f"{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}"
        )
    ratios = found["ratios"]
    growth = ", ".join(
        f"{name} {fmt(ratios.get(f'{name}_p50_largest_over_smallest'), 2)}x"
        for name in ("list_20", "login", "get_one")
    )
    print(f"  p50 at {ratios.get('largest')} tasks over {ratios.get('smallest')}: {growth}")
    shares = ", ".join(
        f"{size} tasks {share:.2f}x" for size, share in ratios["list_over_get_one_rps"].items()
    )
    print(f"  list_20 req/s over get_one's: {shares}")


def write_json(results: Results, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    results["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": _cpus(),
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"bench-{stamp}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text)
    (folder / "latest.json").write_text(text)
    return path


def _cpus() -> int | None:
    import os

    return os.cpu_count()
