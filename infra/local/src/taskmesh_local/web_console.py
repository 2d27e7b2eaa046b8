"""The taskmesh web console (web/console), built with npm and served by the gateway at `/`.

Built the way Jaeger's UI is (`npm_build`): from the lock file, in a copy of the source, and
cached by a hash of the source files, so editing the console rebuilds it and nothing else
does. The cache folder holds `site/` (what the gateway serves: `TASKMESH_CONSOLE_DIR`) and
`axe.min.js` from the lock file's axe-core, which the browser tests inject into the page.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from taskmesh_local import npm_build
from taskmesh_local.paths import cache_dir, checkout_root

__all__ = ["SITE", "built_console", "ensure_console", "source_dir", "tools_path"]

SITE = "site"
# Bumped when the way we build changes, so that a console built the old way is rebuilt.
RECIPE = "npm10-ci-build-1"
_SKIPPED = frozenset({"node_modules", "dist"})


def source_dir() -> Path:
    return checkout_root() / "web" / "console"


def _source_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and not _SKIPPED.intersection(path.relative_to(root).parts)
    )


def _stamp(root: Path) -> str:
    digest = hashlib.sha256(f"{RECIPE}|{npm_build.NPM}".encode())
    for path in _source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:20]


def tools_path() -> Path:
    """The cache folder of the current source: `site/` and `axe.min.js`."""
    return cache_dir() / "console" / _stamp(source_dir())


def built_console() -> Path | None:
    """The built site when the current source has one."""
    site = tools_path() / SITE
    return site if (site / "index.html").is_file() else None


def _build(partial: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="taskmesh-console-") as tmp:
        source = Path(tmp) / "console"
        root = source_dir()
        for path in _source_files(root):
            copy = source / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
        npm_build.npm(
            "installing the console's npm packages from its lock file",
            ["ci", "--no-audit", "--no-fund"],
            cwd=source,
        )
        npm_build.npm("building the web console", ["run", "build"], cwd=source)
        partial.mkdir(parents=True)
        shutil.copytree(source / "dist", partial / SITE)
        shutil.copy2(source / "node_modules" / "axe-core" / "axe.min.js", partial / "axe.min.js")


def ensure_console() -> Path:
    """The built site, building it first when this source has none."""
    target = npm_build.cached_build(tools_path(), f"{SITE}/index.html", _build)
    return target / SITE
