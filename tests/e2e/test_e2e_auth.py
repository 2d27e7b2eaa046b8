"""Accounts and tokens through the gateway, as a client and an attacker would try them."""

from __future__ import annotations

import asyncio

import pytest
from taskmesh_common.testing import random_email

PASSWORD = "a long enough password"


async def test_account_life_cycle_from_register_to_logout(api, problem):
    email = random_email("life")
    registered = await api.register(email, PASSWORD)
    assert registered["email"] == email
    assert registered["role"] == "user"
    assert not {"password", "password_hash", "hash"} & set(registered)

    login = await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    tokens = login.json()
    assert tokens["token_type"] == "Bearer"
    assert 0 < tokens["expires_in"] <= 900
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    me = await api.client.get("/api/v1/auth/me", headers=bearer)
    assert me.status_code == 200
    assert me.json()["id"] == registered["id"]

    refreshed = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != tokens["refresh_token"]
    new_bearer = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await api.client.get("/api/v1/auth/me", headers=new_bearer)).status_code == 200

    logout = await api.client.post(
        "/api/v1/auth/logout", json={"refresh_token": second["refresh_token"]}, headers=new_bearer
    )
    assert logout.status_code == 204
    after_logout = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    problem(after_logout, 401)


async def test_spent_refresh_token_is_refused_and_revokes_its_family(api, problem):
    user = await api.new_user()
    first = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert first.status_code == 200
    newer = first.json()["refresh_token"]

    replay = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    problem(replay, 401)
    # The thief may have the newer token: it dies with the family.
    stolen = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": newer})
    problem(stolen, 401)


async def test_same_email_in_other_letter_case_is_a_conflict(api, problem):
    email = random_email("Case")
    await api.register(email.lower(), PASSWORD)
    again = await api.client.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD}
    )
    problem(again, 409)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "short@example.com", "password": "123456789"},
        {"email": "long@example.com", "password": "x" * 1025},
        {"email": {"$gt": ""}, "password": PASSWORD},
        {"email": "ok@example.com", "password": {"$ne": None}},
        {"email": "extra@example.com", "password": PASSWORD, "role": "admin"},
        {"password": PASSWORD},
        ["not", "an", "object"],
    ],
    ids=[
        "malformed-email",
        "password-too-short",
        "password-too-long",
        "operator-as-email",
        "operator-as-password",
        "unknown-field",
        "missing-email",
        "array-body",
    ],
)
async def test_bad_registration_input_is_a_422_problem(api, problem, body):
    response = await api.client.post("/api/v1/auth/register", json=body)
    problem(response, 422)


async def test_login_with_an_operator_object_is_a_422_not_a_login(api, problem):
    user = await api.new_user()
    response = await api.client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": {"$gt": ""}}
    )
    problem(response, 422)


async def test_wrong_password_and_unknown_email_are_the_same_401(api, problem):
    user = await api.new_user()
    wrong = await api.client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "not the password"}
    )
    unknown = await api.client.post(
        "/api/v1/auth/login", json={"email": random_email("nobody"), "password": PASSWORD}
    )
    assert problem(wrong, 401)["detail"] == problem(unknown, 401)["detail"]


async def test_burst_of_wrong_passwords_meets_429_and_then_even_the_right_one_waits(api, problem):
    user = await api.new_user()

    async def attempt(password: str):
        return await api.client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": password}
        )

    burst = await asyncio.gather(*(attempt(f"guess number {i}") for i in range(14)))
    statuses = sorted(r.status_code for r in burst)
    assert set(statuses) == {401, 429}, statuses
    refused = next(r for r in burst if r.status_code == 429)
    problem(refused, 429)
    assert int(refused.headers["Retry-After"]) > 0

    right = await attempt(user.password)
    problem(right, 429)
    assert int(right.headers["Retry-After"]) > 0


async def test_deleted_account_cannot_log_in_or_use_its_tokens(api, problem):
    user = await api.new_user()
    bare = await api.client.delete("/api/v1/auth/me", headers=user.headers)
    problem(bare, 422)  # the password confirms a deletion
    wrong = await api.client.request(
        "DELETE", "/api/v1/auth/me", json={"password": "not the password"}, headers=user.headers
    )
    problem(wrong, 403)
    deleted = await api.client.request(
        "DELETE", "/api/v1/auth/me", json={"password": user.password}, headers=user.headers
    )
    assert deleted.status_code == 204

    login = await api.client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    problem(login, 401)
    problem(await api.client.get("/api/v1/auth/me", headers=user.headers), 401)
    refresh = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    problem(refresh, 401)


async def test_admin_lists_users_and_changes_a_role(api, problem):
    admin = await api.admin()
    user = await api.new_user()

    listed = await api.client.get(
        "/api/v1/auth/users", params={"limit": 100}, headers=admin.headers
    )
    assert listed.status_code == 200
    assert {"items", "next_cursor"} <= set(listed.json())
    assert listed.json()["items"], "the admin at least exists"

    promoted = await api.client.patch(
        f"/api/v1/auth/users/{user.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "admin"
    relogged = await api.login(user.email, user.password)
    me = await api.client.get("/api/v1/auth/me", headers=relogged.headers)
    assert me.json()["role"] == "admin"


async def test_admin_pages_through_every_user_without_repeats(api):
    admin = await api.admin()
    mine = {(await api.register())["id"] for _ in range(3)}
    seen: list[str] = []
    cursor = None
    for _ in range(200):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await api.client.get("/api/v1/auth/users", params=params, headers=admin.headers)
        assert page.status_code == 200, page.text
        seen += [u["id"] for u in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert mine <= set(seen)


async def test_a_plain_user_gets_403_on_admin_operations(api, problem):
    user = await api.new_user()
    other = await api.new_user()
    problem(await api.client.get("/api/v1/auth/users", headers=user.headers), 403)
    change = await api.client.patch(
        f"/api/v1/auth/users/{other.id}", json={"role": "admin"}, headers=user.headers
    )
    problem(change, 403)
