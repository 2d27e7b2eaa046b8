"""Which broker user published a message, and whether it may publish the event's type."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractIncomingMessage
from taskmesh_common.events.errors import ForeignPublisher
from taskmesh_common.events.ownership import check_publisher, message_publisher
from taskmesh_common.events.topology import PUBLISHER_HEADER

EVENTS, REQUEUE = "taskmesh.events", "analytics.events.requeue"


def message(
    user_id: str | None, recorded: str | None = None, exchange: str = EVENTS
) -> AbstractIncomingMessage:
    """What a delivered message shows of its publisher (the fields the check reads)."""
    headers: dict[str, Any] = {PUBLISHER_HEADER: recorded} if recorded is not None else {}
    return cast(
        AbstractIncomingMessage,
        SimpleNamespace(user_id=user_id, headers=headers, exchange=exchange),
    )


def publisher(delivered: AbstractIncomingMessage) -> str | None:
    return message_publisher(delivered, own_user="analytics", own_exchange=REQUEUE)


def test_the_publisher_is_the_user_id_the_broker_checked() -> None:
    assert publisher(message("auth")) == "auth"
    assert publisher(message(None)) is None


def test_a_recorded_publisher_is_believed_only_on_the_consumers_own_copies() -> None:
    # A retry the analytics consumer published itself, back from its retry queue.
    assert publisher(message("analytics", "auth", REQUEUE)) == "auth"
    # Another service claiming a publisher in the header: its own user still counts.
    assert publisher(message("tasks", "auth", REQUEUE)) == "tasks"
    assert publisher(message(None, "auth", REQUEUE)) is None
    # Our own user, but not through our requeue exchange: not one of our copies.
    assert publisher(message("analytics", "auth", EVENTS)) == "analytics"


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
