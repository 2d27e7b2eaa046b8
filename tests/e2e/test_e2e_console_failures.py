"""The console when part of the suite is away or a limit is reached, in headless Chromium.

Each test starts a second gateway of its own in front of the suite's services: one whose
analytics upstream is a port nothing listens on (503: the statistics say so, the board keeps
working), one with a tiny per-user rate limit (429: the page says when to retry).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from browser import open_page
from console_steps import create_task, log_in, task_selector, wait_for_text
from taskmesh_local import RunningServices, net, start_services

PASSWORD = "a console password"


@contextmanager
def _gateway(suite: Any, **env: str) -> Iterator[RunningServices]:
    """A gateway on the suite's auth and tasks; `env` sets what differs."""
    ports = dict(suite.running.ports)
    ports["gateway"] = net.free_ports(1)[0]
    if env.pop("analytics_away", None):
        ports["analytics"] = net.free_ports(1)[0]  # nothing listens there
    with start_services(suite.env | env, ports=ports, names=("gateway",), timeout=60) as running:
        yield running


async def _user(api: Any) -> str:
    registered = await api.register(password=PASSWORD)
    return str(registered["email"])


async def test_with_analytics_away_the_statistics_say_so_and_the_board_works(
    api: Any, suite: Any, poll: Any
) -> None:
    email = await _user(api)
    with _gateway(suite, analytics_away="1") as gateway:
        async with open_page() as page:
            await page.goto(gateway.gateway_url + "/")
            await log_in(page, email, PASSWORD)
            await wait_for_text(page, "The statistics service is unavailable", within=".stats")
            # The rest of the page keeps working: tasks are made and shown.
            await create_task(page, "still works")
            await page.wait_for(f"!!{task_selector('still works')}")
            notice = await page.evaluate("document.querySelector('.stats .notice').dataset.status")
            assert notice == "503"
            assert not await page.evaluate("!!document.querySelector('.work .notice')")
            # The panel's polling opens the gateway's analytics breaker; its fast 503s say the
            # same, and the board still answers.
            # Breaker states are on the gateway's internal listener.
            inner = gateway.internal_urls["gateway"]
            async with httpx.AsyncClient(base_url=inner, timeout=10) as client:
                await poll(
                    lambda: client.get("/readyz"),
                    lambda r: r.json()["upstreams"]["analytics"]["state"] == "open",
                    timeout=60,
                )
            await page.evaluate("new Promise(r => setTimeout(r, 6000))")  # one more poll
            await wait_for_text(page, "The statistics service is unavailable", within=".stats")
            await create_task(page, "after the breaker opened")


async def test_a_rate_limited_page_says_when_to_retry(api: Any, suite: Any) -> None:
    email = await _user(api)
    with _gateway(suite, TASKMESH_RATE_LIMIT_USER="4/minute") as gateway:
        async with open_page() as page:
            await page.goto(gateway.gateway_url + "/")
            await log_in(page, email, PASSWORD)
            # The page's first loads (account, board, statistics) pass the limit.
            shown = await page.wait_for(
                "(() => { const n = document.querySelector('.notice[data-status=\"429\"]');"
                " return n && n.innerText; })()"
            )
            match = re.search(r"Retry in (\d+) s \(at [0-9:]+", shown)
            assert match, shown
            assert 1 <= int(match.group(1)) <= 60
