"""What the public listener must not give away: an upstream's internal address."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest


def _upstream_hosts(urls: dict[str, str]) -> list[str]:
    return [urlsplit(url).netloc for name, url in urls.items() if name != "gateway"]


def _everything_shown(response: httpx.Response) -> str:
    """The status line, every header and the body, as a client receives them."""
    lines = [f"{response.http_version} {response.status_code} {response.reason_phrase}"]
    lines += [f"{name}: {value}" for name, value in response.headers.multi_items()]
    return "\n".join([*lines, "", response.text])


@pytest.mark.parametrize(
    ("method", "path", "signed_in"),
    [
        ("POST", "/api/v1/auth/login/", False),
        ("GET", "/api/v1/tasks/", True),
        ("GET", "/api/v1/analytics/summary/", True),
    ],
)
async def test_a_trailing_slash_never_shows_an_upstreams_address(
    api, problem, method: str, path: str, signed_in: bool
) -> None:
    user = await api.new_user()
    response = await api.client.request(
        method,
        path,
        json={"email": user.email, "password": user.password} if method == "POST" else None,
        headers=user.headers if signed_in else None,
        follow_redirects=False,
    )
    shown = _everything_shown(response)
    for host in _upstream_hosts(api.suite.urls):
        assert host not in shown, shown
    # Not a redirect to anywhere: the slash-less path is the resource, this one is not.
    assert "location" not in response.headers
    problem(response, 404)


async def test_metrics_and_detailed_readiness_are_only_on_the_internal_ports(api, problem):
    user = await api.new_user()
    for headers in ({}, user.headers):
        public = await api.client.get("/metrics", headers=headers)
        problem(public, 404)
        assert "http_requests_total" not in public.text
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200 and "upstreams" not in ready.json()

    async with httpx.AsyncClient(timeout=15) as inside:
        for name, url in api.suite.running.internal_urls.items():
            metrics = await inside.get(f"{url}/metrics")
            assert metrics.status_code == 200, name
            assert f'service="{name}"' in metrics.text
            detailed = (await inside.get(f"{url}/readyz")).json()
            assert detailed["status"] == "ready", (name, detailed)
        upstreams = (
            await inside.get(f"{api.suite.running.internal_urls['gateway']}/readyz")
        ).json()
        assert upstreams["upstreams"]["tasks"]["state"] == "closed"
