"""Helpers of the deployment checks: the compose model and the rendered Kustomize overlays.

Both come from the real tools, built by ``infra/k8s/install-tools.sh`` into a cache outside
the checkout: ``kustomize`` and ``compose-check`` (Docker Compose's own loader, compose-go).
A missing tool fails the tests with the command that installs it; it never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "infra" / "compose" / "compose.yaml"
K8S = REPO / "infra" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
SERVICES = {"auth": 8001, "tasks": 8002, "analytics": 8003, "gateway": 8080}
# Each service's internal listener: /metrics and detailed /readyz, for Prometheus alone.
INTERNAL_PORTS = {"auth": 9001, "tasks": 9002, "analytics": 9003, "gateway": 9080}
INSTALL = "bash infra/k8s/install-tools.sh"

Doc = dict[str, Any]


def tools_dir() -> Path:
    if explicit := os.environ.get("TASKMESH_TOOLS_DIR"):
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "taskmesh" / "bin"


def find_tool(name: str) -> Path:
    for candidate in (tools_dir() / name, shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    pytest.fail(
        f"{name} is not installed (looked in {tools_dir()} and on PATH); run `{INSTALL}`",
        pytrace=False,
    )


def run(cmd: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kwargs
    )


def kustomize_build(kustomize: Path, directory: Path) -> list[Doc]:
    result = run([kustomize, "build", directory])
    assert result.returncode == 0, f"kustomize build {directory} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def copy_k8s_with_example_secrets(dest: Path) -> Path:
    """A copy of infra/k8s whose prod secret files are the checked-in examples.

    The real files are git-ignored and never present in CI, so the copy is what renders.
    """
    tree = dest / "k8s"
    shutil.copytree(K8S, tree)
    for example in tree.glob("overlays/*/secrets/*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    return tree


def compose_model(*profiles: str, env: dict[str, str] | None = None) -> Doc:
    """The compose file as Docker Compose resolves it (schema-checked, interpolated)."""
    checker = find_tool("compose-check")
    args: list[str | Path] = [checker]
    for profile in profiles:
        args += ["-profile", profile]
    # A clean environment: the defaults in the file are what is checked, not this shell's.
    base_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    result = run([*args, COMPOSE_FILE], env={**base_env, **(env or {})})
    assert result.returncode == 0, f"compose file does not load:\n{result.stderr}"
    model: Doc = json.loads(result.stdout)
    return model
