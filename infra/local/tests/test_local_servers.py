"""Throwaway servers answer their real protocols, and leave no process behind."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pymongo
import pytest
import redis
from taskmesh_local import install, procs
from taskmesh_local.servers import ServerSet, start_servers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not all(install.binary_path(s).exists() for s in (install.FERRETDB, install.JAEGER)),
        reason="FerretDB/Jaeger not built: python3 -m taskmesh_local install",
    ),
]

PARTS = ("epmd", "mongo", "redis", "jaeger", "rabbitmq")


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerSet]:
    with start_servers(jaeger=True) as started:
        yield started


def test_mongo_protocol_answers_a_ping_and_stores(servers: ServerSet) -> None:
    with pymongo.MongoClient(servers.mongo_url, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1.0
        client.t.c.insert_one({"k": 1})
        assert client.t.c.count_documents({"k": 1}) == 1


def test_mongo_lookups_by_id_use_an_index(servers: ServerSet) -> None:
    """FerretDB 1.24/SQLite looks `_id` up with an expression its own `_id` index does not
    cover (a scan per lookup); our FerretDB build adds an index on that expression to every
    collection's table within a poll interval (infra/local/go/ferretdb/idindex.go)."""
    with pymongo.MongoClient(servers.mongo_url, serverSelectionTimeoutMS=5000) as client:
        client.idx_probe.docs.insert_many([{"_id": f"d{n}", "n": n} for n in range(50)])
        assert client.idx_probe.docs.find_one({"_id": "d7"}) == {"_id": "d7", "n": 7}
    database = servers.layout.data("mongo") / "idx_probe.sqlite"
    plan = ""
    deadline = time.monotonic() + 10
    while "USING INDEX" not in plan and time.monotonic() < deadline:
        time.sleep(0.2)
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            (table,) = db.execute("SELECT table_name FROM _ferretdb_collections").fetchone()
            plan = " ".join(
                str(row[-1])
                for row in db.execute(
                    f'EXPLAIN QUERY PLAN SELECT 1 FROM "{table}" '
                    "WHERE _ferretdb_sjson->'$._id' = ?",
                    ('"d7"',),
                )
            )
    assert "USING INDEX" in plan, plan


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
    assert env["TASKMESH_MONGO_MAX_WRITES"] == "1"  # FerretDB: one writer per service
    assert env["TASKMESH_AMQP_URL"].startswith("amqp://guest:guest@127.0.0.1:")
    assert env["TASKMESH_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://127.0.0.1:")


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    started = start_servers(tmp_path / "s")
    tags = [started.layout.tag(part) for part in PARTS]
    assert procs.tagged_pids(started.layout.tag("rabbitmq"))
    started.stop()
    assert [pid for tag in tags for pid in procs.tagged_pids(tag)] == []


def test_cli_writes_an_env_file_and_stops_from_another_process(tmp_path: Path) -> None:
    folder = tmp_path / "cli"
    src = str(Path(__file__).parents[1] / "src")
    command = [sys.executable, "-m", "taskmesh_local", "test-servers"]
    env = {**os.environ, "PYTHONPATH": src}
    subprocess.run([*command, "start", "--dir", str(folder)], env=env, check=True, timeout=120)
    lines = dict(line.split("=", 1) for line in (folder / "env").read_text().splitlines() if line)
    assert set(lines) == {
        "TASKMESH_MONGO_URL",
        "TASKMESH_MONGO_MAX_WRITES",
        "TASKMESH_AMQP_URL",
        "TASKMESH_REDIS_URL",
    }
    client = redis.Redis.from_url(lines["TASKMESH_REDIS_URL"])
    try:
        assert client.ping() is True
    finally:
        client.close()

    subprocess.run([*command, "stop", "--dir", str(folder)], env=env, check=True, timeout=60)
    resolved = folder.resolve()
    assert [pid for part in PARTS for pid in procs.tagged_pids(f"{resolved}#{part}")] == []
