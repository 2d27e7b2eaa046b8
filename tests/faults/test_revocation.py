"""Access ends when it should: a token stops working everywhere right after each way of
ending access (logout, logout everywhere, password change, disable, demotion, deletion).

Each action is answered only once its revocation is recorded, so the check right after the
answer must already be refused: at the gateway, and at tasks and analytics called directly
(as a request that slipped past the gateway would reach them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from faults_client import PASSWORD, assert_problem, eventually, record
from faults_stack import Suite
from taskmesh_common.testing import random_email

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NEW_PASSWORD = "an entirely new passphrase"


@dataclass(frozen=True)
class Session:
    user_id: str
    email: str
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Session:
    answer = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    return Session(me.json()["id"], email, tokens["access_token"], tokens["refresh_token"])


async def new_account(client: httpx.AsyncClient) -> Session:
    email = random_email("revoke")
    registered = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    return await log_in(client, email)


async def admin(suite: Suite, client: httpx.AsyncClient) -> Session:
    env = suite.env
    return await log_in(
        client, env["TASKMESH_BOOTSTRAP_ADMIN_EMAIL"], env["TASKMESH_BOOTSTRAP_ADMIN_PASSWORD"]
    )


def targets(suite: Suite) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    gw, tasks = suite.gateway_url, suite.urls["tasks"]
    return {
        "gateway read": ("GET", f"{gw}/api/v1/tasks", None),
        "gateway analytics": ("GET", f"{gw}/api/v1/analytics/summary", None),
        "gateway write": ("POST", f"{gw}/api/v1/tasks", {"title": "after"}),
        "tasks write, directly": ("POST", f"{tasks}/api/v1/tasks", {"title": "after"}),
        "gateway auth write": ("POST", f"{gw}/api/v1/auth/logout-all", None),
    }


async def assert_cut_off(suite: Suite, session: Session, what: str) -> dict[str, float]:
    """Every target refuses the token (401 problem) on the first try after the action."""
    seen: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name, (method, url, body) in targets(suite).items():
            began = time.monotonic()
            answer = await client.request(method, url, json=body, headers=session.headers)
            assert answer.status_code == 401, (what, name, answer.status_code, answer.text)
            assert_problem(answer, 401)
            seen[name] = round((time.monotonic() - began) * 1000, 1)
    return seen


async def assert_works(suite: Suite, session: Session) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for name, (method, url, _body) in targets(suite).items():
            if method == "GET":
                answer = await client.get(url, headers=session.headers)
                assert answer.status_code == 200, (name, answer.text)


async def test_every_way_of_ending_access_stops_tokens_at_once_everywhere(
    suite: Suite, gateway: httpx.AsyncClient
) -> None:
    outcomes: dict[str, Any] = {}

    # Logout ends that session's tokens; another session of the same user goes on.
    phone = await new_account(gateway)
    laptop = await log_in(gateway, phone.email)
    await assert_works(suite, phone)
    out = await gateway.post(
        "/api/v1/auth/logout", json={"refresh_token": phone.refresh}, headers=phone.headers
    )
    assert out.status_code == 204
    outcomes["logout"] = await assert_cut_off(suite, phone, "logout")
    await assert_works(suite, laptop)

    # Logout everywhere ends every session.
    other = await log_in(gateway, phone.email)
    everywhere = await gateway.post("/api/v1/auth/logout-all", headers=laptop.headers)
    assert everywhere.status_code == 204
    outcomes["logout everywhere"] = await assert_cut_off(suite, laptop, "logout-all")
    await assert_cut_off(suite, other, "logout-all, the other session")

    # A password change ends the other sessions; the caller gets a new one that works.
    user = await new_account(gateway)
    second = await log_in(gateway, user.email)
    changed = await gateway.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=user.headers,
    )
    assert changed.status_code == 200, changed.text
    outcomes["password change"] = await assert_cut_off(suite, second, "password change")
    await assert_cut_off(suite, user, "password change, the caller's old token")
    fresh = changed.json()
    await assert_works(suite, Session(user.user_id, user.email, fresh["access_token"], ""))

    # An admin disables a user.
    boss = await admin(suite, gateway)
    victim = await new_account(gateway)
    disabled = await gateway.patch(
        f"/api/v1/auth/users/{victim.user_id}", json={"disabled": True}, headers=boss.headers
    )
    assert disabled.status_code == 200, disabled.text
    outcomes["disable"] = await assert_cut_off(suite, victim, "disable")

    # Account deletion, and the deleted owner's tasks go.
    leaving = await new_account(gateway)
    created = await gateway.post("/api/v1/tasks", json={"title": "mine"}, headers=leaving.headers)
    assert created.status_code == 201
    deleted = await gateway.request(
        "DELETE", "/api/v1/auth/me", json={"password": PASSWORD}, headers=leaving.headers
    )
    assert deleted.status_code == 204, deleted.text
    outcomes["deletion"] = await assert_cut_off(suite, leaving, "deletion")
    await eventually(
        lambda: gateway.get(
            "/api/v1/tasks", params={"owner_id": leaving.user_id}, headers=boss.headers
        ),
        lambda page: page.status_code == 200 and page.json()["items"] == [],
        timeout=30,
        what="the deleted owner's tasks removed",
    )
    record("revocation", first_refusal_ms=outcomes)


async def test_a_demoted_admin_loses_admin_powers_at_once_in_every_service(
    suite: Suite, gateway: httpx.AsyncClient
) -> None:
    boss = await admin(suite, gateway)
    owner = await new_account(gateway)
    deputy = await new_account(gateway)
    promoted = await gateway.patch(
        f"/api/v1/auth/users/{deputy.user_id}", json={"role": "admin"}, headers=boss.headers
    )
    assert promoted.status_code == 200
    deputy = await log_in(gateway, deputy.email)
    powers = {
        "gateway owner filter": f"{suite.gateway_url}/api/v1/tasks?owner_id={owner.user_id}",
        "tasks owner filter, directly": (
            f"{suite.urls['tasks']}/api/v1/tasks?owner_id={owner.user_id}"
        ),
        "gateway overview": f"{suite.gateway_url}/api/v1/analytics/overview",
        "analytics overview, directly": f"{suite.urls['analytics']}/api/v1/analytics/overview",
        "auth user list, directly": f"{suite.urls['auth']}/api/v1/auth/users",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        for name, url in powers.items():
            answer = await client.get(url, headers=deputy.headers)
            assert answer.status_code == 200, (name, answer.text)

        demoted = await gateway.patch(
            f"/api/v1/auth/users/{deputy.user_id}", json={"role": "user"}, headers=boss.headers
        )
        assert demoted.status_code == 200
        for name, url in powers.items():
            answer = await client.get(url, headers=deputy.headers)
            assert answer.status_code == 401, (name, answer.status_code, answer.text)
            assert_problem(answer, 401)

        # A refresh brings the new role: admin work is now 403, own work goes on.
        refreshed = await gateway.post(
            "/api/v1/auth/refresh", json={"refresh_token": deputy.refresh}
        )
        assert refreshed.status_code == 200, refreshed.text
        now = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        for name, url in powers.items():
            answer = await client.get(url, headers=now)
            assert answer.status_code == 403, (name, answer.status_code, answer.text)
        assert (await gateway.get("/api/v1/tasks", headers=now)).status_code == 200
