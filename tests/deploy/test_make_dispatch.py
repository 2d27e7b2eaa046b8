"""`make stop/start/status/logs` act on whatever `make up` chose: compose when a Docker engine
answers (and TASKMESH_FORCE_LOCAL is unset), the local processes otherwise.

A stand-in `docker` on PATH records its arguments; it answers `docker info` as told."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = "compose -f infra/compose/compose.yaml"


def _make(tmp_path: Path, target: list[str], *, engine_answers: bool, force_local: bool) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "docker-calls"
    calls.write_text("")
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        f'if [ "$1" = info ]; then exit {0 if engine_answers else 1}; fi\n'
        "exit 0\n"
    )
    docker.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "TASKMESH_LOCAL_DIR": str(tmp_path / "local"),
    }
    env.pop("TASKMESH_FORCE_LOCAL", None)
    if force_local:
        env["TASKMESH_FORCE_LOCAL"] = "1"
    subprocess.run(
        ["make", "--no-print-directory", *target],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return calls.read_text()


@pytest.mark.parametrize(
    ("target", "compose_args"),
    [
        (["stop", "SERVICE=redis"], "stop redis"),
        (["start", "SERVICE=redis"], "start redis"),
        (["status"], "ps"),
    ],
)
def test_targets_use_compose_when_an_engine_answers(
    tmp_path: Path, target: list[str], compose_args: str
) -> None:
    calls = _make(tmp_path, target, engine_answers=True, force_local=False)
    assert f"{COMPOSE} {compose_args}" in calls.splitlines()


def test_targets_use_the_local_stack_without_an_engine(tmp_path: Path) -> None:
    calls = _make(tmp_path, ["stop", "SERVICE=redis"], engine_answers=False, force_local=False)
    assert calls.splitlines() == ["info"]  # asked, then ran the local stack's stop


def test_forcing_local_skips_compose_even_when_an_engine_answers(tmp_path: Path) -> None:
    calls = _make(tmp_path, ["status"], engine_answers=True, force_local=True)
    assert not any(line.startswith("compose") for line in calls.splitlines())
