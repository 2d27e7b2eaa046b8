"""The analytics API: thin routes over the statistics reader."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from taskmesh_common.openapi import problems
from taskmesh_common.params import only_query_params
from taskmesh_common.security import AdminPrincipal, CurrentPrincipal

from analytics_service.api.dependencies import Cache, Reader
from analytics_service.api.schemas import DayOut, OverviewOut, SummaryOut, TimelineOut
from analytics_service.domain.statistics import check_range

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

DEFAULT_TIMELINE_DAYS = 30


@router.get("/summary", response_model=SummaryOut, dependencies=[Depends(only_query_params())])
async def summary(principal: CurrentPrincipal, reader: Reader, cache: Cache) -> SummaryOut:
    if cache is None:
        return SummaryOut.of(await reader.summary(principal.user_id, datetime.now(UTC)))
    generation, cached = await cache.get(principal.user_id)
    if cached is not None:
        return SummaryOut.of(cached)
    fresh = await reader.summary(principal.user_id, datetime.now(UTC))
    await cache.put(principal.user_id, generation, fresh)
    return SummaryOut.of(fresh)


@router.get(
    "/timeline",
    response_model=TimelineOut,
    dependencies=[Depends(only_query_params("from", "to"))],
)
async def timeline(
    principal: CurrentPrincipal,
    reader: Reader,
    start: Annotated[
        date | None, Query(alias="from", description="first UTC day; default: `to` - 29 days")
    ] = None,
    end: Annotated[
        date | None, Query(alias="to", description="last UTC day; default: today")
    ] = None,
) -> TimelineOut:
    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=DEFAULT_TIMELINE_DAYS - 1)
    check_range(start, end)  # before any query: a bad range costs the database nothing
    days = await reader.timeline(principal.user_id, start, end)
    return TimelineOut(from_=start, to=end, buckets=DayOut.many(days))


@router.get(
    "/overview",
    response_model=OverviewOut,
    dependencies=[Depends(only_query_params())],
    responses=problems(403),
)
async def overview(_admin: AdminPrincipal, reader: Reader) -> OverviewOut:
    result = await reader.overview(datetime.now(UTC))
    return OverviewOut(
        totals=SummaryOut.of(result.totals),
        users_with_tasks=result.users_with_tasks,
        active_users=result.active_users,
        last_30_days=DayOut.many(result.days),
    )
