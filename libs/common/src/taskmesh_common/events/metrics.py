"""Prometheus metrics of the events library (module level: one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "EVENTS_CONSUMED",
    "EVENTS_CONSUME_LAG",
    "EVENTS_DEAD_LETTERED",
    "EVENTS_FOREIGN_PUBLISHER",
    "EVENTS_FOREIGN_SOURCE",
    "EVENTS_PUBLISHED",
    "EVENTS_PUBLISH_LAG",
    "EVENTS_UNROUTABLE",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_PENDING",
    "OUTBOX_RELAY_SECONDS",
]

# 1.5 and 2: the pipeline's lag objective is 2 s, so the buckets must tell either side.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 5, 10, 30, 60, 300, 1800)

OUTBOX_PENDING = Gauge(
    "outbox_pending",
    "Outbox entries not yet published (as seen by this replica's relay)",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox entry; 0 when none is pending",
    ["service"],
)
OUTBOX_RELAY_SECONDS = Counter(
    "outbox_relay_seconds",
    "Time the outbox relay spent, by step: scan (finding pending documents), claim "
    "(claiming documents and reading them), publish (with confirms), settle (pulling what "
    "went out, ending the claims); background (its pass beside the publishing loop: "
    "finding what nobody named, the pending gauges)",
    ["service", "step"],
)
EVENTS_PUBLISHED = Counter(
    "events_published_total",
    "Events published and confirmed by the broker",
    ["service", "type"],
)
EVENTS_PUBLISH_LAG = Histogram(
    "events_publish_lag_seconds",
    "Time from the event's occurrence (envelope time) to the broker's confirm of its "
    "publish: how far the outbox runs behind the writes",
    ["service"],
    buckets=LAG_BUCKETS,
)
EVENTS_UNROUTABLE = Counter(
    "events_unroutable_total",
    "Events the broker returned because no queue was bound for their type",
    ["service", "type"],
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Messages settled by a consumer, by outcome (processed, duplicate, retried, dead_lettered)",
    ["service", "queue", "outcome"],
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered_total",
    "Messages a consumer sent to its dead-letter queue",
    ["service", "queue"],
)
EVENTS_FOREIGN_SOURCE = Counter(
    "events_foreign_source_total",
    "Events a consumer dead-lettered because their source is not the service that owns "
    "their type (forged, or published by the wrong service)",
    ["service", "queue", "type"],
)
EVENTS_FOREIGN_PUBLISHER = Counter(
    "events_foreign_publisher_total",
    "Events a consumer dead-lettered because the broker user that published them (the "
    "user_id property the broker checks) is not the owner's of their type",
    ["service", "queue", "type"],
)
EVENTS_CONSUME_LAG = Histogram(
    "events_consume_lag_seconds",
    "Time from the event's occurrence (envelope time) to its consumption",
    ["service", "queue"],
    buckets=LAG_BUCKETS,
)
