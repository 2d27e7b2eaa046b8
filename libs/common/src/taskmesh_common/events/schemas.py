"""The data of every event type, versioned (``data_version`` 1).

These models are the contract between producers and consumers: the AsyncAPI document
and the JSON Schemas in ``docs/`` are generated from them. Changing a field here is a
contract change; adding a type means adding it to :data:`EVENT_DATA_MODELS` and to
:data:`EVENT_OWNERS` (the one service allowed to publish it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from taskmesh_common.events.errors import ForeignSource, InvalidEvent, UnknownEventType

if TYPE_CHECKING:
    from taskmesh_common.events.envelope import Envelope

__all__ = [
    "DATA_VERSION",
    "EVENT_DATA_MODELS",
    "EVENT_OWNERS",
    "EventData",
    "TaskDeleted",
    "TaskState",
    "UserDeleted",
    "UserDisabled",
    "UserRegistered",
    "UserRoleChanged",
    "check_source",
    "data_model_for",
    "owner_source",
    "validate_data",
    "validate_event",
]

DATA_VERSION = 1

TaskStatus = Literal["todo", "in_progress", "done"]
TaskPriority = Literal["low", "medium", "high", "urgent"]
UserRole = Literal["user", "admin"]
Id = Annotated[str, Field(min_length=1, max_length=200)]


class EventData(BaseModel):
    """Base of every event's data: unknown fields are refused, so typos fail at the producer."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskState(EventData):
    """The task after the write (task.created, task.updated, task.completed, task.reopened)."""

    task_id: Id
    owner_id: Id
    version: int = Field(ge=1, description="starts at 1, grows by 1 on every write")
    title: str = Field(min_length=1, max_length=200)
    status: TaskStatus
    priority: TaskPriority
    due_date: AwareDatetime | None
    tags: list[Annotated[str, Field(max_length=50)]] = Field(max_length=20)
    created_at: AwareDatetime
    updated_at: AwareDatetime
    completed_at: AwareDatetime | None


class TaskDeleted(EventData):
    """A task was deleted (task.deleted)."""

    task_id: Id
    owner_id: Id
    version: int = Field(ge=1, description="the task's last version + 1")
    deleted_at: AwareDatetime


class UserRegistered(EventData):
    """A user registered (user.registered)."""

    user_id: Id
    email: str = Field(min_length=3, max_length=320)
    display_name: str | None
    role: UserRole
    created_at: AwareDatetime


class UserRoleChanged(EventData):
    """An admin changed a user's role (user.role_changed)."""

    user_id: Id
    role: UserRole
    previous_role: UserRole
    changed_at: AwareDatetime


class UserDisabled(EventData):
    """An admin disabled or re-enabled a user (user.disabled)."""

    user_id: Id
    disabled: bool
    changed_at: AwareDatetime


class UserDeleted(EventData):
    """A user deleted their account; their data goes away everywhere (user.deleted)."""

    user_id: Id
    deleted_at: AwareDatetime


EVENT_DATA_MODELS: dict[str, type[EventData]] = {
    "task.created": TaskState,
    "task.updated": TaskState,
    "task.completed": TaskState,
    "task.reopened": TaskState,
    "task.deleted": TaskDeleted,
    "user.registered": UserRegistered,
    "user.role_changed": UserRoleChanged,
    "user.disabled": UserDisabled,
    "user.deleted": UserDeleted,
}

# The service that owns each event type: the only one whose events of that type consumers
# accept (``source`` ``taskmesh/<service>``). The broker enforces the same split with each
# service's topic permissions (infra/README.md); this is the check behind it.
EVENT_OWNERS: dict[str, str] = {
    "task.created": "tasks",
    "task.updated": "tasks",
    "task.completed": "tasks",
    "task.reopened": "tasks",
    "task.deleted": "tasks",
    "user.registered": "auth",
    "user.role_changed": "auth",
    "user.disabled": "auth",
    "user.deleted": "auth",
}
assert set(EVENT_OWNERS) == set(EVENT_DATA_MODELS), "every event type needs an owner"


def owner_source(event_type: str) -> str:
    """The ``source`` of a genuine event of ``event_type`` (``taskmesh/<owner>``)."""
    try:
        return f"taskmesh/{EVENT_OWNERS[event_type]}"
    except KeyError:
        raise UnknownEventType(event_type) from None


def check_source(envelope: Envelope) -> None:
    """Raise :class:`ForeignSource` unless the envelope comes from the owner of its type."""
    expected = owner_source(envelope.type)
    if envelope.source != expected:
        raise ForeignSource(
            f"{envelope.type} from {envelope.source!r}; only {expected!r} publishes it"
        )


def data_model_for(event_type: str, data_version: int = DATA_VERSION) -> type[EventData]:
    if data_version != DATA_VERSION:
        raise InvalidEvent(f"{event_type}: unsupported data_version {data_version}")
    try:
        return EVENT_DATA_MODELS[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def validate_data(event_type: str, data: Any, data_version: int = DATA_VERSION) -> EventData:
    """The data as its model; a model of another class is re-validated through its fields."""
    model = data_model_for(event_type, data_version)
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump()
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(f"{event_type}: {_summary(exc)}") from exc


def validate_event(envelope: Envelope) -> EventData:
    """The envelope's data validated against the model of its type and data_version."""
    return validate_data(envelope.type, envelope.data, envelope.data_version)


def _summary(exc: ValidationError) -> str:
    # Field and message only: the input could hold personal data.
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<data>'}: {err['msg']}"
        for err in exc.errors()[:10]
    )
