"""An SRE finds a request's trace in Jaeger's web UI: search service `gateway`, open the
trace, see the spans of gateway, tasks and analytics. Headless Chromium, as a person would.

Set TASKMESH_SCREENSHOTS=<folder> to keep the trace page's screenshot (docs/ holds one)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import httpx
from browser import open_page


async def _services_in_trace(jaeger: httpx.AsyncClient, trace_id: str) -> set[str]:
    response = await jaeger.get(f"/api/traces/{trace_id}")
    if response.status_code != 200:
        return set()
    data: list[dict[str, Any]] = response.json()["data"]
    if not data:
        return set()
    names = {pid: p["serviceName"] for pid, p in data[0]["processes"].items()}
    operations = {span["operationName"] for span in data[0]["spans"]}
    found = {names[span["processID"]] for span in data[0]["spans"]}
    return found if "task.completed process" in operations else set()


async def test_the_jaeger_ui_shows_a_request_from_gateway_to_analytics(
    api, suite, poll, tmp_path: Path
):
    user = await api.new_user()
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    created = await api.client.post(
        "/api/v1/tasks",
        json={"title": "find me in Jaeger"},
        headers=user.headers | {"traceparent": traceparent},
    )
    assert created.status_code == 201
    done = await api.client.patch(
        f"/api/v1/tasks/{created.json()['id']}",
        json={"status": "done"},
        headers=user.headers | {"traceparent": traceparent},
    )
    assert done.status_code == 200
    jaeger_url = suite.tracing.jaeger_url
    async with httpx.AsyncClient(base_url=jaeger_url, timeout=10) as jaeger:
        # The processes export in batches: wait until the consumer's spans are in Jaeger.
        await poll(
            lambda: _services_in_trace(jaeger, trace_id),
            lambda found: {"gateway", "tasks", "analytics"} <= found,
            timeout=30,
        )

    async with open_page() as page:
        # What the UI's search form submits for service "gateway".
        await page.goto(f"{jaeger_url}/search?service=gateway&lookback=1h&limit=100")
        link = f"document.querySelector('a[href*=\"/trace/{trace_id}\"]')"
        await page.wait_for(f"!!{link}")
        await page.evaluate(f"{link}.click()")
        await page.wait_for(f"location.pathname.endsWith('/trace/{trace_id}')")
        shown = await page.wait_for(
            "(() => { const t = document.body.innerText;"
            " return ['gateway', 'tasks', 'analytics', 'task.completed process']"
            ".every(w => t.includes(w)) && t; })()"
        )
        shot = tmp_path / "jaeger-trace.png"
        await page.screenshot(shot)

    assert "POST /api/v1/tasks" in shown
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    if keep := os.environ.get("TASKMESH_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "jaeger-trace.png")
        (Path(keep) / "jaeger-trace.json").write_text(json.dumps({"trace_id": trace_id}))
