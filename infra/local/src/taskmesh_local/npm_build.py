"""One way to build a web front-end with npm: from its lock file, cached by a source stamp.

Jaeger's UI and our own console are built the same way: `npm ci` (the lock file, nothing
resolved anew) then the project's build script, in a throwaway copy of the source, by npm 10
(Debian's and Node's newer npm refuse some lock files as out of sync, which npm 10 accepts).
The result is copied into the cache under a folder named by a hash of everything the build
depends on, so a second install builds nothing and a changed source builds again. A file
lock keeps two installs from building the same stamp at once; the result appears atomically
(a `.partial` folder renamed), so a build that dies leaves nothing half-written behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from taskmesh_local.config import LocalError
from taskmesh_local.steps import run_step

__all__ = ["NPM", "cached_build", "npm"]

NPM = "npm@10"
# `install` builds side by side in threads; two `npx -y npm@10` fetching npm into npx's cache
# at once can trip over each other, so npm runs one at a time in this process.
_ONE_NPM_AT_A_TIME = threading.Lock()


def npm(what: str, args: list[str], *, cwd: Path) -> None:
    """Run `npm <args>` (npm 10, through npx) in `cwd`, as a long install step."""
    npx = shutil.which("npx")
    if npx is None:
        raise LocalError("`npx` is not on PATH; install Node.js 20 or newer for the web builds")
    env = {**os.environ, "HUSKY": "0", "CI": "true"}
    with _ONE_NPM_AT_A_TIME:
        run_step(what, [npx, "-y", NPM, *args], cwd=cwd, env=env)


def cached_build(target: Path, marker: str, build: Callable[[Path], None]) -> Path:
    """`target`, built first by `build(partial_folder)` when `target/marker` is missing."""
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another install may be building it
        if not (target / marker).is_file():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            build(partial)
            if not (partial / marker).is_file():
                raise LocalError(f"the build wrote no {marker}")
            partial.replace(target)
    return target
