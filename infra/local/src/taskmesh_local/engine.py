"""The local MongoDB-compatible engine: DocumentDB's PostgreSQL 15 extensions, built from
pinned sources, under FerretDB v2 (built with Go, see ``install.FERRETDB``).

Sources are pinned (see sources.py). The built extensions are staged in the cache under a
stamp of the sources and the build script, so a second ``install`` builds nothing, then copied
into PostgreSQL's own folders: PostgreSQL 15 loads extensions from nowhere else.
"""

from __future__ import annotations

import fcntl
import filecmp
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from taskmesh_local import sources
from taskmesh_local.config import LocalError
from taskmesh_local.paths import cache_dir, checkout_root
from taskmesh_local.sources import Source
from taskmesh_local.steps import run_step, say

__all__ = [
    "BUILD_PACKAGES",
    "PG_BIN",
    "SOURCES",
    "ensure_extensions",
    "extensions_installed",
]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# What building and running the engine takes from Debian (see ../shared/vendor/README.md).
# Debian's pg_cron (1.4) cannot schedule in seconds, which documentdb needs: we build 1.6.3.
BUILD_PACKAGES = (
    "postgresql-15",
    "postgresql-server-dev-15",
    "postgresql-15-postgis-3",
    "postgresql-15-rum",
    "libbson-dev",
    "libintelrdfpmath-dev",
    "libpcre2-dev",
    "libkrb5-dev",
    "pkg-config",
    "build-essential",
)
BUILD_SCRIPT = checkout_root() / "infra" / "local" / "engine" / "build-extensions.sh"
# Bumped when the way we build changes, so that extensions built the old way are rebuilt.
RECIPE = "documentdb-1"


SOURCES = (
    Source(
        folder="documentdb",
        archive="documentdb-0.106.0-ferretdb-2.5.0.tar.gz",
        sha256="3ba0408eee7c3bc67933da50034092ee77e2aa79b61234c1216b0a1ffac21df1",
        tree="719069709844893a3406277ce26072e5c6584c82e047c266eb8678061396f214",
        url="https://github.com/FerretDB/documentdb/archive/refs/tags/v0.106.0-ferretdb-2.5.0.tar.gz",
    ),
    Source(
        folder="pg_cron",
        archive="pg_cron-1.6.3.tar.gz",
        sha256="3580f4034021e62e459f9f7ab1f625774bfc534a9256844545da85d6f99c2f5b",
        tree="a622a3794d38b93b97858aef962f8d5edba2b69b20aedc149b89f4198b29903c",
        url="https://github.com/citusdata/pg_cron/archive/refs/tags/v1.6.3.tar.gz",
    ),
    Source(
        folder="pgvector",
        archive="pgvector-0.8.0.tar.gz",
        sha256="93df40ccdaaaa267d1275c1e6e773004a0e5ff8e14227934a4ec7e8205d0f608",
        tree="9fbf114d13eec86b8ff9445ecbc5ad1a3ead20c721bae3a539388dd9ae9f020a",
        url="https://github.com/pgvector/pgvector/archive/refs/tags/v0.8.0.tar.gz",
    ),
)


def _stamp() -> str:
    digest = hashlib.sha256(RECIPE.encode() + BUILD_SCRIPT.read_bytes())
    for source in SOURCES:
        digest.update(source.tree.encode())
    return digest.hexdigest()[:20]


def _build(stage: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="taskmesh-engine-src-") as tmp:
        for source in SOURCES:
            sources.unpack(sources.archive(source), Path(tmp) / source.folder)
        building = stage.with_name(stage.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        run_step(
            "building the DocumentDB engine's PostgreSQL extensions (a minute or two)",
            ["bash", str(BUILD_SCRIPT), tmp, str(building)],
        )
        shutil.rmtree(stage, ignore_errors=True)
        building.replace(stage)


def _staged_files(stage: Path) -> list[Path]:
    return sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())


def _mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):o}"


def _install_into_system(stage: Path) -> None:
    """Copy the staged files into PostgreSQL's folders where they differ (as root, or sudo).

    Each file goes in under a new name and is renamed over the old one: a running cluster
    keeps the library it mapped, where overwriting it in place could crash it."""
    differ = [
        rel
        for rel in _staged_files(stage)
        if not (Path("/") / rel).is_file()
        or not filecmp.cmp(stage / rel, Path("/") / rel, shallow=False)
    ]
    if not differ:
        return
    say(f"installing {len(differ)} extension files into PostgreSQL's folders")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    for rel in differ:
        target = Path("/") / rel
        fresh = target.with_name(f".{target.name}.taskmesh-new")
        try:
            subprocess.run(
                [*sudo, "install", "-D", "-m", _mode(stage / rel), str(stage / rel), str(fresh)],
                check=True,
            )
            subprocess.run([*sudo, "mv", "-f", str(fresh), str(target)], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise LocalError(f"installing {target} failed: {exc}") from exc


def extensions_installed() -> bool:
    return (PG_BIN / "postgres").exists() and Path(
        "/usr/share/postgresql/15/extension/documentdb.control"
    ).is_file()


def ensure_extensions() -> Path:
    """Build (once per source stamp) and install the engine's extensions; the staging root."""
    if not (PG_BIN / "postgres").exists():
        raise LocalError(f"PostgreSQL 15 is not installed ({PG_BIN}/postgres is missing)")
    stage = cache_dir() / "engine" / f"documentdb-{_stamp()}"
    stage.parent.mkdir(parents=True, exist_ok=True)
    with (stage.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another install may be building the same
        if not stage.is_dir():
            _build(stage)
        _install_into_system(stage)
    return stage
