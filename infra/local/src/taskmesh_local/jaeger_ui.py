"""Jaeger's web UI for the local Jaeger: jaeger-ui built with npm from its pinned source.

A Jaeger built from the Go module serves only a placeholder page; its query extension serves a
built UI from ``ui.assets_path``. The build (npm from the registry, honouring the lock file)
is cached by source stamp, so a second ``install`` builds nothing. npm 10 runs it: Debian's and
Node's newer npm refuse this release's lock file as out of sync, which npm 10 accepts as is.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from taskmesh_local import sources
from taskmesh_local.config import LocalError
from taskmesh_local.paths import cache_dir
from taskmesh_local.sources import Source
from taskmesh_local.steps import run_step

__all__ = ["SOURCE", "built_ui", "ensure_ui", "ui_path"]

SOURCE = Source(
    folder="jaeger-ui",
    archive="jaeger-ui-1.74.0.tar.gz",
    sha256="2002cd0cff2d44d0ee386e47d6e7eab3057a2494cfa77614069790272eb5ac18",
    tree="4fb318175aa7e7bd827b0ee941483ab54becb4cb1242a67f0ca501c6477aa8cb",
    url="https://github.com/jaegertracing/jaeger-ui/archive/refs/tags/v1.74.0.tar.gz",
)
NPM = "npm@10"
# Bumped when the way we build changes, so that a UI built the old way is rebuilt.
RECIPE = "npm10-ci-build-1"


def ui_path() -> Path:
    """Where the built UI (index.html and its assets) is kept."""
    stamp = hashlib.sha256(f"{RECIPE}|{NPM}|{SOURCE.tree}".encode()).hexdigest()[:20]
    return cache_dir() / "jaeger-ui" / stamp


def built_ui() -> Path | None:
    """The built UI when there is one (Jaeger serves its placeholder page otherwise)."""
    target = ui_path()
    return target if (target / "index.html").is_file() else None


def _build(target: Path) -> None:
    npx = shutil.which("npx")
    if npx is None:
        raise LocalError("`npx` is not on PATH; install Node.js 20 or newer to build Jaeger's UI")
    env = {**os.environ, "HUSKY": "0", "CI": "true"}
    with tempfile.TemporaryDirectory(prefix="taskmesh-jaeger-ui-") as tmp:
        source = Path(tmp) / SOURCE.folder
        sources.unpack(sources.archive(SOURCE), source)
        run_step(
            "installing jaeger-ui's npm packages from its lock file (a minute or two)",
            [npx, "-y", NPM, "ci", "--no-audit", "--no-fund"],
            cwd=source,
            env=env,
        )
        run_step(
            "building Jaeger's web UI (a minute or two)",
            [npx, "-y", NPM, "run", "build"],
            cwd=source / "packages" / "jaeger-ui",
            env=env,
        )
        built = source / "packages" / "jaeger-ui" / "build"
        if not (built / "index.html").is_file():
            raise LocalError(f"the jaeger-ui build wrote no {built / 'index.html'}")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(built, partial)
        partial.replace(target)


def ensure_ui() -> Path:
    """The built UI, building it first when this source stamp has none."""
    target = ui_path()
    if (target / "index.html").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another install may be building it
        if not (target / "index.html").is_file():
            _build(target)
    return target
