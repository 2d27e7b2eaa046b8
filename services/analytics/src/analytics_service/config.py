"""Settings of the analytics service (environment variables TASKMESH_*)."""

from __future__ import annotations

from taskmesh_common.settings import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "analytics"
    port: int = 8003
    internal_port: int = 9003
    mongo_db: str = "analytics"
    # Seconds a cached summary may live in Redis; 0 turns the cache off. Handlers invalidate
    # it on every change, so this only bounds how late `overdue` notices a due date passing.
    summary_cache_seconds: float = 30.0
    # The consumer's queue, after `queue_prefix`.
    events_queue: str = "analytics.events"
    # Messages in flight at once. Events of one user in flight together are written as one
    # batch (three round trips to the database whatever its size), so a deeper prefetch
    # makes larger batches when events come fast.
    consumer_prefetch: int = 256
