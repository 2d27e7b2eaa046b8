"""The web console's files at `/` and `/console/`, and nothing when none is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import GatewayFactory

pytestmark = pytest.mark.integration


def _build(folder: Path) -> Path:
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text('<script type="module" src="/console/app-1a2b.js"></script>')
    (folder / "assets" / "app-1a2b.js").write_text("console.log('taskmesh')")
    (folder.parent / "secret.txt").write_text("not to be served")
    return folder


async def test_the_console_is_served_with_its_own_csp(
    gateway: GatewayFactory, tmp_path: Path
) -> None:
    async with gateway(console_dir=_build(tmp_path / "site")) as gw:
        page = await gw.client.get("/")
        asset = await gw.client.get("/console/app-1a2b.js")
        escape = await gw.client.get("/console/../secret.txt")
        encoded = await gw.client.get("/console/%2e%2e/secret.txt")
        api = await gw.client.get("/api/v1/tasks/things")
    assert page.status_code == 200 and "app-1a2b.js" in page.text
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-security-policy"] == csp
    assert escape.status_code == encoded.status_code == 404
    assert "not to be served" not in escape.text + encoded.text
    # The API keeps its own stricter policy (no script at all).
    assert api.headers["content-security-policy"].startswith("default-src 'none'; frame")


async def test_without_a_build_the_root_stays_a_404(
    gateway: GatewayFactory, tmp_path: Path
) -> None:
    async with gateway() as gw:
        unset = await gw.client.get("/")
    async with gateway(console_dir=tmp_path / "never-built") as gw:
        missing = await gw.client.get("/")
    assert unset.status_code == missing.status_code == 404
    assert unset.headers["content-type"].startswith("application/problem+json")
