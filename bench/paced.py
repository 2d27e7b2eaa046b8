"""Writes at a fixed pace (open loop), for the pipeline's lag at a load it can sustain.

wrk sends the next request when the last one answered (closed loop): it measures how fast
writes can go, and a pipeline behind writes at full speed only shows how its backlog grows.
Here request ``i`` leaves at ``start + i / rate`` whatever the earlier ones are doing, so
the server meets the same offered load however it fares, and latency includes queueing.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from bench.pipeline import percentile

__all__ = ["paced_posts"]


async def paced_posts(
    url: str,
    tokens: list[str],
    body: dict[str, Any],
    *,
    rate: float,
    seconds: float,
    max_in_flight: int = 256,
) -> dict[str, Any]:
    """POST ``body`` to ``url`` ``rate`` times a second for ``seconds``, the users'
    ``tokens`` in turn; at most ``max_in_flight`` at once (later ones wait their turn)."""
    count = max(1, round(rate * seconds))
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Semaphore(max_in_flight)
    loop = asyncio.get_running_loop()
    payload = json.dumps(body).encode()
    # aiohttp, as the gateway's upstream client: httpx's pool spent ~7 ms of CPU a request
    # here at 190 offered a second and fell behind by itself, with the services half idle.
    # No Accept-Encoding, as wrk sends none: a gzipped answer would cost the gateway more.
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, skip_auto_headers=("Accept-Encoding",)
    ) as session:

        async def one(i: int) -> None:
            nonlocal errors
            async with slots:
                sent = time.perf_counter()
                headers = {
                    "Authorization": f"Bearer {tokens[i % len(tokens)]}",
                    "Content-Type": "application/json",
                }
                try:
                    async with session.post(url, data=payload, headers=headers) as response:
                        await response.read()
                        failed = response.status >= 400
                except (aiohttp.ClientError, TimeoutError):
                    failed = True
                latencies.append(time.perf_counter() - sent)
                errors += failed

        start = loop.time()
        pending = []
        for i in range(count):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(i)))
        await asyncio.gather(*pending)
        elapsed = loop.time() - start

    def ms(q: float) -> float | None:
        value = percentile(latencies, q)
        return None if value is None else round(value * 1000, 1)

    return {
        "offered_rps": rate,
        "requests": count,
        "seconds": round(elapsed, 2),
        "rps": round(count / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": ms(50),
        "p99_ms": ms(99),
        "errors": errors,
    }
