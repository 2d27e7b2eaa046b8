"""Reading versions out of If-Match / If-None-Match headers."""

from __future__ import annotations

import pytest
from tasks_service.api.dependencies import etag, etag_versions


def test_etag_is_the_quoted_version() -> None:
    assert etag(7) == '"7"'


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        ('"3"', {3}),
        ('W/"3"', {3}),
        ('"1", "2"', {1, 2}),
        ('"abc"', set()),
        ("3", {3}),
        ('"-1"', set()),
    ],
)
def test_if_match_names_versions(header: str, versions: set[int]) -> None:
    assert etag_versions(header) == versions


@pytest.mark.parametrize("header", [None, "*", " * "])
def test_no_header_or_star_accepts_any_version(header: str | None) -> None:
    assert etag_versions(header) is None
