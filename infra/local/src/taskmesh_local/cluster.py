"""The PostgreSQL cluster under the local engine: created once in ``data/postgres``, reached
only through a Unix socket that only its owner (and root) can open, and FerretDB in front.

PostgreSQL refuses to run as root: as root, the cluster runs as Debian's ``postgres`` user
(made by the ``postgresql-15`` package), which must be able to reach the data folder.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from taskmesh_local.config import LocalError
from taskmesh_local.engine import PG_BIN
from taskmesh_local.paths import Layout

__all__ = [
    "PG_DATABASE",
    "cluster_user",
    "create_extension",
    "ensure_cluster",
    "postgres_ready",
    "postgresql_url",
    "socket_dir",
]

PG_DATABASE = "postgres"
PG_ROLE = "postgres"
SOCKET_NAME = ".s.PGSQL.5432"
# A Unix socket's path has at most 107 bytes.
SOCKET_PATH_MAX = 100

# Given on the command line at every start, so a change reaches existing clusters too
# (see ../shared/vendor/README.md for the documentdb and pg_cron ones).
SETTINGS = {
    "listen_addresses": "",
    "unix_socket_permissions": "0700",
    "shared_preload_libraries": "pg_cron,pg_documentdb_core,pg_documentdb",
    "cron.database_name": PG_DATABASE,
    # pg_cron runs its jobs (documentdb's TTL and index builds) in background workers, not
    # over a connection: the cluster listens on no TCP port.
    "cron.use_background_workers": "on",
    "max_worker_processes": "32",
    "documentdb.enableBackgroundWorker": "true",
    "documentdb.enableBackgroundWorkerJobs": "true",
    # Otherwise a sorted, limited or grouped query keeps its cursor on its backend, which
    # FerretDB then takes out of its pool and closes: a new connection per such query
    # (8-11 ms instead of 1.2-1.7 ms). Cursors kept in files leave the connection pooled.
    "documentdb.useFileBasedPersistedCursors": "on",
    # Indexes made with one composite term per document (the keys' values together), as a
    # MongoDB index keys them, instead of one term per key: a write then adds one entry to
    # each index rather than one per key to posting trees shared by every document of the
    # same owner or day, which took 3/4 of PostgreSQL's CPU in the event pipeline
    # (docs/performance.md#index-write-cost). Applies to indexes created from then on.
    "documentdb.defaultUseCompositeOpClass": "on",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "log_min_messages": "warning",
}
# A throwaway cluster for tests keeps nothing across a crash, so it need not flush.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def cluster_user() -> str | None:
    """The user the cluster runs as: None for whoever we are, ``postgres`` for root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_ROLE)
    except KeyError as exc:
        raise LocalError(
            "running as root, PostgreSQL needs the `postgres` user (from the postgresql-15 "
            "package); run `python3 -m taskmesh_local install`"
        ) from exc
    return PG_ROLE


def socket_dir(layout: Layout) -> Path:
    """Where the cluster's socket lives: ``run/postgres``, or a short folder in the temporary
    directory when that path would be too long for a socket."""
    preferred = layout.base / "run" / "postgres"
    if len(str(preferred / SOCKET_NAME)) <= SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(layout.base).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"taskmesh-pg-{digest}"


def postgresql_url(layout: Layout) -> str:
    return f"postgres://{PG_ROLE}@/{PG_DATABASE}?host={socket_dir(layout)}"


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        shutil.chown(path, user, user)


def _let_pass(folder: Path, base: Path) -> None:
    """Let anyone pass through (not list) the folders from ``base`` down to ``folder``'s
    parent: ours, made for the stack."""
    for parent in [p for p in folder.resolve().parents if p == base or base in p.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)


def _check_reachable(folder: Path, user: str) -> None:
    """Every folder above ``folder`` must let ``user`` pass, or PostgreSQL cannot start."""
    uid = pwd.getpwnam(user).pw_uid
    for parent in folder.resolve().parents:
        info = parent.stat()
        passable = info.st_mode & stat.S_IXOTH or (
            info.st_uid == uid and info.st_mode & stat.S_IXUSR
        )
        if not passable:
            raise LocalError(
                f"PostgreSQL runs as `{user}`, which cannot enter {parent}; put the stack's "
                f"data elsewhere with TASKMESH_LOCAL_DIR=/some/folder, or chmod o+x {parent}"
            )


def _run_as(user: str | None, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        user=user,
        group=user,
        extra_groups=[] if user else None,
    )


def ensure_cluster(layout: Layout) -> None:
    """Create the cluster in ``data/postgres`` unless it exists; make its socket folder."""
    data = layout.data("postgres")
    user = cluster_user()
    sockets = socket_dir(layout)
    sockets.mkdir(parents=True, exist_ok=True)
    os.chmod(sockets, 0o700)
    _chown(sockets, user)
    data.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _let_pass(data, layout.base.resolve())
        _check_reachable(data, user)
    if (data / "PG_VERSION").exists():
        return
    os.chmod(data, 0o700)
    _chown(data, user)
    done = _run_as(
        user,
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_ROLE,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        ],
    )
    if done.returncode != 0:
        raise LocalError(f"initdb failed:\n{done.stdout}{done.stderr}")


def postgres_argv(layout: Layout, *, throwaway: bool) -> tuple[str, ...]:
    settings = {
        **SETTINGS,
        **(THROWAWAY_SETTINGS if throwaway else {}),
        "unix_socket_directories": str(socket_dir(layout)),
        # documentdb reaches its own cluster for some commands (explain, index builds).
        "documentdb.localhost_connection_string": f"host={socket_dir(layout)}",
    }
    options = [f"--{name}={value}" for name, value in settings.items()]
    return (str(PG_BIN / "postgres"), "-D", str(layout.data("postgres")), *options)


def postgres_ready(layout: Layout) -> bool:
    done = subprocess.run(
        [
            str(PG_BIN / "pg_isready"),
            "-q",
            "-h",
            str(socket_dir(layout)),
            "-d",
            PG_DATABASE,
            "-U",
            PG_ROLE,
            "-t",
            "2",
        ],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def create_extension(layout: Layout) -> None:
    """``CREATE EXTENSION documentdb CASCADE`` once (it brings pg_cron, vector, postgis, rum)."""
    done = subprocess.run(
        [
            str(PG_BIN / "psql"),
            "-h",
            str(socket_dir(layout)),
            "-U",
            PG_ROLE,
            "-d",
            PG_DATABASE,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            "CREATE EXTENSION IF NOT EXISTS documentdb CASCADE",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise LocalError(f"creating the documentdb extension failed:\n{done.stderr}")
