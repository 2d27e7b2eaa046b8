"""Jaeger's web UI for the local Jaeger: jaeger-ui built with npm from its pinned source.

A Jaeger built from the Go module serves only a placeholder page; its query extension serves a
built UI from ``ui.assets_path``. The build (npm from the registry, honouring the lock file)
is cached by source stamp, so a second ``install`` builds nothing (``npm_build``, shared with
the web console).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from taskmesh_local import npm_build, sources
from taskmesh_local.paths import cache_dir
from taskmesh_local.sources import Source

__all__ = ["SOURCE", "built_ui", "ensure_ui", "ui_path"]

SOURCE = Source(
    folder="jaeger-ui",
    archive="jaeger-ui-1.74.0.tar.gz",
    sha256="2002cd0cff2d44d0ee386e47d6e7eab3057a2494cfa77614069790272eb5ac18",
    tree="4fb318175aa7e7bd827b0ee941483ab54becb4cb1242a67f0ca501c6477aa8cb",
    url="https://github.com/jaegertracing/jaeger-ui/archive/refs/tags/v1.74.0.tar.gz",
)
# Bumped when the way we build changes, so that a UI built the old way is rebuilt.
RECIPE = "npm10-ci-build-1"


def ui_path() -> Path:
    """Where the built UI (index.html and its assets) is kept."""
    stamp = hashlib.sha256(f"{RECIPE}|{npm_build.NPM}|{SOURCE.tree}".encode()).hexdigest()[:20]
    return cache_dir() / "jaeger-ui" / stamp


def built_ui() -> Path | None:
    """The built UI when there is one (Jaeger serves its placeholder page otherwise)."""
    target = ui_path()
    return target if (target / "index.html").is_file() else None


def _build(partial: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="taskmesh-jaeger-ui-") as tmp:
        source = Path(tmp) / SOURCE.folder
        sources.unpack(sources.archive(SOURCE), source)
        npm_build.npm(
            "installing jaeger-ui's npm packages from its lock file (a minute or two)",
            ["ci", "--no-audit", "--no-fund"],
            cwd=source,
        )
        package = source / "packages" / "jaeger-ui"
        npm_build.npm("building Jaeger's web UI (a minute or two)", ["run", "build"], cwd=package)
        shutil.copytree(package / "build", partial)


def ensure_ui() -> Path:
    """The built UI, building it first when this source stamp has none."""
    return npm_build.cached_build(ui_path(), "index.html", _build)
