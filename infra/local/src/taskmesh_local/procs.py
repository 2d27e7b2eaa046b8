"""Detached processes tracked by pid files, and stopping them without leaving any behind.

A pid file holds ``<pid> <start time>``; a pid counts as ours only while ``/proc/<pid>`` shows
the same start time and a command line naming the expected program, so a stale file (the
process gone, or its pid reused by another program) never blocks a start. Every process we
spawn carries ``TASKMESH_LOCAL_TAG=<folder>#<part>`` in its environment; children inherit it,
which finds what the Erlang VM forks into sessions of its own (``erl_child_setup``,
``inet_gethost``, a stray ``epmd``) when the part is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TAG_VAR",
    "PidRecord",
    "is_alive",
    "kill_all",
    "owned_pid",
    "proc_cmdline",
    "proc_start_time",
    "read_pid_file",
    "remove_pid_file",
    "spawn",
    "tagged_pids",
    "write_pid_file",
]

TAG_VAR = "TASKMESH_LOCAL_TAG"
PROC = Path("/proc")


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_time: int | None


def parse_pid_file(text: str) -> PidRecord | None:
    fields = text.split()
    try:
        pid = int(fields[0])
        start = int(fields[1]) if len(fields) > 1 else None
    except (IndexError, ValueError):
        return None
    return PidRecord(pid, start) if pid > 0 else None


def read_pid_file(path: Path) -> PidRecord | None:
    try:
        return parse_pid_file(path.read_text())
    except OSError:
        return None


def write_pid_file(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    start = proc_start_time(pid)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{pid} {start if start is not None else ''}".strip() + "\n")
    tmp.replace(path)


def remove_pid_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return raw[raw.rfind(")") + 2 :].split()


def proc_start_time(pid: int) -> int | None:
    """Clock ticks since boot when the process started (field 22 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def is_alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    # A zombie has exited; only its parent has not collected it yet.
    return fields is not None and fields[0] not in ("Z", "X")


def proc_cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def owned_pid(record: PidRecord | None, marker: str) -> int | None:
    """The recorded pid if it is still the process we started, else None."""
    if record is None or not is_alive(record.pid):
        return None
    if record.start_time is not None and proc_start_time(record.pid) != record.start_time:
        return None
    if marker not in " ".join(proc_cmdline(record.pid)):
        return None
    return record.pid


def tagged_pids(tag: str) -> list[int]:
    """Live processes whose environment carries ``TASKMESH_LOCAL_TAG=<tag>``."""
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    tag: str,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a detached process (its own session), stdout and stderr appended to ``log``;
    as ``user`` (with that user's group only) when given."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n==> {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        return subprocess.Popen(
            list(argv),
            env={**env, TAG_VAR: tag},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )


def _signal(pid: int, sig: signal.Signals, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _wait_gone(pids: Iterable[int], deadline: float) -> list[int]:
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [pid for pid in left if is_alive(pid)]
        if left:
            time.sleep(0.05)
    return left


def kill_all(leader: int | None, tag: str, *, timeout: float = 10.0) -> None:
    """SIGTERM the leader's process group, SIGKILL whatever of the tag survives ``timeout``."""
    if leader is not None:
        _signal(leader, signal.SIGTERM, group=True)
        _wait_gone([leader], time.monotonic() + timeout)
    # Children in other sessions (or a leader that ignored SIGTERM) go too.
    for _ in range(3):
        rest = tagged_pids(tag)
        if leader is not None and is_alive(leader):
            rest.append(leader)
        if not rest:
            return
        for pid in rest:
            _signal(pid, signal.SIGTERM, group=False)
        rest = _wait_gone(rest, time.monotonic() + min(timeout, 3.0))
        for pid in rest:
            _signal(pid, signal.SIGKILL, group=False)
        _wait_gone(rest, time.monotonic() + 3.0)
