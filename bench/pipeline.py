"""The event pipeline seen from outside: the services' lag histograms (the relay's publish
lag, analytics' consume lag), their counters, and the statistics a user reads.

Nothing here consumes the events themselves: a second queue bound to every event would double
the broker's deliveries and take CPU from the pipeline it measures."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Iterator, Mapping

import httpx

__all__ = [
    "CONSUME_LAG",
    "PUBLISH_LAG",
    "counter_by_label",
    "histogram_buckets",
    "histogram_percentile",
    "mongo_commands",
    "percentile",
    "processed_count",
    "samples",
    "scrape",
    "summaries_total",
    "wait_for_processed",
]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)\{(?P<labels>[^}]*)\}\s+(?P<n>\S+)$")
_LABEL = re.compile(r'(?P<name>\w+)="(?P<value>[^"]*)"')


def samples(metrics_text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """The labels and value of each sample of ``name`` in Prometheus' text format."""
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if match is not None and match["name"] == name:
            labels = {m["name"]: m["value"] for m in _LABEL.finditer(match["labels"])}
            yield labels, float(match["n"])


# Write -> broker confirmed (the relay, in tasks) and write -> applied (analytics' consumers).
PUBLISH_LAG = "events_publish_lag_seconds"
CONSUME_LAG = "events_consume_lag_seconds"


def histogram_buckets(metrics_text: str, name: str = CONSUME_LAG) -> dict[float, float]:
    """Cumulative counts per upper bound of the histogram ``name``, all its series summed."""
    buckets: dict[float, float] = {}
    for labels, n in samples(metrics_text, f"{name}_bucket"):
        if "le" in labels:
            bound = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + n
    return buckets


def histogram_percentile(
    before: dict[float, float], after: dict[float, float], q: float
) -> float | None:
    """Percentile of the observations made between two scrapes, interpolated in its bucket
    (as PromQL's histogram_quantile does)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    target = q / 100 * counts[-1]
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= target:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            share = (target - below) / inside if inside else 1.0
            return round(lower + (bound - lower) * share, 3)
        lower, below = bound, cumulative
    return lower


def counter_by_label(metrics_text: str, name: str, label: str) -> dict[str, float]:
    """A counter's values summed by one label, e.g. ``outbox_relay_seconds_total`` by step."""
    out: dict[str, float] = {}
    for labels, n in samples(metrics_text, name):
        if label in labels:
            out[labels[label]] = out.get(labels[label], 0.0) + n
    return out


def mongo_commands(metrics_text: str) -> dict[str, float]:
    """``mongo_commands_total`` as ``{"<command> <collection>": count}``."""
    out: dict[str, float] = {}
    for labels, n in samples(metrics_text, "mongo_commands_total"):
        key = f"{labels.get('command', '')} {labels.get('collection', '')}".strip()
        out[key] = out.get(key, 0.0) + n
    return out


async def scrape(url: str) -> str:
    """A service's Prometheus metrics, as text; `url` is its internal listener's."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/metrics")
        response.raise_for_status()
        return response.text


def processed_count(metrics_text: str) -> float:
    """Messages analytics' consumers applied (``events_consumed_total``, outcome processed)."""
    return counter_by_label(metrics_text, "events_consumed_total", "outcome").get("processed", 0)


async def wait_for_processed(
    analytics_internal_url: str,
    *,
    since: float,
    expected: int,
    stall_seconds: float,
    max_seconds: float,
) -> tuple[int, float]:
    """Poll analytics' metrics until it applied ``expected`` events more than ``since`` (or
    the count stops moving). One cheap scrape a poll: reading every writer's summary this
    often would load the service being measured.

    Returns the count and the monotonic time it was first seen.
    """
    began = time.monotonic()
    last, last_change = -1, began
    async with httpx.AsyncClient(base_url=analytics_internal_url, timeout=10) as client:
        while True:
            response = await client.get("/metrics")
            response.raise_for_status()
            count = int(processed_count(response.text) - since)
            now = time.monotonic()
            if count != last:
                last, last_change = count, now
            if count >= expected:
                return count, last_change
            if now - last_change > stall_seconds or now - began > max_seconds:
                return last, last_change
            await asyncio.sleep(0.1)


async def summaries_total(analytics_url: str, tokens: list[str]) -> int:
    """The tasks the users' statistics count, summed: what a user would see."""
    total = 0
    async with httpx.AsyncClient(base_url=analytics_url, timeout=10) as client:
        for token in tokens:
            response = await client.get(
                "/api/v1/analytics/summary", headers={"Authorization": f"Bearer {token}"}
            )
            response.raise_for_status()
            total += int(response.json()["total"])
    return total


def cpu_per_event(
    before: Mapping[str, float | None], after: Mapping[str, float | None], events: int, cores: int
) -> dict[str, float | None]:
    """Milliseconds of CPU each process spent per event between two readings, their sum
    (``all``: over the processes read both times) and ``ceiling_events_per_s``, the rate at
    which that sum keeps ``cores`` cores busy: what the pipeline could reach on this machine
    if nothing waited, with everything else (the load generator) stopped."""
    out: dict[str, float | None] = {}
    total = 0.0
    for name, first in before.items():
        last = after.get(name)
        if first is None or last is None or events <= 0:
            out[name] = None
            continue
        used = (last - first) * 1000 / events
        out[name] = round(used, 2)
        total += used
    out["all"] = round(total, 2) if events > 0 else None
    out["ceiling_events_per_s"] = round(cores * 1000 / total) if total > 0 else None
    return out
