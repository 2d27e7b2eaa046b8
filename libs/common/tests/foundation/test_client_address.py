"""Which X-Forwarded-For entry is the client: pure rules of taskmesh_common.client_address."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from taskmesh_common.client_address import TrustedProxies
from taskmesh_common.settings import ServiceSettings

GATEWAY = TrustedProxies(["10.0.0.0/8"])


def test_forwarded_for_is_ignored_unless_the_peer_is_trusted() -> None:
    assert TrustedProxies([]).client("10.0.0.9", ["1.2.3.4"]) == "10.0.0.9"
    assert GATEWAY.client("192.0.2.7", ["1.2.3.4"]) == "192.0.2.7"


def test_the_right_most_untrusted_entry_is_the_client() -> None:
    # The client wrote "6.6.6.6" itself; the trusted proxy appended the address it saw.
    assert GATEWAY.client("10.0.0.9", ["6.6.6.6, 1.2.3.4"]) == "1.2.3.4"
    # Entries our own proxies appended are skipped, however many hops there were.
    assert GATEWAY.client("10.0.0.9", ["6.6.6.6, 1.2.3.4, 10.1.1.1", "10.2.2.2"]) == "1.2.3.4"
    assert GATEWAY.client("10.0.0.9", ["2001:db8::1"]) == "2001:db8::1"


def test_nothing_usable_leaves_the_last_trusted_address() -> None:
    assert GATEWAY.client("10.0.0.9", ["not-an-ip"]) == "10.0.0.9"
    assert GATEWAY.client("10.0.0.9", []) == "10.0.0.9"
    assert GATEWAY.client("10.0.0.9", ["6.6.6.6, garbage, 10.1.1.1"]) == "10.1.1.1"
    # Every entry trusted: the client sits inside a trusted network; the left-most is it.
    assert GATEWAY.client("10.0.0.9", ["10.3.3.3, 10.1.1.1"]) == "10.3.3.3"


def test_the_setting_takes_comma_separated_cidrs_and_refuses_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASKMESH_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    assert ServiceSettings().trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    monkeypatch.setenv("TASKMESH_TRUSTED_PROXIES", "10.0.0.0/8,ingress")
    with pytest.raises(ValidationError, match="ingress"):
        ServiceSettings()
    monkeypatch.delenv("TASKMESH_TRUSTED_PROXIES")
    assert ServiceSettings().trusted_proxies == ()
