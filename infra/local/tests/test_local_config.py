"""Ports from the environment, paths, versions read from go.mod, the engine's pinned sources,
and the old engine's data refused."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from taskmesh_local.config import LocalError, Ports, parse_port
from taskmesh_local.engine import SOURCES
from taskmesh_local.install import module_version
from taskmesh_local.paths import cache_dir, local_dir
from taskmesh_local.sources import tree_hash, vendor_dir
from taskmesh_local.stack import Stack


def test_default_ports_are_the_documented_ones() -> None:
    ports = Ports.from_env({})
    assert (ports.gateway, ports.auth, ports.tasks, ports.analytics) == (8080, 8001, 8002, 8003)
    assert (ports.mongo, ports.amqp, ports.redis) == (27017, 5672, 6379)
    assert (ports.amqp_management, ports.jaeger_ui, ports.otlp_grpc, ports.otlp_http) == (
        15672,
        16686,
        4317,
        4318,
    )
    assert ports.amqp_dist == 25672


def test_each_port_moves_with_its_variable() -> None:
    ports = Ports.from_env({"TASKMESH_REDIS_PORT": " 6380 ", "TASKMESH_AMQP_PORT": "5673"})
    assert ports.redis == 6380
    assert ports.amqp == 5673
    assert ports.amqp_dist == 25673


@pytest.mark.parametrize("value", ["http", "0", "65536", "-1", "80.5"])
def test_a_bad_port_names_its_variable(value: str) -> None:
    with pytest.raises(LocalError, match="TASKMESH_GATEWAY_PORT"):
        Ports.from_env({"TASKMESH_GATEWAY_PORT": value})


def test_two_parts_on_one_port_are_refused() -> None:
    with pytest.raises(LocalError, match="TASKMESH_AUTH_PORT and TASKMESH_GATEWAY_PORT"):
        Ports.from_env({"TASKMESH_AUTH_PORT": "8080"})


def test_parse_port_accepts_the_whole_range() -> None:
    assert parse_port("X", "1") == 1
    assert parse_port("X", "65535") == 65535


def test_cache_dir_follows_taskmesh_then_xdg_then_home() -> None:
    assert cache_dir({"TASKMESH_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x"}) == Path("/c")
    assert cache_dir({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/taskmesh")
    assert cache_dir({"HOME": "/h"}) == Path("/h/.cache/taskmesh")


def test_local_dir_defaults_to_the_checkout(tmp_path: Path) -> None:
    assert local_dir({}).name == ".local"
    assert (local_dir({}).parent / "infra" / "local").is_dir()
    assert local_dir({"TASKMESH_LOCAL_DIR": str(tmp_path)}) == tmp_path


def test_module_version_reads_both_require_forms() -> None:
    single = "module x\n\nrequire github.com/FerretDB/FerretDB/v2 v2.5.0\n"
    block = "require (\n\tgithub.com/jaegertracing/jaeger v1.76.0 // indirect\n)\n"
    assert module_version(single, "github.com/FerretDB/FerretDB/v2") == "v2.5.0"
    assert module_version(block, "github.com/jaegertracing/jaeger") == "v1.76.0"
    with pytest.raises(LocalError):
        module_version(block, "github.com/FerretDB/FerretDB/v2")


def test_up_refuses_a_data_folder_of_the_old_engine_and_keeps_it(tmp_path: Path) -> None:
    old = tmp_path / "data" / "mongo"
    old.mkdir(parents=True)
    (old / "tasks.sqlite").write_bytes(b"old data")
    stack = Stack.from_env({"TASKMESH_LOCAL_DIR": str(tmp_path)})
    with pytest.raises(LocalError, match="old engine") as refused:
        stack.up()
    assert f"mv {old} " in str(refused.value)
    assert (old / "tasks.sqlite").read_bytes() == b"old data"


def _tarball(path: Path, top: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_tree_hash_ignores_the_top_folder_and_sees_every_byte(tmp_path: Path) -> None:
    files = {"a.c": b"int a;", "sub/b.h": b"#define B 1"}
    vendored = _tarball(tmp_path / "v.tar.gz", "pg_cron-1.6.3", files)
    upstream = _tarball(tmp_path / "u.tar.gz", "pg_cron-v1.6.3", dict(reversed(files.items())))
    changed = _tarball(tmp_path / "c.tar.gz", "pg_cron-1.6.3", {**files, "a.c": b"int b;"})
    assert tree_hash(vendored) == tree_hash(upstream)
    assert tree_hash(vendored) != tree_hash(changed)


def test_the_pinned_engine_sources_match_the_vendored_archives() -> None:
    for source in SOURCES:
        archive = vendor_dir() / source.archive
        assert archive.is_file(), f"{archive} missing: shared/vendor sits beside the checkout"
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == source.sha256
        assert tree_hash(archive) == source.tree
