"""Start, wait for and stop one part (a server or a service) inside a :class:`Layout`."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from taskmesh_local import procs
from taskmesh_local.config import LocalError
from taskmesh_local.net import port_open
from taskmesh_local.paths import Layout

__all__ = ["Part", "Starting", "log_tail", "reap", "running_pid", "start", "stop", "wait_all"]


@dataclass(frozen=True)
class Part:
    """How to run one process: command, ports it listens on, how to tell it is ready."""

    name: str
    argv: tuple[str, ...]
    # appears in the leader's /proc/<pid>/cmdline: tells our process from a reused pid
    marker: str
    # (port, the environment variable that moves it)
    ports: tuple[tuple[int, str], ...]
    ready: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 60.0
    stop_timeout: float = 10.0
    # Called before the signals, for a server with a gentler way to stop (rabbitmqctl stop).
    graceful_stop: Callable[[], None] | None = None
    # Created before starting: data folders, config files.
    prepare: Callable[[], None] | None = None
    # Run as this user (PostgreSQL will not run as root); None: as ourselves.
    user: str | None = None


def running_pid(layout: Layout, part: Part) -> int | None:
    return procs.owned_pid(procs.read_pid_file(layout.pid_file(part.name)), part.marker)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines the latest run wrote (each run opens with a ``==>`` line)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    latest = text[text.rfind("\n==> ") + 1 :] if "\n==> " in text else text
    return "\n".join(latest.splitlines()[-lines:])


def check_ports_free(part: Part) -> None:
    for port, var in part.ports:
        if port_open(port, timeout=0.3):
            raise LocalError(
                f"port {port} for {part.name} is in use by a program taskmesh did not start; "
                f"stop it or set {var} to a free port"
            )


def start(layout: Layout, part: Part, base_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Spawn the part (detached) and record its pid; the caller waits for readiness."""
    # Leftovers of an earlier run (a child that outlived its leader) would hold ports or locks.
    procs.kill_all(None, layout.tag(part.name), timeout=5.0)
    check_ports_free(part)
    if part.prepare is not None:
        part.prepare()
    proc = procs.spawn(
        part.argv,
        env={**base_env, **part.env},
        log=layout.log(part.name),
        tag=layout.tag(part.name),
        cwd=part.cwd,
        user=part.user,
    )
    procs.write_pid_file(layout.pid_file(part.name), proc.pid)
    return proc


@dataclass
class Starting:
    """A part whose readiness we are waiting for."""

    part: Part
    pid: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    began: float = field(default_factory=time.monotonic)
    what: str = ""

    def exited(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is not None
        return not procs.is_alive(self.pid)


def wait_all(starting: list[Starting]) -> dict[str, float]:
    """Poll every part until ready (seconds since each was started, by name).

    Fails early, with the tail of the part's log, when one exits or outlasts its timeout.
    """
    pending = list(starting)
    took: dict[str, float] = {}
    delay = 0.05
    while pending:
        for item in list(pending):
            what = item.what or item.part.name
            if item.part.ready():
                took[item.part.name] = time.monotonic() - item.began
                pending.remove(item)
            elif item.exited():
                raise LocalError(
                    f"{what} exited while starting; last lines of {item.log}:\n{log_tail(item.log)}"
                )
            elif time.monotonic() - item.began > item.part.start_timeout:
                raise LocalError(
                    f"{what} not ready after {item.part.start_timeout:.0f}s; "
                    f"last lines of {item.log}:\n{log_tail(item.log)}"
                )
        if pending:
            time.sleep(delay)
            delay = min(delay * 1.5, 0.3)
    return took


def reap(children: list[subprocess.Popen[bytes]]) -> None:
    """Collect exit statuses of processes we spawned in this process (no zombies left)."""
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
    children.clear()


def stop(layout: Layout, part: Part) -> bool:
    """Stop the part and every process it left; True if it was running."""
    pid = running_pid(layout, part)
    if pid is not None and part.graceful_stop is not None:
        with contextlib.suppress(Exception):
            part.graceful_stop()
    tag = layout.tag(part.name)
    had_any = pid is not None or bool(procs.tagged_pids(tag))
    procs.kill_all(pid, tag, timeout=part.stop_timeout)
    procs.remove_pid_file(layout.pid_file(part.name))
    return had_any
