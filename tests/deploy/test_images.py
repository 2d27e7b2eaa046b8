"""The services' Dockerfiles and the build context, checked without a Docker engine.

The build stage is replayed for real: the files the .dockerignore lets through are copied
as the Dockerfile's COPY lines say, its `uv sync` lines run, and the resulting virtualenv
must import the service with no source tree beside it, as in the runtime image, and start
it as the image's CMD does, without logging an error.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from deploy_support import REPO, SERVICES
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_local.net import free_ports

DOCKERIGNORE = REPO / ".dockerignore"


def dockerfile(name: str) -> str:
    return (REPO / "services" / name / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(ins.split(None, 1)[0].upper(), ins.split(None, 1)[1]) for ins in logical]


def stages(name: str) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    stage = ""
    for ins, args in instructions(dockerfile(name)):
        if ins == "FROM":
            stage = args.split()[-1] if " AS " in args.upper() else args
            out[stage] = []
        elif stage:
            out[stage].append((ins, args))
    return out


def ignore_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def context_files() -> set[str]:
    """The files a `docker build .` from the repo root sends, after .dockerignore."""
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), ignore_regex(line.lstrip("!"))))
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kept = set()
    for path in listed:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for negated, regex in rules:  # the last matching rule wins, as in Docker
            if any(regex.fullmatch(p) for p in prefixes):
                excluded = not negated
        if not excluded and (REPO / path).is_file():
            kept.add(path)
    return kept


@pytest.fixture(scope="module")
def context() -> set[str]:
    return context_files()


def test_the_context_holds_the_workspace_and_nothing_private(context: set[str]) -> None:
    assert {"pyproject.toml", "uv.lock"} <= context
    for name in SERVICES:
        assert f"services/{name}/src/{name}_service/__main__.py" in context
    assert any(p.startswith("libs/common/src/taskmesh_common/") for p in context)
    for path in context:
        assert not path.startswith((".git/", ".venv/", ".local/", "infra/k8s/", "tests/")), path
        assert "/tests/" not in path and "__pycache__" not in path, path
        assert not path.endswith(".env"), path


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dockerfile_follows_the_house_recipe(name: str) -> None:
    text = dockerfile(name)
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
    images = [args.get(f.strip("${}"), f) for f in froms]
    for image in images:
        tag = image.rpartition(":")[2]
        assert ":" in image and tag != "latest", f"{image} is not pinned"
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", images[0])
    # The gateway's image also builds the web console, in a Node stage of its own.
    node = [i for i in images[1:] if i.startswith("node:")]
    assert len(node) == (1 if name == "gateway" else 0)
    assert all(re.fullmatch(r"node:20\.\d+\.\d+-bookworm-slim", i) for i in node)
    assert all(
        re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", i) for i in images[1:] if i not in node
    )
    assert len(froms) >= 3, "multi-stage: uv, build, runtime"

    stage = stages(name)
    build, runtime = stage["build"], stage["runtime"]
    env = " ".join(a for i, a in build if i == "ENV")
    assert "UV_COMPILE_BYTECODE=1" in env
    syncs = [a for i, a in build if i == "RUN" and "uv sync" in a]
    assert syncs and all(
        {"--frozen", "--no-dev", f"--package {name}-service"} <= set(_flags(s)) for s in syncs
    )
    assert "--no-editable" in syncs[-1]

    [user] = [a for i, a in runtime if i == "USER"]
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), "numeric non-root user"
    copies = [a for i, a in runtime if i == "COPY"]
    expected = ["--from=build /app/.venv /app/.venv"]
    if name == "gateway":
        expected.append("--from=console /console/dist /app/console")
    assert copies == expected, "only the venv (and the gateway's built console) reach runtime"
    [health] = [a for i, a in runtime if i == "HEALTHCHECK"]
    assert "urllib.request" in health and "/healthz" in health and f"'{SERVICES[name]}'" in health
    runtime_env = " ".join(a for i, a in runtime if i == "ENV")
    assert "TASKMESH_HOST=0.0.0.0" in runtime_env
    assert f"TASKMESH_PORT={SERVICES[name]}" in runtime_env
    assert ("EXPOSE", str(SERVICES[name])) in runtime
    assert ("CMD", f'["python", "-m", "{name}_service"]') in runtime


def _flags(command: str) -> list[str]:
    words = shlex.split(command)
    flags = []
    for i, word in enumerate(words):
        if word == "--package":
            flags.append(f"--package {words[i + 1]}")
        elif word.startswith("--"):
            flags.append(word)
    return flags


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_build_stage_produces_a_venv_that_runs_the_service(
    name: str, context: set[str], tmp_path: Path, backing_servers: BackingServers
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    for ins, args in stages(name)["build"]:
        if ins == "ENV":
            for pair in re.findall(r"(\w+)=(\S+)", args):
                env[pair[0]] = pair[1]
        elif ins == "COPY" and not args.startswith("--from"):
            *sources, dest = args.split()
            for source in sources:
                copied = [p for p in context if p == source or p.startswith(source + "/")]
                assert copied, f"COPY {source}: not in the build context"
                for path in copied:
                    if path == source:  # a file, into a folder (trailing /) or to a name
                        to_dir = dest.endswith("/") or dest == "."
                        target = app / dest / Path(path).name if to_dir else app / dest
                    else:  # a folder's contents, into dest
                        target = app / dest / Path(path).relative_to(source)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO / path, target)
        elif ins == "RUN":
            command = re.sub(r"--mount=\S+\s*", "", args)
            # This machine's interpreter stands in for the image's /usr/local/bin/python3.11.
            env["UV_PYTHON"] = sys.executable
            result = subprocess.run(
                command, shell=True, cwd=app, env=env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, f"RUN {command}\n{result.stderr[-3000:]}"
    # The runtime image holds the venv only: no sources to fall back on.
    for folder in ("libs", "services", "infra"):
        shutil.rmtree(app / folder, ignore_errors=True)
    python = app / ".venv" / "bin" / "python"
    result = subprocess.run(
        [python, "-c", f"import {name}_service.__main__, {name}_service.api.app"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    dev_tools = list((app / ".venv").glob("lib/python*/site-packages/pytest"))
    assert not dev_tools, "the dev group must not be installed"
    _start_as_the_image_does(name, python, backing_servers, tmp_path)


class _OtlpSink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports (an empty protobuf answer is a valid empty response)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _start_as_the_image_does(
    name: str, python: Path, servers: BackingServers, tmp_path: Path
) -> None:
    """The image's CMD (`python -m <name>_service`) on the runtime venv, telemetry on, real
    backing servers: it must answer /healthz, stop on SIGTERM, and log no error on the way
    (an instrumentor whose library is dev-only logged one at every start, for instance)."""
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _OtlpSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    port = free_ports(1)[0]
    prefix = unique_name(f"deploy_{name}")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TASKMESH_PORT": str(port),
        "TASKMESH_MONGO_URL": servers.mongo_url,
        "TASKMESH_AMQP_URL": servers.amqp_url,
        "TASKMESH_REDIS_URL": servers.redis_url,
        "TASKMESH_MONGO_DB_PREFIX": f"{prefix}_",
        "TASKMESH_EVENTS_EXCHANGE": prefix,
        "TASKMESH_QUEUE_PREFIX": f"{prefix}.",
        "TASKMESH_REDIS_PREFIX": f"{prefix}:",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
    }
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [python, "-m", f"{name}_service"], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 90
        while not _healthy(port):
            assert proc.poll() is None, f"{name} exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"{name} never became healthy: {log.read_text()[-3000:]}"
            )
            time.sleep(0.2)
        time.sleep(1)  # what start-up does after the listener opens (consumers, key checks)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sink.shutdown()
    lines = log.read_text().splitlines()
    bad = [
        line
        for line in lines
        if "Traceback" in line or re.search(r'"level": "(error|critical)"', line)
    ]
    assert not bad, "\n".join(bad[:10])
    assert any('"level": "info"' in line for line in lines), "no JSON log line at all"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_the_gateway_image_builds_the_console_from_its_lock_file(context: set[str]) -> None:
    console = stages("gateway")["console"]
    for ins, args in console:
        if ins == "COPY":
            *sources, _dest = args.split()
            for source in sources:
                assert any(p == source or p.startswith(source + "/") for p in context), source
    runs = [a for i, a in console if i == "RUN"]
    assert any("npm ci" in r for r in runs) and not any("npm install" in r for r in runs)
    assert runs[-1] == "npm run build"
    runtime_env = " ".join(a for i, a in stages("gateway")["runtime"] if i == "ENV")
    assert "TASKMESH_CONSOLE_DIR=/app/console" in runtime_env
