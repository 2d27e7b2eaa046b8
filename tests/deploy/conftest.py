"""Fixtures of the deployment checks (helpers in deploy_support.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib, which puts no test folder on sys.path: make the
# helper module beside this file importable by the test modules.
sys.path.insert(0, str(Path(__file__).parent))

from deploy_support import OVERLAYS as OVERLAYS
from deploy_support import (
    Doc,
    compose_model,
    copy_k8s_with_example_secrets,
    find_tool,
    kustomize_build,
)


@pytest.fixture(scope="session")
def kustomize() -> Path:
    return find_tool("kustomize")


@pytest.fixture(scope="session")
def k8s_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_k8s_with_example_secrets(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="session")
def rendered(kustomize: Path, k8s_copy: Path) -> dict[str, list[Doc]]:
    """Every overlay (and the base), rendered once per session."""
    out = {name: kustomize_build(kustomize, k8s_copy / "overlays" / name) for name in OVERLAYS}
    out["base"] = kustomize_build(kustomize, k8s_copy / "base")
    return out


@pytest.fixture(scope="session")
def compose() -> Doc:
    return compose_model()


@pytest.fixture(scope="session")
def compose_observability() -> Doc:
    return compose_model("observability")
