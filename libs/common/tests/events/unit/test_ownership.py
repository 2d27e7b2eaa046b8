"""Which broker user published a message, and whether it may publish the event's type."""

from __future__ import annotations

import aio_pika
import pytest
from taskmesh_common.events.errors import ForeignPublisher
from taskmesh_common.events.ownership import check_publisher, message_publisher
from taskmesh_common.events.topology import PUBLISHER_HEADER


def message(user_id: str | None, recorded: str | None = None) -> aio_pika.Message:
    headers = {PUBLISHER_HEADER: recorded} if recorded is not None else None
    return aio_pika.Message(b"{}", user_id=user_id, headers=headers)


def test_the_publisher_is_the_user_id_the_broker_checked() -> None:
    assert message_publisher(message("auth"), own_user="analytics") == "auth"
    assert message_publisher(message(None), own_user="analytics") is None


def test_a_recorded_publisher_is_believed_only_on_the_consumers_own_copies() -> None:
    # A retry or dead letter the analytics consumer published itself.
    assert message_publisher(message("analytics", "auth"), own_user="analytics") == "auth"
    # Another service claiming a publisher in the header: its own user still counts.
    assert message_publisher(message("tasks", "auth"), own_user="analytics") == "tasks"
    assert message_publisher(message(None, "auth"), own_user="analytics") is None


def test_only_the_owners_broker_user_publishes_its_types() -> None:
    check_publisher("user.deleted", "auth", {})
    check_publisher("task.created", "tasks", {})
    check_publisher("user.deleted", "guest", {"auth": "guest"})
    for event_type, publisher, users in [
        ("user.deleted", "tasks", {}),
        ("user.deleted", None, {}),
        ("task.created", "auth", {}),
        ("user.deleted", "auth", {"auth": "guest"}),
    ]:
        with pytest.raises(ForeignPublisher):
            check_publisher(event_type, publisher, users)
