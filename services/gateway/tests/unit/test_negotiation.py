"""Which requests skip CORS and gzip, and the Vary header they get instead."""

from __future__ import annotations

import pytest
from gateway_service.api.negotiation import _negotiates, _vary


@pytest.mark.parametrize(
    ("headers", "negotiates"),
    [
        ([(b"authorization", b"Bearer x")], False),
        ([(b"accept-encoding", b"identity")], False),
        ([(b"accept-encoding", b"br, deflate")], False),
        ([(b"accept-encoding", b"deflate, GZIP;q=0.5")], True),
        ([(b"origin", b"https://app.example.com")], True),
    ],
)
def test_only_browsers_and_gzip_clients_negotiate(
    headers: list[tuple[bytes, bytes]], negotiates: bool
) -> None:
    assert _negotiates({"type": "http", "headers": headers}) is negotiates


def test_vary_is_added_once_and_merged_with_the_upstreams() -> None:
    assert _vary([(b"content-type", b"application/json")]) == [
        (b"content-type", b"application/json"),
        (b"vary", b"Origin, Accept-Encoding"),
    ]
    assert _vary([(b"Vary", b"Authorization, origin")]) == [
        (b"Vary", b"Authorization, origin"),
        (b"vary", b"Accept-Encoding"),
    ]
    both = [(b"vary", b"Accept-Encoding"), (b"vary", b"Origin")]
    assert _vary(both) == both
    assert _vary([(b"vary", b"*")]) == [(b"vary", b"*")]
