"""What a breaker counts: failures (5xx, timeouts, connect errors), never overload answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from gateway_service.adapters.upstream import UpstreamClient, UpstreamResponse, create_session
from gateway_service.config import Settings
from gateway_service.domain.errors import UpstreamError
from gateway_service.domain.overload import overload_delay, retry_after_seconds
from gateway_service.domain.routing import breaker_group

Outcome = Callable[[], UpstreamResponse]


def _answer(status: int, *headers: tuple[bytes, bytes]) -> Outcome:
    def outcome() -> UpstreamResponse:
        return UpstreamResponse(status, list(headers), b"{}")

    return outcome


def _raise(exc: BaseException) -> Outcome:
    def outcome() -> UpstreamResponse:
        raise exc

    return outcome


OVERLOAD = _answer(503, (b"Retry-After", b"2"))
OUTCOMES: dict[str, Outcome] = {
    "overload 503 + Retry-After": OVERLOAD,
    "500": _answer(500),
    "503 without Retry-After": _answer(503),
    "timeout": _raise(TimeoutError()),
    "connect error": _raise(aiohttp.ClientOSError(111, "Connection refused")),
}


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    settings = Settings(env="test", breaker_fail_max=3, retry_attempts=0)
    session = create_session(settings)
    yield UpstreamClient(settings, session)
    await session.close()


def _stub(client: UpstreamClient, outcome: Outcome) -> list[str]:
    calls: list[str] = []

    async def exchange(upstream: str, method: str, url: Any, *_: Any) -> UpstreamResponse:
        calls.append(str(url))
        return outcome()

    client._exchange = exchange  # type: ignore[method-assign,assignment]
    return calls


async def _send(client: UpstreamClient, path: str, method: str = "POST") -> int:
    try:
        return (await client.send("auth", method, path, [], b"")).status
    except UpstreamError:
        return 0


async def test_an_overload_answer_is_passed_through_and_never_opens_the_breaker(
    client: UpstreamClient,
) -> None:
    _stub(client, OVERLOAD)
    statuses = [await _send(client, "/api/v1/auth/login") for _ in range(10)]
    assert statuses == [503] * 10
    assert client.breakers["auth-credentials"].details() == {"state": "closed", "failures": 0}


@pytest.mark.parametrize("failure", ["500", "503 without Retry-After", "timeout", "connect error"])
async def test_failures_open_the_breaker_of_their_group_only(
    client: UpstreamClient, failure: str
) -> None:
    calls = _stub(client, OUTCOMES[failure])
    for _ in range(3):
        await _send(client, "/api/v1/auth/login")
    assert client.breakers["auth-credentials"].state == "open"
    assert client.breakers["auth"].state == "closed"
    before = len(calls)
    _stub(client, _answer(200))
    # Refresh is in the other auth group and still goes through; login is refused unsent.
    assert await _send(client, "/api/v1/auth/refresh") == 200
    with pytest.raises(UpstreamError) as refused:
        await client.send("auth", "POST", "/api/v1/auth/login", [], b"")
    assert refused.value.upstream == "auth"
    assert before == len(calls)


async def test_overload_answers_between_failures_do_not_add_up_to_an_open_breaker(
    client: UpstreamClient,
) -> None:
    for outcome in [OUTCOMES["500"], OVERLOAD, OUTCOMES["500"], OVERLOAD, OVERLOAD]:
        _stub(client, outcome)
        await _send(client, "/api/v1/auth/register")
    assert client.breakers["auth-credentials"].state == "closed"


async def test_an_idempotent_request_is_retried_after_a_short_retry_after() -> None:
    settings = Settings(env="test", retry_attempts=1, retry_after_max_seconds=1.0)
    session = create_session(settings)
    client = UpstreamClient(settings, session)
    answers = iter([_answer(503, (b"Retry-After", b"0")), _answer(200)])
    calls: list[str] = []

    async def exchange(upstream: str, method: str, url: Any, *_: Any) -> UpstreamResponse:
        calls.append(method)
        return next(answers)()

    client._exchange = exchange  # type: ignore[method-assign,assignment]
    try:
        got = await client.send("auth", "GET", "/api/v1/auth/me", [], b"")
        # A POST (login) is never retried: the overload answer goes to the client.
        answers = iter([OVERLOAD, _answer(200)])
        login = await client.send("auth", "POST", "/api/v1/auth/login", [], b"")
        # A wait longer than retry_after_max_seconds is the client's, not the gateway's.
        answers = iter([_answer(503, (b"Retry-After", b"5")), _answer(200)])
        long_wait = await client.send("auth", "GET", "/api/v1/auth/me", [], b"")
    finally:
        await session.close()
    assert got.status == 200
    assert login.status == 503
    assert long_wait.status == 503
    assert calls == ["GET", "GET", "POST", "GET"]


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert retry_after_seconds([(b"retry-after", b"3")]) == 3.0
    assert (
        retry_after_seconds([(b"Retry-After", b"Wed, 21 Oct 2015 07:28:05 GMT")], 1445412480) == 5.0
    )
    assert retry_after_seconds([(b"Retry-After", b"soon")]) is None
    assert retry_after_seconds([]) is None
    assert overload_delay(503, [(b"Retry-After", b"1")]) == 1.0
    assert overload_delay(500, [(b"Retry-After", b"1")]) is None
    assert overload_delay(503, []) is None


def test_login_and_register_have_their_own_breaker_group() -> None:
    assert breaker_group("auth", "/api/v1/auth/login") == "auth-credentials"
    assert breaker_group("auth", "/api/v1/auth/register/") == "auth-credentials"
    for path in ("/api/v1/auth/refresh", "/api/v1/auth/me", "/.well-known/jwks.json"):
        assert breaker_group("auth", path) == "auth"
    assert breaker_group("tasks", "/api/v1/tasks/login") == "tasks"
