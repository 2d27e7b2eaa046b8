"""Long install steps (builds) that say what they do and show they are alive."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from taskmesh_local.config import LocalError

__all__ = ["HEARTBEAT_SECONDS", "run_step", "say"]

HEARTBEAT_SECONDS = 20.0


def say(message: str) -> None:
    print(f"taskmesh-local: {message}", file=sys.stderr, flush=True)


def run_step(
    what: str,
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> None:
    """Run ``argv``, its output kept in a log; print ``what`` when it starts, a line every
    ``heartbeat`` seconds while it runs, and the log's tail if it fails."""
    say(f"{what}")
    started = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(heartbeat):
            say(f"  still {what} ({time.monotonic() - started:.0f} s)")

    beating = threading.Thread(target=beat, daemon=True)
    with tempfile.TemporaryFile() as log:
        beating.start()
        try:
            result = subprocess.run(
                list(argv),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        except OSError as exc:
            raise LocalError(f"{what} failed: {exc}") from exc
        finally:
            done.set()
            beating.join()
        if result.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace").splitlines()[-40:]
            raise LocalError(
                f"{what} failed (exit {result.returncode}); last lines:\n" + "\n".join(tail)
            )
    say(f"  done in {time.monotonic() - started:.0f} s")
