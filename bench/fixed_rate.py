"""Latency at a fixed request rate (open loop), measured with vegeta.

wrk keeps its connections busy (closed loop): at saturation its latency is about
connections / throughput, so a path with less throughput shows more latency whatever it adds
to one request. Here requests leave at one fixed rate, below what every path sustains, and
each path's latency is what a request costs on it; the difference is what a hop adds. The
paths are attacked at the same time (``bench.run``), so a stall of the machine lands on all
of them alike instead of on whichever path was running then.
vegeta is built with Go from infra/local/go/vegeta (pinned), like FerretDB and Jaeger.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RateResult",
    "attack",
    "cpu_per_request",
    "parse_report",
    "report",
    "sustainable_rate",
]

_NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class RateResult:
    requests: int
    offered_rps: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_report(text: str, offered_rps: int) -> RateResult:
    """vegeta's ``report -type=json``: latencies in nanoseconds; anything but a 2xx is an
    error (status 0: the request failed before an answer). Its own rate counts the pauses
    between merged attacks, so the rate they were run at is passed in."""
    raw = json.loads(text)
    latencies = raw["latencies"]
    codes: dict[str, int] = raw.get("status_codes") or {}
    answered_ok = sum(n for code, n in codes.items() if code.startswith("2"))
    return RateResult(
        requests=raw["requests"],
        offered_rps=offered_rps,
        p50_ms=round(latencies["50th"] / _NS_PER_MS, 2),
        p90_ms=round(latencies["90th"] / _NS_PER_MS, 2),
        p99_ms=round(latencies["99th"] / _NS_PER_MS, 2),
        max_ms=round(latencies["max"] / _NS_PER_MS, 2),
        errors=raw["requests"] - answered_ok,
    )


def sustainable_rate(
    closed_loop_rps: list[float],
    share: float,
    *,
    upstream_rps: list[float] | None = None,
    paths: int = 1,
) -> int:
    """A rate every path sustains: ``share`` of the slowest one's wrk throughput, in tens.

    With ``paths`` run at once, all reaching one upstream (tasks) whose own throughput is
    ``upstream_rps``, the upstream takes ``paths`` times the rate: that must stay within
    ``share`` of the slowest upstream figure too.
    """
    slowest = min(closed_loop_rps)
    if upstream_rps:
        slowest = min(slowest, min(upstream_rps) / paths)
    return max(10, int(slowest * share) // 10 * 10)


async def _run(*argv: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:2]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return out


async def attack(
    vegeta: Path, url: str, token: str, *, rate: int, seconds: float, output: Path
) -> Path:
    """GET ``url`` ``rate`` times a second for ``seconds``; the results go to ``output``."""
    targets = output.with_suffix(".targets")
    targets.write_text(f"GET {url}\nAuthorization: Bearer {token}\n")
    await _run(
        str(vegeta),
        "attack",
        f"-targets={targets}",
        f"-rate={rate}/1s",
        f"-duration={max(1, round(seconds))}s",
        "-timeout=5s",
        "-max-workers=256",
        f"-output={output}",
    )
    return output


async def report(vegeta: Path, outputs: list[Path], offered_rps: int) -> RateResult:
    """One report over several attacks' results (their percentiles merged exactly)."""
    out = await _run(str(vegeta), "report", "-type=json", *map(str, outputs))
    return parse_report(out.decode(), offered_rps)


def cpu_per_request(
    rows: list[dict[str, Any]], used: dict[tuple[str, str], float], rate: int
) -> list[dict[str, Any]]:
    """Milliseconds of CPU per request, per set: the gateway's over the requests through it,
    tasks' over the requests of all paths (each reaches tasks once). ``rows`` are the fixed-rate
    rows of one GET (``tracing``, ``endpoint``, ``target``, ``requests``); ``used`` is CPU
    seconds by (tracing, service)."""
    out = []
    for tracing in dict.fromkeys(r["tracing"] for r in rows):
        mine = [r for r in rows if r["tracing"] == tracing]
        through_gateway = sum(r["requests"] for r in mine if r["target"] == "gateway")
        reaching_tasks = sum(r["requests"] for r in mine)
        row: dict[str, Any] = {"tracing": tracing, "endpoint": mine[0]["endpoint"], "rate": rate}
        for name, requests in (("gateway", through_gateway), ("tasks", reaching_tasks)):
            seconds = used.get((tracing, name))
            row[f"{name}_cpu_ms"] = (
                round(seconds * 1000 / requests, 2) if seconds is not None and requests else None
            )
        out.append(row)
    return out
