"""Typed access to what the lifespan put on `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from analytics_service.adapters.cache import SummaryCache
from analytics_service.adapters.queries import StatisticsReader

__all__ = ["Cache", "Reader"]


async def _reader(request: Request) -> StatisticsReader:
    reader: StatisticsReader = request.app.state.reader
    return reader


async def _cache(request: Request) -> SummaryCache | None:
    cache: SummaryCache | None = request.app.state.summary_cache
    return cache


Reader = Annotated[StatisticsReader, Depends(_reader)]
Cache = Annotated[SummaryCache | None, Depends(_cache)]
