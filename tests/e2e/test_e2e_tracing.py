"""One user action is one trace in Jaeger, from the gateway to the analytics consumer."""

from __future__ import annotations

import secrets
from typing import Any

import httpx


def _traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


async def _trace(jaeger: httpx.AsyncClient, trace_id: str) -> dict[str, Any]:
    response = await jaeger.get(f"/api/traces/{trace_id}")
    if response.status_code == 404:
        return {"spans": [], "processes": {}}
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 1, f"{len(data)} traces for one id"
    trace: dict[str, Any] = data[0]
    return trace


def _services(trace: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    names = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    by_service: dict[str, list[dict[str, Any]]] = {}
    for span in trace["spans"]:
        by_service.setdefault(names[span["processID"]], []).append(span)
    return by_service


def _orphans(trace: dict[str, Any], client_spans: list[str]) -> list[str]:
    """Spans whose parent is neither in the trace nor the client's: detached, or (while
    the processes' batch exporters have not sent everything yet) parents still to come."""
    ids = {span["spanID"] for span in trace["spans"]} | set(client_spans)
    return [
        span["operationName"]
        for span in trace["spans"]
        if not any(ref["spanID"] in ids for ref in span.get("references", []))
    ]


def _complete(trace: dict[str, Any], client_spans: list[str]) -> bool:
    spans = _services(trace)
    names = {span["operationName"] for span in trace["spans"]}
    return (
        {"gateway", "tasks", "analytics"} <= set(spans)
        and "task.completed process" in {s["operationName"] for s in spans.get("analytics", [])}
        and {"task.created publish", "task.completed publish"} <= names
        and not _orphans(trace, client_spans)
    )


async def test_a_client_trace_runs_through_gateway_tasks_mongo_publish_and_analytics(
    api, suite, poll
):
    user = await api.new_user()
    trace_id = secrets.token_hex(16)
    client_spans = [secrets.token_hex(8), secrets.token_hex(8)]
    created = await api.client.post(
        "/api/v1/tasks",
        json={"title": "traced"},
        headers=user.headers | {"traceparent": _traceparent(trace_id, client_spans[0])},
    )
    assert created.status_code == 201
    done = await api.client.patch(
        f"/api/v1/tasks/{created.json()['id']}",
        json={"status": "done"},
        headers=user.headers | {"traceparent": _traceparent(trace_id, client_spans[1])},
    )
    assert done.status_code == 200

    async with httpx.AsyncClient(base_url=suite.tracing.jaeger_url, timeout=10) as jaeger:
        # Each process exports its spans in batches of its own: wait until all have arrived.
        trace = await poll(
            lambda: _trace(jaeger, trace_id), lambda t: _complete(t, client_spans), timeout=20
        )
        services = (await jaeger.get("/api/services")).json()["data"]

    spans = trace["spans"]
    assert all(span["traceID"].rjust(32, "0") == trace_id for span in spans)
    by_service = _services(trace)
    assert any(_tags(s).get("db.system") == "mongodb" for s in by_service["tasks"]), [
        s["operationName"] for s in by_service["tasks"]
    ]
    # The gateway's server spans are named by the route template, though no router saw them.
    served_by_gateway = {
        s["operationName"] for s in by_service["gateway"] if _tags(s).get("span.kind") == "server"
    }
    assert served_by_gateway == {"POST /api/v1/tasks", "PATCH /api/v1/tasks/{path}"}
    # Each call from the gateway to tasks is a client span, and tasks' server spans hang
    # off it: the gateway put its own context in place of the client's traceparent.
    calls = {
        s["spanID"]: _tags(s)
        for s in by_service["gateway"]
        if _tags(s).get("span.kind") == "client" and _tags(s).get("taskmesh.upstream") == "tasks"
    }
    assert sorted(tags["http.request.method"] for tags in calls.values()) == ["PATCH", "POST"]
    assert sorted(tags["http.response.status_code"] for tags in calls.values()) == [200, 201]
    served = [s for s in by_service["tasks"] if _tags(s).get("span.kind") == "server"]
    assert len(served) == 2
    assert all(any(r["spanID"] in calls for r in s.get("references", [])) for s in served)
    # The gateway's rate-limit script in Redis is part of the same trace.
    assert any(_tags(s).get("db.system") == "redis" for s in by_service["gateway"])
    # One connected trace: every span hangs off another of this trace, or off the client.
    orphans = _orphans(trace, client_spans)
    assert orphans == [], f"spans detached from the client's trace: {orphans}"
    assert {"gateway", "auth", "tasks", "analytics"} <= set(services), services
