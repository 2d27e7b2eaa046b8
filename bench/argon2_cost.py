"""What one Argon2id login costs, for a few parameter sets: the hash time, the logins per
second one core clears, and the memory a hash takes while it runs.

Each set hashes in a child process of its own, one hash at a time, so the child's peak RSS
(``VmHWM``) less the interpreter's own is what one hash in flight adds to auth; auth runs
``TASKMESH_ARGON2_CONCURRENCY`` of them at once. Runnable alone:

    uv run python -m bench.argon2_cost [--hashes 12] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from auth_service.config import Settings as AuthSettings

__all__ = [
    "PARAMETER_SETS",
    "Argon2Set",
    "auth_defaults",
    "capacity_goal",
    "measure",
    "measure_all",
    "print_table",
]


@dataclass(frozen=True)
class Argon2Set:
    name: str
    time_cost: int
    memory_kib: int
    parallelism: int

    @property
    def label(self) -> str:
        return f"t={self.time_cost} m={self.memory_kib // 1024} MiB p={self.parallelism}"


# RFC 9106 section 4: the first recommendation (t=1, 2 GiB) is out of reach for a web login;
# its second, "uniformly safe" one is t=3, 64 MiB, p=4. OWASP's password storage cheat sheet
# lists equally strong trades of memory for passes, down to its minimum of 19 MiB, t=2, p=1.
PARAMETER_SETS = (
    Argon2Set("rfc9106-second (the old default)", 3, 64 * 1024, 4),
    Argon2Set("owasp 46 MiB t=1", 1, 46 * 1024, 1),
    Argon2Set("owasp 19 MiB t=2 (minimum)", 2, 19 * 1024, 1),
    Argon2Set("between: 32 MiB t=2", 2, 32 * 1024, 1),
    Argon2Set("between: 64 MiB t=2 p=2", 2, 64 * 1024, 2),
)


def auth_defaults() -> tuple[int, int, int]:
    """(time_cost, memory_kib, parallelism) auth hashes with unless configured otherwise."""
    fields = AuthSettings.model_fields
    return (
        fields["argon2_time_cost"].default,
        fields["argon2_memory_kib"].default,
        fields["argon2_parallelism"].default,
    )


_CHILD = """
import json, sys, time
from argon2 import PasswordHasher
def hwm():
    # The peak resident memory of this process image (ru_maxrss would carry the parent's).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
t, m, p, n = (int(x) for x in sys.argv[1:5])
base = hwm()
hasher = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p)
stored = hasher.hash("warm-up password")
wall, cpu = [], []
for i in range(n):
    w, c = time.perf_counter(), time.process_time()
    hasher.verify(stored, "warm-up password")
    wall.append(time.perf_counter() - w)
    cpu.append(time.process_time() - c)
peak = hwm()
print(json.dumps({"wall": wall, "cpu": cpu, "base_kib": base, "peak_kib": peak}))
"""


def measure(params: Argon2Set, hashes: int) -> dict[str, Any]:
    """`hashes` verifications (what a login spends) in a fresh child process."""
    argv = [
        sys.executable,
        "-c",
        _CHILD,
        str(params.time_cost),
        str(params.memory_kib),
        str(params.parallelism),
        str(hashes),
    ]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600)
    found = json.loads(out.stdout)
    wall_ms = statistics.median(found["wall"]) * 1000
    cpu_ms = statistics.median(found["cpu"]) * 1000
    return {
        **asdict(params),
        "label": params.label,
        "hashes": hashes,
        "hash_ms_p50": round(wall_ms, 1),
        "hash_ms_max": round(max(found["wall"]) * 1000, 1),
        # A core's worth of CPU time per second over the CPU time of one hash: p lanes run
        # in threads, so with p > 1 one hash is faster than its CPU time but costs the same.
        "cpu_ms_p50": round(cpu_ms, 1),
        "logins_per_s_per_core": round(1000 / cpu_ms, 1) if cpu_ms else None,
        "rss_mb_per_hash": round((found["peak_kib"] - found["base_kib"]) * 1024 / 1e6, 1),
    }


def measure_all(hashes: int = 12) -> dict[str, Any]:
    """Every set in turn; the load average beside them says how busy the machine was."""
    rows = [measure(params, hashes) for params in PARAMETER_SETS]
    chosen = auth_defaults()
    for row in rows:
        row["auth_default"] = (row["time_cost"], row["memory_kib"], row["parallelism"]) == chosen
    return {
        "sets": rows,
        "loadavg_before_end": Path("/proc/loadavg").read_text().split()[:3],
        "maxrss_note": "peak RSS of a child hashing one at a time, less its start-up RSS",
    }


def capacity_goal(found: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Issue 28: login capacity per core reported beside the parameters auth uses."""
    if not found:
        return []
    chosen = [r for r in found["sets"] if r.get("auth_default")]
    detail = (
        f"{chosen[0]['label']}: {chosen[0]['logins_per_s_per_core']} logins/s per core, "
        f"{chosen[0]['hash_ms_p50']} ms a hash"
        if chosen
        else "auth's default is none of the sets measured"
    )
    return [("login capacity per core measured for auth's Argon2 defaults", bool(chosen), detail)]


def print_table(found: dict[str, Any]) -> None:
    print("\n== Argon2id: one verification per login, one at a time per set ==")
    print(f"{'set':<36}{'params':<22}{'hash ms':>9}{'cpu ms':>8}{'logins/s/core':>15}{'RSS MB':>8}")
    for r in found["sets"]:
        mark = "*" if r.get("auth_default") else " "
        print(
            f"{mark}{r['name']:<35}{r['label']:<22}{r['hash_ms_p50']:>9.1f}{r['cpu_ms_p50']:>8.1f}"
            f"{r['logins_per_s_per_core']:>15.1f}{r['rss_mb_per_hash']:>8.1f}"
        )
    print(f"  * auth's default; load average at the end: {' '.join(found['loadavg_before_end'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.argon2_cost", description=__doc__)
    parser.add_argument("--hashes", type=int, default=12, help="verifications per set")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    began = time.monotonic()
    found = measure_all(args.hashes)
    found["seconds"] = round(time.monotonic() - began, 1)
    print_table(found)
    if args.json:
        args.json.write_text(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
