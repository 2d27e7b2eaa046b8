"""How the relay spreads documents over leased partitions: pure, no I/O."""

from __future__ import annotations

from typing import Any

from taskmesh_common.events import OutboxRelay


class _Db:
    """Just enough of a database for the constructor; nothing here touches it."""

    name = "unit"

    def __getitem__(self, name: str) -> Any:
        return name


def relay(partitions: int = 16) -> OutboxRelay:
    return OutboxRelay(_Db(), ["tasks"], publisher=None, service="t", partitions=partitions)  # type: ignore[arg-type]


def test_a_document_always_falls_in_the_same_partition():
    assert relay().partition_key("tasks", "abc") == relay().partition_key("tasks", "abc")


def test_documents_spread_over_all_partitions():
    r = relay(partitions=8)
    keys = {r.partition_key("tasks", f"task-{i}") for i in range(400)}
    assert len(keys) == 8


def test_each_relay_replica_has_its_own_owner_name():
    assert relay().owner != relay().owner
