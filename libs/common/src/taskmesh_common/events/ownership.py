"""Who may publish each event type: the owner's ``source`` and the owner's broker user.

The envelope's ``source`` is written by the publisher, so any service that may write on the
events exchange could claim another's. The AMQP ``user_id`` property cannot be claimed: the
broker refuses a publish whose ``user_id`` is not the connection's user (only a user tagged
``impersonator`` may set another; none of the services' users is). Every publisher sets it
(``EventPublisher``), and a consumer accepts an event only when it was published by the
broker user of the service that owns its type (``EVENT_OWNERS``; by default the user named
after the service, ``TASKMESH_EVENT_PUBLISHER_USERS`` maps an owner to another).

A consumer moving a message to a retry or dead-letter queue publishes the copy itself, so
the copy's ``user_id`` is the consumer's own user; it records the publisher it had checked
in ``PUBLISHER_HEADER``. That header is believed only on a message whose ``user_id`` is the
consumer's own user and that came through the consumer's own requeue exchange (the retry
queues dead-letter into it): only the consumer's service may publish as that user or write
on that exchange, so no other service can use the header to claim a publisher.
"""

from __future__ import annotations

from collections.abc import Mapping

from aio_pika.abc import AbstractIncomingMessage

from taskmesh_common.events.errors import ForeignPublisher, UnknownEventType
from taskmesh_common.events.schemas import EVENT_OWNERS
from taskmesh_common.events.topology import PUBLISHER_HEADER

__all__ = ["check_publisher", "message_publisher", "publisher_user"]


def message_publisher(
    message: AbstractIncomingMessage, own_user: str, own_exchange: str
) -> str | None:
    """The broker user that published ``message``, as the broker vouches for it; ``None``
    when the publisher set no ``user_id``. ``own_user`` and ``own_exchange``: the consumer's
    broker user and requeue exchange, through which its own copies come back."""
    user_id = message.user_id or None
    if user_id is not None and user_id == own_user and message.exchange == own_exchange:
        recorded = (message.headers or {}).get(PUBLISHER_HEADER)
        if isinstance(recorded, bytes):
            recorded = recorded.decode("utf-8", "replace")
        if isinstance(recorded, str) and recorded:
            return recorded
    return user_id


def publisher_user(event_type: str, publisher_users: Mapping[str, str]) -> str:
    """The broker user whose events of ``event_type`` consumers accept."""
    try:
        owner = EVENT_OWNERS[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None
    return publisher_users.get(owner, owner)


def check_publisher(
    event_type: str, publisher: str | None, publisher_users: Mapping[str, str]
) -> None:
    """Raise :class:`ForeignPublisher` unless ``publisher`` is the owner's broker user."""
    expected = publisher_user(event_type, publisher_users)
    if publisher != expected:
        who = "no user_id" if publisher is None else f"broker user {publisher!r}"
        raise ForeignPublisher(f"{event_type} published with {who}; only {expected!r} publishes it")
