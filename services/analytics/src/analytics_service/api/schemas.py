"""Response bodies of the analytics API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from analytics_service.domain.statistics import DayCount, Summary

__all__ = ["DayOut", "OverviewOut", "SummaryOut", "TimelineOut"]


class SummaryOut(BaseModel):
    total: int = Field(description="live tasks (deleted ones are not counted)")
    by_status: dict[str, int] = Field(description="every status, zeros included")
    by_priority: dict[str, int] = Field(description="every priority, zeros included")
    completed: int = Field(description="tasks done now (a reopened task is not)")
    completion_rate: float = Field(description="completed / total, 0 without tasks")
    avg_completion_seconds: float | None = Field(
        description="mean of completed_at - created_at over completed tasks"
    )
    overdue: int = Field(description="not done and due_date before now")
    updated_at: datetime | None = Field(description="time of the last change counted")

    @classmethod
    def of(cls, summary: Summary) -> SummaryOut:
        return cls.model_validate(summary, from_attributes=True)


class DayOut(BaseModel):
    date: date
    created: int = Field(description="live tasks created that UTC day")
    completed: int = Field(description="live tasks completed that UTC day and still done")

    @classmethod
    def many(cls, days: list[DayCount]) -> list[DayOut]:
        return [cls(date=d.date, created=d.created, completed=d.completed) for d in days]


class TimelineOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    buckets: list[DayOut] = Field(description="one per day from `from` to `to`, inclusive")


class OverviewOut(BaseModel):
    totals: SummaryOut = Field(description="the summary over every user's live tasks")
    users_with_tasks: int = Field(description="users with at least one live task")
    active_users: int = Field(
        description="users with a live task or any task change in the last 30 days"
    )
    last_30_days: list[DayOut] = Field(description="created/completed per UTC day, up to today")
