"""Errors of the events library.

Exception
 └── EventError              anything the events library refuses or fails at
      ├── UnknownEventType     no data model is registered for this type
      ├── InvalidEvent         an envelope or its data does not match its schema
      ├── ForeignSource        the event's source is not the service that owns its type
      ├── ForeignPublisher     the broker user that published it is not the owner's
      └── PublishFailed        the broker did not confirm one or more messages
"""

from __future__ import annotations

__all__ = [
    "EventError",
    "ForeignPublisher",
    "ForeignSource",
    "InvalidEvent",
    "PublishFailed",
    "UnknownEventType",
]


class EventError(Exception):
    pass


class UnknownEventType(EventError, KeyError):
    def __str__(self) -> str:
        return f"unknown event type: {self.args[0]!r}"


class InvalidEvent(EventError, ValueError):
    pass


class ForeignSource(EventError):
    """An event claims a type another service owns: a forgery or a misrouted producer."""


class ForeignPublisher(EventError):
    """An event published by a broker user other than its owner's: a forgery whatever its
    ``source`` says (or a publisher that sets no ``user_id``)."""


class PublishFailed(EventError):
    """Raised after every message of a batch was settled, when at least one was not confirmed."""

    def __init__(self, message: str, failures: dict[str, BaseException] | None = None) -> None:
        super().__init__(message)
        # event id -> why the broker did not take it
        self.failures = failures or {}
