"""Install what the local stack needs: Debian packages, the DocumentDB engine (PostgreSQL
extensions, see engine.py), FerretDB v2 and Jaeger built with Go, the venv.

Each step checks first and does nothing when its work is already done, so ``up`` can call
``install`` every time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from taskmesh_local import engine, jaeger_ui, web_console
from taskmesh_local.config import LocalError
from taskmesh_local.paths import cache_dir, checkout_root
from taskmesh_local.steps import run_step

__all__ = [
    "DEBIAN_PACKAGES",
    "FERRETDB",
    "JAEGER",
    "VEGETA",
    "GoBinary",
    "binary_path",
    "ensure_binary",
    "ensure_debian_packages",
    "ensure_venv",
    "install",
]

DEBIAN_PACKAGES = ("rabbitmq-server", "redis-server", *engine.BUILD_PACKAGES)


@dataclass(frozen=True)
class GoBinary:
    """A binary built with ``go build -trimpath`` from a pinned module in infra/local/go."""

    name: str
    module: str  # the required module whose version names the binary
    package: str  # what to build, relative to the folder's module
    # Bumped when the way we build changes, so that binaries built the old way are rebuilt.
    recipe: str

    @property
    def source(self) -> Path:
        return checkout_root() / "infra" / "local" / "go" / self.name


# FerretDB v2, the MongoDB wire-protocol front of the DocumentDB engine: a small main.go of
# ours around FerretDB's embeddable package (its own cmd/ferretdb wants a generated version.txt).
FERRETDB = GoBinary(
    name="ferretdb",
    module="github.com/FerretDB/FerretDB/v2",
    package=".",
    recipe="embeddable-main-v2-1",
)
JAEGER = GoBinary(
    name="jaeger",
    module="github.com/jaegertracing/jaeger",
    package="github.com/jaegertracing/jaeger/cmd/jaeger",
    recipe="plain-1",
)
# Not part of the stack: `make bench` builds it for its fixed-rate (open-loop) latency runs.
VEGETA = GoBinary(
    name="vegeta",
    module="github.com/tsenart/vegeta/v12",
    package="github.com/tsenart/vegeta/v12",
    recipe="plain-1",
)


def _say(message: str) -> None:
    print(f"taskmesh-local: {message}", file=sys.stderr, flush=True)


def module_version(go_mod: str, module: str) -> str:
    """The version ``go.mod`` requires of ``module``."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if not match:
        raise LocalError(f"go.mod does not require {module}")
    return match.group(1)


def binary_path(spec: GoBinary) -> Path:
    version = module_version((spec.source / "go.mod").read_text(), spec.module)
    return cache_dir() / "bin" / f"{spec.name}-{version}"


def _stamp(spec: GoBinary) -> str:
    digest = hashlib.sha256(spec.recipe.encode())
    for path in sorted([spec.source / "go.mod", spec.source / "go.sum", *spec.source.glob("*.go")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _runs(binary: Path) -> bool:
    try:
        done = subprocess.run([str(binary), "--help"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise LocalError(
            "`go` is not on PATH; install Go 1.24 or newer to build FerretDB and Jaeger"
        )
    return go


def _build(spec: GoBinary, target: Path) -> None:
    # Go's build cache stays where Go keeps it (outside the checkout): a rebuild is quick.
    tmp_out = target.with_name(f".{target.name}.building")
    run_step(
        f"building {target.name} with go (Jaeger takes minutes the first time)",
        [_go(), "build", "-trimpath", "-o", str(tmp_out), spec.package],
        cwd=spec.source,
    )
    tmp_out.replace(target)


def ensure_binary(spec: GoBinary) -> Path:
    """The built binary, building it first when missing or built from other go.mod/go.sum."""
    target = binary_path(spec)
    stamp_file = target.with_name(f"{target.name}.stamp")
    stamp = _stamp(spec)
    if target.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp:
        return target
    with _lock(target.with_name(f".{spec.name}.lock")):
        # Another `install` may have built it while we waited for the lock.
        if stamp_file.exists() and stamp_file.read_text().strip() == stamp and target.exists():
            return target
        # A binary without a stamp came from elsewhere: keep it if it starts.
        if not (target.exists() and not stamp_file.exists() and _runs(target)):
            _build(spec, target)
            if not _runs(target):
                raise LocalError(f"{target} was built but does not start")
        stamp_file.write_text(stamp + "\n")
    return target


def missing_debian_packages(packages: Sequence[str]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return [pkg for pkg in packages if shutil.which(pkg) is None]
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {
        line.split()[0] for line in done.stdout.splitlines() if line.split()[1:2] == ["ii"]
    }
    return [pkg for pkg in packages if pkg not in installed]


def ensure_debian_packages(packages: Sequence[str] = DEBIAN_PACKAGES) -> None:
    missing = missing_debian_packages(packages)
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise LocalError(f"missing {', '.join(missing)} and no apt-get to install them")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _say(f"installing {' '.join(missing)} with apt-get")
    try:
        subprocess.run([*sudo, "apt-get", "update"], check=True, env=env)
        subprocess.run(
            [*sudo, "apt-get", "install", "-y", "--no-install-recommends", *missing],
            check=True,
            env=env,
        )
    except subprocess.CalledProcessError as exc:
        raise LocalError(f"apt-get failed: {exc}") from exc


def venv_python() -> Path:
    return checkout_root() / ".venv" / "bin" / "python"


def ensure_venv() -> None:
    if venv_python().exists():
        return
    uv = shutil.which("uv")
    if uv is None:
        _say("installing uv with pip")
        subprocess.run([sys.executable, "-m", "pip", "install", "uv"], check=True)
        uv = shutil.which("uv") or str(Path(sysconfig.get_path("scripts")) / "uv")
    _say("creating the venv: uv sync --all-packages --frozen")
    try:
        subprocess.run([uv, "sync", "--all-packages", "--frozen"], cwd=checkout_root(), check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise LocalError(f"uv sync failed: {exc}") from exc


def install(*, venv: bool = True) -> dict[str, Path]:
    """Everything ``up`` needs; returns the paths of what was built.

    The builds run side by side (C with make, Go, npm): on a fresh machine they are most of
    the wait, and each leaves the processor idle part of the time (downloads, linking)."""
    ensure_debian_packages()
    builds: dict[str, Callable[[], Path]] = {
        "documentdb": engine.ensure_extensions,
        FERRETDB.name: lambda: ensure_binary(FERRETDB),
        JAEGER.name: lambda: ensure_binary(JAEGER),
        "jaeger-ui": jaeger_ui.ensure_ui,
        "console": web_console.ensure_console,
    }
    with ThreadPoolExecutor(max_workers=len(builds)) as pool:
        running = {name: pool.submit(build) for name, build in builds.items()}
        built = {name: future.result() for name, future in running.items()}
    if venv:
        ensure_venv()
    return built
