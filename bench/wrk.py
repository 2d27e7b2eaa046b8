"""Driving wrk: a Lua script per scenario (headers, body) that prints its summary as JSON."""

from __future__ import annotations

import asyncio
import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["WrkResult", "combine", "cpu_while_saturated", "lua_script", "parse_output", "run_wrk"]

MARKER = "BENCH_JSON "

# wrk's `done` hook sees the whole run: latency percentiles in microseconds, and the error
# counts (`status` counts responses >= 400, the rest are socket errors).
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\\n',
    "MARKER", summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def lua_script(token: str | list[str] | None, *, method: str = "GET", body: Any = None) -> str:
    """A wrk script sending ``token`` (several: each request the next one, in turn; None: no
    ``Authorization`` header, as for a login)."""
    tokens = [] if token is None else [token] if isinstance(token, str) else token
    lines = [f"wrk.method = {_lua_string(method)}"]
    if tokens:
        lines.append(f'wrk.headers["Authorization"] = {_lua_string("Bearer " + tokens[0])}')
    if body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = {_lua_string(json.dumps(body))}")
    if len(tokens) > 1:
        quoted = ", ".join(_lua_string("Bearer " + t) for t in tokens)
        lines += [
            f"local tokens = {{{quoted}}}",
            "local sent = 0",
            "request = function()",
            "  sent = sent + 1",
            '  wrk.headers["Authorization"] = tokens[(sent % #tokens) + 1]',
            "  return wrk.format()",
            "end",
        ]
    return "\n".join(lines) + _DONE.replace("MARKER", MARKER)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    status_errors: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"errors": self.errors}


def parse_output(stdout: str) -> WrkResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise ValueError(f"wrk printed no summary:\n{stdout[-2000:]}")
    raw = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    return WrkResult(
        requests=raw["requests"],
        seconds=round(seconds, 3),
        rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 3),
        status_errors=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
    )


async def run_wrk(
    url: str,
    script: str,
    script_dir: Path,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    timeout_seconds: float = 5.0,
) -> WrkResult:
    path = script_dir / f"wrk-{abs(hash((url, script))) % 10**8}.lua"
    path.write_text(script)
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_seconds:g}s",
        "-s",
        str(path),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out.decode(errors='replace')}")
    return parse_output(out.decode(errors="replace"))


def combine(runs: list[WrkResult]) -> dict[str, Any]:
    """Rounds of one target as one row: throughput over all of them, the median round's
    percentiles (percentiles of separate runs cannot be merged exactly), errors summed."""
    seconds = sum(r.seconds for r in runs)
    return {
        "requests": sum(r.requests for r in runs),
        "seconds": round(seconds, 3),
        "rps": round(sum(r.requests for r in runs) / seconds, 1) if seconds else 0.0,
        "rps_rounds": [r.rps for r in runs],
        "p50_ms": statistics.median(r.p50_ms for r in runs),
        "p90_ms": statistics.median(r.p90_ms for r in runs),
        "p99_ms": statistics.median(r.p99_ms for r in runs),
        "max_ms": max(r.max_ms for r in runs),
        "status_errors": sum(r.status_errors for r in runs),
        "socket_errors": sum(r.socket_errors for r in runs),
        "errors": sum(r.errors for r in runs),
    }


def cpu_while_saturated(
    rows: list[dict[str, Any]], used: dict[tuple[str, str, str], dict[str, float]]
) -> list[dict[str, Any]]:
    """Where the cores went while wrk drove one path as fast as it answered: per row of
    ``rows`` (``tracing``, ``endpoint``, ``target``, ``requests``, ``seconds``), each
    process's CPU in ms per request, their sum, and the cores they kept busy. ``used`` is
    CPU seconds by process, keyed like the rows. A path's rate is the cores divided by the
    sum, so the sums side by side say why one path is slower than another."""
    out = []
    for row in rows:
        seconds = used.get((row["tracing"], row["endpoint"], row["target"]))
        if not seconds or not row["requests"] or not row["seconds"]:
            continue
        per_request = {
            name: round(spent * 1000 / row["requests"], 3) for name, spent in seconds.items()
        }
        out.append(
            {
                "tracing": row["tracing"],
                "endpoint": row["endpoint"],
                "target": row["target"],
                "rps": row["rps"],
                "cpu_ms": per_request,
                "all_ms": round(sum(seconds.values()) * 1000 / row["requests"], 3),
                "cores_busy": round(sum(seconds.values()) / row["seconds"], 2),
            }
        )
    return out
