"""Request and response bodies of the tasks API.

Request models forbid unknown fields, so a `$set` or `a.b` key is a 422; strings
accept only strings (pydantic v2 never coerces), so `{"$gt": ""}` where a title belongs
is a 422; dates accept only ISO 8601 strings, not numbers. All before MongoDB is reached.
(Not `strict=True` on the model: FastAPI validates the decoded JSON in Python mode, where
strict would refuse every enum and date given as a string.)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from tasks_service.domain.listing import DEFAULT_LIMIT, MAX_LIMIT, SortOrder
from tasks_service.domain.model import (
    MAX_DESCRIPTION,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TITLE,
    Priority,
    Status,
    Task,
)

__all__ = ["ListParams", "TaskCreate", "TaskOut", "TaskPage", "TaskPatch"]

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_8601_text(value: Any) -> Any:
    if not isinstance(value, str):
        # Lax pydantic would read a number as a Unix timestamp: refuse the wrong type.
        raise ValueError("expected an ISO 8601 date or date-time string")
    # A calendar date is what people usually mean by "due"; read it as midnight UTC.
    if _DATE_ONLY.match(value):
        return f"{value}T00:00:00Z"
    return value


When = Annotated[datetime, BeforeValidator(_iso_8601_text)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_LENGTH)
]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]

_REQUEST = ConfigDict(extra="forbid")


class TaskCreate(BaseModel):
    model_config = _REQUEST

    title: Title
    description: Description = ""
    priority: Priority = Priority.MEDIUM
    due_date: When | None = None
    tags: Tags = Field(default_factory=list)


class TaskPatch(BaseModel):
    """Fields absent are left alone; `due_date: null` clears the due date."""

    model_config = _REQUEST

    title: Title | None = None
    description: Description | None = None
    status: Status | None = None
    priority: Priority | None = None
    due_date: When | None = None
    tags: Tags | None = None

    @model_validator(mode="after")
    def _only_due_date_may_be_null(self) -> Self:
        nulled = [
            name
            for name in self.model_fields_set
            if name != "due_date" and getattr(self, name) is None
        ]
        if nulled:
            raise ValueError(f"may not be null: {', '.join(sorted(nulled))}")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class ListParams(BaseModel):
    """Query parameters of GET /api/v1/tasks; an unknown parameter is a 422, not ignored."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    priority: Priority | None = None
    tag: Tag | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)] | None = None
    due_before: When | None = None
    due_after: When | None = None
    sort: SortOrder = SortOrder.NEWEST_FIRST
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    owner_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="admins only: list another user's tasks"
    )


class TaskOut(BaseModel):
    id: str
    owner_id: str
    title: str
    description: str
    status: Status
    priority: Priority
    due_date: datetime | None
    tags: list[str]
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_task(cls, task: Task) -> TaskOut:
        return cls(
            id=task.id,
            owner_id=task.owner_id,
            title=task.title,
            description=task.description,
            status=task.status,
            priority=task.priority,
            due_date=task.due_date,
            tags=list(task.tags),
            version=task.version,
            created_at=task.created_at,
            updated_at=task.updated_at,
            completed_at=task.completed_at,
        )


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )
