"""Pure rules of the auth service: inputs, passwords, tokens, cursors, client addresses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from auth_service.adapters.users import decode_cursor, encode_cursor
from auth_service.api.schemas import LoginRequest, RegisterRequest, UserChange
from auth_service.domain.model import (
    User,
    access_token_claims,
    hash_refresh_token,
    new_refresh_token,
    normalise_email,
)
from auth_service.domain.passwords import Passwords
from pydantic import ValidationError

USER = User(
    id="u1",
    email="ada@example.com",
    display_name=None,
    role="user",
    disabled=False,
    created_at=datetime(2030, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
    password_hash="",
)


def test_registration_normalises_the_email() -> None:
    body = RegisterRequest(email="  Ada.Lovelace@Example.COM ", password="x" * 10)
    assert body.email == "ada.lovelace@example.com"


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "nope", "password": "x" * 10},
        {"email": "a@example.com", "password": "x" * 9},
        {"email": "a@example.com", "password": "x" * 1025},
        {"email": "a@example.com", "password": "x" * 10, "display_name": "  "},
        {"email": "a@example.com", "password": "x" * 10, "display_name": "a\x00b"},
        {"email": "a@example.com", "password": "x" * 10, "is_admin": True},
        {"email": {"$gt": ""}, "password": "x" * 10},
    ],
)
def test_bad_registrations_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate(fields)


def test_login_refuses_operator_objects_in_place_of_strings() -> None:
    with pytest.raises(ValidationError):
        LoginRequest.model_validate({"email": "a@example.com", "password": {"$ne": ""}})


def test_user_change_needs_at_least_one_field_and_a_real_role() -> None:
    assert UserChange(disabled=True).disabled is True
    for fields in ({}, {"role": "root"}, {"disabled": "true"}):
        with pytest.raises(ValidationError):
            UserChange.model_validate(fields)


def test_normalise_email_lower_cases_and_trims() -> None:
    assert normalise_email(" A@B.Example ") == "a@b.example"


def test_refresh_tokens_are_256_bit_and_hashed_deterministically() -> None:
    tokens = {new_refresh_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 43 for t in tokens)
    token = next(iter(tokens))
    assert hash_refresh_token(token) == hash_refresh_token(token) != token
    assert len(hash_refresh_token(token)) == 64


def test_access_token_claims_carry_every_required_claim_and_expire_in_15_minutes() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    claims = access_token_claims(USER, issuer="iss", audience="aud", now=now, session_id="s1")
    assert claims["sub"] == "u1" and claims["role"] == "user" and claims["sid"] == "s1"
    assert claims["iat"] == claims["nbf"] == int(now.timestamp())
    assert claims["exp"] - claims["iat"] == 900
    other = access_token_claims(USER, issuer="i", audience="a", now=now, session_id="s1")
    assert claims["jti"] != other["jti"]


def test_access_token_iat_keeps_milliseconds_for_revocation() -> None:
    # A revocation at .250 must not refuse a token issued at .251 of the same second.
    now = datetime(2030, 1, 1, 0, 0, 0, 251000, tzinfo=UTC)
    claims = access_token_claims(USER, issuer="iss", audience="aud", now=now, session_id="s")
    assert claims["iat"] == now.timestamp() == int(now.timestamp()) + 0.251
    assert claims["nbf"] == int(now.timestamp())


def test_passwords_verify_and_unknown_users_still_cost_a_verification() -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "wrong horse")
    assert not passwords.verify(None, "taskmesh-dummy-password")
    assert not passwords.verify("not a hash", "x")


def test_changed_parameters_ask_for_a_rehash() -> None:
    old = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    new = Passwords(time_cost=2, memory_kib=1024, parallelism=1)
    stored = old.hash("pw")
    assert not old.needs_rehash(stored)
    assert new.needs_rehash(stored)


def test_cursor_round_trips_and_garbage_is_refused() -> None:
    assert decode_cursor(encode_cursor(USER)) == (USER.created_at, USER.id)
    for garbage in ("", "!!!", "bm90IGpzb24", "WzEsMl0"):
        with pytest.raises(ValueError):
            decode_cursor(garbage)
