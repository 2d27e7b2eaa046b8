"""Where things live: the checkout, its git-ignored ``.local`` folder and the build cache."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout", "cache_dir", "checkout_root", "local_dir"]


def checkout_root() -> Path:
    """The repository root: four levels above this package (infra/local/src/taskmesh_local)."""
    root = Path(__file__).resolve().parents[4]
    if (root / "pyproject.toml").is_file() and (root / "infra" / "local").is_dir():
        return root
    # Installed as a plain wheel rather than from the workspace: assume we run from the root.
    return Path.cwd()


def local_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder holding data, logs and pid files of the local stack."""
    env = os.environ if env is None else env
    override = env.get("TASKMESH_LOCAL_DIR")
    return Path(override).expanduser().resolve() if override else checkout_root() / ".local"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Built binaries, shared by every checkout on the machine."""
    env = os.environ if env is None else env
    if override := env.get("TASKMESH_CACHE_DIR"):
        return Path(override).expanduser()
    xdg = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(xdg).expanduser() / "taskmesh"


@dataclass(frozen=True)
class Layout:
    """One folder of processes: ``data/<part>``, ``log/<part>.log``, ``run/<part>.pid``."""

    base: Path

    def data(self, part: str) -> Path:
        return self.base / "data" / part

    def log(self, part: str) -> Path:
        return self.base / "log" / f"{part}.log"

    def pid_file(self, part: str) -> Path:
        return self.base / "run" / f"{part}.pid"

    def conf(self, part: str) -> Path:
        return self.base / "conf" / part

    def tag(self, part: str) -> str:
        """A value put in each process's environment: it finds the part's children too."""
        return f"{self.base}#{part}"
