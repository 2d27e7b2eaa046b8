"""Throwaway servers answer their real protocols, and leave no process behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pymongo
import pytest
import redis
from taskmesh_local import engine, install, procs
from taskmesh_local.servers import ServerSet, start_servers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not all(install.binary_path(s).exists() for s in (install.FERRETDB, install.JAEGER))
        or not engine.extensions_installed(),
        reason="engine/Jaeger not installed: python3 -m taskmesh_local install",
    ),
]

PARTS = ("epmd", "postgres", "mongo", "redis", "jaeger", "rabbitmq")


@pytest.fixture
def own_dir() -> Iterator[Path]:
    """A folder of this test's own in the temporary directory (pytest's ``tmp_path`` lies
    below a folder only its owner may enter, which the cluster's user could not reach)."""
    folder = Path(tempfile.mkdtemp(prefix="taskmesh-local-test-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerSet]:
    with start_servers(jaeger=True) as started:
        yield started


def test_mongo_protocol_answers_a_ping_and_stores(servers: ServerSet) -> None:
    with pymongo.MongoClient(servers.mongo_url, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1.0
        client.t.c.insert_one({"k": 1})
        assert client.t.c.count_documents({"k": 1}) == 1


def test_mongo_finds_by_an_indexed_field_with_an_index_scan(servers: ServerSet) -> None:
    """The engine (DocumentDB) answers a filter on an indexed field from the index, not by
    reading the collection."""
    with pymongo.MongoClient(servers.mongo_url, serverSelectionTimeoutMS=5000) as client:
        docs = client.idx_probe.docs
        docs.create_index([("owner", 1), ("n", 1)], name="owner_n")
        docs.insert_many([{"_id": f"d{n}", "owner": f"u{n % 50}", "n": n} for n in range(2000)])
        assert [d["n"] for d in docs.find({"owner": "u7"}).sort("n", 1).limit(2)] == [7, 57]
        plan = json.dumps(docs.find({"owner": "u7"}).sort("n", 1).limit(2).explain(), default=str)
    assert "owner_n" in plan, plan
    assert "Index Scan" in plan, plan


def test_the_engine_front_runs_on_one_go_processor(servers: ServerSet) -> None:
    """FerretDB's CPU a command is a quarter lower with one Go processor
    (docs/performance.md#engine-front): the setting must reach the process."""
    listen = "--listen-addr=" + servers.mongo_url.removeprefix("mongodb://").split("/")[0]
    environs = [
        (entry / "environ").read_bytes().split(b"\0")
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and listen.encode() in _read(entry / "cmdline").split(b"\0")
    ]
    assert len(environs) == 1
    assert b"GOMAXPROCS=1" in environs[0]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a process that ended meanwhile
        return b""


def test_mongo_updates_are_atomic_under_concurrency(servers: ServerSet) -> None:
    """Concurrent ``$inc`` through ``find_one_and_update`` lose no increment."""
    with pymongo.MongoClient(servers.mongo_url, serverSelectionTimeoutMS=5000) as client:
        counters = client.atomic_probe.counters
        counters.insert_one({"_id": "c", "n": 0})

        def bump() -> None:
            for _ in range(25):
                counters.find_one_and_update({"_id": "c"}, {"$inc": {"n": 1}})

        threads = [threading.Thread(target=bump) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert counters.find_one({"_id": "c"}) == {"_id": "c", "n": 200}


def test_redis_answers_ping(servers: ServerSet) -> None:
    client = redis.Redis.from_url(servers.redis_url)
    try:
        assert client.ping() is True
    finally:
        client.close()


async def test_rabbitmq_routes_a_message(servers: ServerSet) -> None:
    connection = await aio_pika.connect(servers.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("", exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"hi"), routing_key=queue.name)
        message = await queue.get(timeout=5)
        assert message is not None
        assert message.body == b"hi"
        await message.ack()


def test_jaeger_query_api_answers(servers: ServerSet) -> None:
    assert servers.jaeger_url is not None
    with urllib.request.urlopen(f"{servers.jaeger_url}/api/services", timeout=5) as response:
        assert response.status == 200
        assert "data" in json.load(response)


def test_env_names_every_server(servers: ServerSet) -> None:
    env = servers.env()
    assert env["TASKMESH_MONGO_URL"] == servers.mongo_url
    assert env["TASKMESH_AMQP_URL"].startswith("amqp://guest:guest@127.0.0.1:")
    assert env["TASKMESH_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://127.0.0.1:")


def test_stop_leaves_no_process_behind(own_dir: Path) -> None:
    started = start_servers(own_dir / "s")
    tags = [started.layout.tag(part) for part in PARTS]
    assert procs.tagged_pids(started.layout.tag("rabbitmq"))
    started.stop()
    assert [pid for tag in tags for pid in procs.tagged_pids(tag)] == []


def test_cli_writes_an_env_file_and_stops_from_another_process(own_dir: Path) -> None:
    folder = own_dir / "cli"
    src = str(Path(__file__).parents[1] / "src")
    command = [sys.executable, "-m", "taskmesh_local", "test-servers"]
    env = {**os.environ, "PYTHONPATH": src}
    subprocess.run([*command, "start", "--dir", str(folder)], env=env, check=True, timeout=120)
    lines = dict(line.split("=", 1) for line in (folder / "env").read_text().splitlines() if line)
    assert set(lines) == {
        "TASKMESH_MONGO_URL",
        "TASKMESH_AMQP_URL",
        "TASKMESH_REDIS_URL",
        "TASKMESH_AUTH_AMQP_URL",
        "TASKMESH_TASKS_AMQP_URL",
        "TASKMESH_ANALYTICS_AMQP_URL",
    }
    client = redis.Redis.from_url(lines["TASKMESH_REDIS_URL"])
    try:
        assert client.ping() is True
    finally:
        client.close()

    subprocess.run([*command, "stop", "--dir", str(folder)], env=env, check=True, timeout=60)
    resolved = folder.resolve()
    assert [pid for part in PARTS for pid in procs.tagged_pids(f"{resolved}#{part}")] == []
