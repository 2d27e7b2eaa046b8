"""The browser session through the gateway: the refresh token only in an HttpOnly cookie
scoped to /api/v1/auth/session, rotated on every refresh, and refused to other origins.

An attacker's page can make a victim's browser send the cookie (it is sent on its own), so
each session route must refuse what did not come from the console itself; bearer clients
must see nothing of any of this.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

SESSION = "/api/v1/auth/session"
PASSWORD = "a browser password"
OURS = {"X-Taskmesh-Client": "console"}


def _cookie(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The refresh cookie's value and its attributes, from the raw Set-Cookie."""
    raw = response.headers.get_list("set-cookie")
    assert len(raw) == 1, raw
    parsed = SimpleCookie()
    parsed.load(raw[0])
    morsel = parsed["taskmesh_refresh"]
    flags = {k: str(v) for k, v in morsel.items() if v}
    flags["httponly"] = str("httponly" in raw[0].lower())
    flags["secure"] = str("secure" in raw[0].lower())
    return morsel.value, flags


def _with(cookie: str, **extra: str) -> dict[str, str]:
    return {**OURS, "Cookie": f"taskmesh_refresh={cookie}", **extra}


async def _session(api: Any) -> tuple[dict[str, Any], str]:
    registered = await api.register(password=PASSWORD)
    response = await api.client.post(
        f"{SESSION}/login",
        json={"email": registered["email"], "password": PASSWORD},
        headers=OURS,
    )
    assert response.status_code == 200, response.text
    return response.json(), _cookie(response)[0]


async def test_the_refresh_token_is_only_in_a_strict_httponly_cookie(api: Any) -> None:
    registered = await api.register(password=PASSWORD)
    response = await api.client.post(
        f"{SESSION}/login", json={"email": registered["email"], "password": PASSWORD}, headers=OURS
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert response.headers["cache-control"] == "no-store"
    value, flags = _cookie(response)
    assert len(value) >= 32
    assert flags["path"] == SESSION
    assert flags["samesite"].lower() == "strict"
    assert flags["httponly"] == flags["secure"] == "True"
    me = await api.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["email"] == registered["email"]


async def test_refresh_rotates_the_cookie_and_a_replayed_one_ends_the_session(
    api: Any, problem: Any
) -> None:
    _, first = await _session(api)
    refreshed = await api.client.post(f"{SESSION}/refresh", headers=_with(first))
    assert refreshed.status_code == 200, refreshed.text
    second, _ = _cookie(refreshed)
    assert second != first
    token = refreshed.json()["access_token"]
    me = await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200

    # A stolen copy of the first cookie comes back: the whole login is revoked.
    replayed = await api.client.post(f"{SESSION}/refresh", headers=_with(first))
    problem(replayed, 401)
    assert _cookie(replayed)[1]["max-age"] == "0"  # and the browser drops it
    problem(await api.client.post(f"{SESSION}/refresh", headers=_with(second)), 401)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no console header: a plain cross-site form post
        {**OURS, "Origin": "https://evil.example"},
        # Same site, another port: SameSite alone lets this one's cookies through.
        {**OURS, "Origin": "http://127.0.0.1:1"},
        {**OURS, "Sec-Fetch-Site": "cross-site"},
        {**OURS, "Sec-Fetch-Site": "same-site"},
    ],
    ids=["no-client-header", "foreign-origin", "other-port", "cross-site", "same-site"],
)
async def test_session_requests_from_another_origin_are_refused(
    api: Any, problem: Any, headers: dict[str, str]
) -> None:
    _, cookie = await _session(api)
    forged = {k: v for k, v in _with(cookie).items() if k not in OURS} | headers
    for action in ("refresh", "logout"):
        refused = await api.client.post(f"{SESSION}/{action}", headers=forged)
        problem(refused, 403)
        assert "set-cookie" not in refused.headers
    # Nothing was spent or revoked: the console itself still refreshes with that cookie.
    own = await api.client.post(
        f"{SESSION}/refresh", headers=_with(cookie, Origin=api.suite.gateway_url)
    )
    assert own.status_code == 200, own.text


async def test_logout_revokes_the_cookie_even_with_no_access_token(api: Any, problem: Any) -> None:
    _, cookie = await _session(api)
    out = await api.client.post(f"{SESSION}/logout", headers=_with(cookie))
    assert out.status_code == 204
    assert _cookie(out)[1]["max-age"] == "0"
    problem(await api.client.post(f"{SESSION}/refresh", headers=_with(cookie)), 401)


async def test_bearer_clients_get_no_cookie_and_cross_origin_pages_cannot_send_the_header(
    api: Any,
) -> None:
    registered = await api.register(password=PASSWORD)
    login = await api.client.post(
        "/api/v1/auth/login", json={"email": registered["email"], "password": PASSWORD}
    )
    assert login.status_code == 200
    assert "refresh_token" in login.json()
    assert "set-cookie" not in login.headers
    # A page on an origin the gateway allows for CORS may still not add the console's
    # header: the preflight does not grant it.
    preflight = await api.client.options(
        f"{SESSION}/refresh",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-taskmesh-client",
        },
    )
    granted = preflight.headers.get("access-control-allow-headers", "").lower()
    assert "x-taskmesh-client" not in granted
    assert preflight.headers.get("access-control-allow-credentials") != "true"


async def test_logging_in_again_ends_the_session_of_the_cookie_it_replaces(
    api: Any, problem: Any
) -> None:
    registered = await api.register(password=PASSWORD)
    credentials = {"email": registered["email"], "password": PASSWORD}
    first = await api.client.post(f"{SESSION}/login", json=credentials, headers=OURS)
    old, _ = _cookie(first)
    again = await api.client.post(f"{SESSION}/login", json=credentials, headers=_with(old))
    assert again.status_code == 200
    problem(await api.client.post(f"{SESSION}/refresh", headers=_with(old)), 401)
    new, _ = _cookie(again)
    assert (await api.client.post(f"{SESSION}/refresh", headers=_with(new))).status_code == 200
