"""Headless Chromium (Debian's package) driven through the DevTools protocol.

Enough of the protocol to use a page as a person would: open a URL, wait until something
shows, click it, type and press keys, read what the page shows, and keep a screenshot; and
what the browser itself reported meanwhile (console messages, CSP violations, exceptions).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

__all__ = ["Page", "chromium", "open_page"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install chromium)")
    return found


class Page:
    """One browser tab, spoken to over its DevTools websocket."""

    def __init__(self, socket: ClientConnection, devtools_port: int) -> None:
        self._socket = socket
        self._devtools_port = devtools_port
        self._ids = itertools.count(1)
        # What the browser reported: `Log.entryAdded` entries and `Runtime.exceptionThrown`.
        self.reports: list[str] = []
        # Events a test waits for (`Fetch.*`: requests it holds), kept until it asks.
        self._events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events arrive in between; this page asks one thing at a time
            message = json.loads(await self._socket.recv())
            self._note(message)
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    @contextlib.asynccontextmanager
    async def new_tab(self, url: str) -> AsyncIterator[Page]:
        """Another tab of the same browser (same cookies, same origin's storage) at ``url``."""
        endpoint = f"http://127.0.0.1:{self._devtools_port}/json/new?{url}"
        request = urllib.request.Request(endpoint, method="PUT")
        with urllib.request.urlopen(request, timeout=10) as answer:
            target = json.load(answer)
        width, height = await self.evaluate("[window.innerWidth, window.innerHeight]")
        async with _attach(
            target["webSocketDebuggerUrl"], self._devtools_port, width, height
        ) as tab:
            yield tab

    async def next_event(self, method: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """The params of the next ``method`` event (``Fetch.requestPaused``...)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self._events:
                if event["method"] == method:
                    self._events.remove(event)
                    params: dict[str, Any] = event["params"]
                    return params
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} within {timeout:.0f} s")
            with contextlib.suppress(TimeoutError):
                self._note(json.loads(await asyncio.wait_for(self._socket.recv(), left)))

    def _note(self, message: dict[str, Any]) -> None:
        params = message.get("params", {})
        if str(message.get("method", "")).startswith("Fetch."):
            self._events.append(message)
        if message.get("method") == "Log.entryAdded":
            entry = params["entry"]
            self.reports.append(f"{entry['level']}: {entry.get('text', '')}")
        elif message.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.reports.append(f"exception: {text}")

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def reload(self) -> None:
        await self.call("Page.reload", ignoreCache=True)

    async def resize(self, width: int, height: int) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    async def click(self, selector: str) -> None:
        """Click the first element matching the CSS selector (failing when there is none)."""
        found = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.scrollIntoView({block: 'center'}); e.focus(); e.click();"
            " return true; })()"
        )
        if not found:
            raise AssertionError(f"nothing to click at {selector}")

    async def click_text(self, text: str, *, within: str = "body") -> None:
        """Click the button (or summary) whose visible text starts with ``text``."""
        found = await self.evaluate(
            f"(() => {{ const root = document.querySelector({json.dumps(within)});"
            " const e = root && [...root.querySelectorAll('button, summary, a')]"
            f".find(b => b.innerText.trim().startsWith({json.dumps(text)}));"
            " if (!e) return false; e.scrollIntoView({block: 'center'}); e.focus(); e.click();"
            " return true; })()"
        )
        if not found:
            raise AssertionError(f"no button {text!r} in {within}")

    async def fill(self, selector: str, text: str) -> None:
        """Type ``text`` into a field as a keyboard would, replacing what it held."""
        await self.click(selector)
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        await self.call("Input.insertText", text=text)

    async def press(self, key: str) -> None:
        """One key press (``Tab``, ``Enter``...) to whatever has the focus."""
        codes = {"Tab": 9, "Enter": 13, "Escape": 27, " ": 32}
        common = {"key": key, "code": key, "windowsVirtualKeyCode": codes.get(key, 0)}
        text = {"Enter": "\r", " ": " "}.get(key)
        down = {**common, **({"text": text} if text else {})}
        await self.call("Input.dispatchKeyEvent", type="keyDown", **down)
        await self.call("Input.dispatchKeyEvent", type="keyUp", **common)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, timeout: float = 60.0) -> Any:
        """Evaluate ``expression`` until it is truthy; its value. The page renders as it
        likes: ``timeout`` is a ceiling for a busy machine, not an expectation."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):  # a page between two documents
                value = await self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                text = await self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(f"never true: {expression}\npage text:\n{text[:2000]}")
            await asyncio.sleep(0.25)

    async def text(self) -> str:
        return str(await self.evaluate("document.body.innerText"))

    async def screenshot(self, path: Path, *, full_page: bool = False) -> None:
        """A PNG of the viewport, or of the whole page's height with ``full_page``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            width, height = await self.evaluate(
                "[document.documentElement.clientWidth, document.documentElement.scrollHeight]"
            )
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }
        shot = await self.call("Page.captureScreenshot", **params)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def _attach(url: str, port: int, width: int, height: int) -> AsyncIterator[Page]:
    async with connect(url, max_size=None) as socket:
        page = Page(socket, port)
        await page.call("Page.enable")
        await page.call("Log.enable")
        await page.call("Runtime.enable")
        await page.resize(width, height)
        yield page


def _devtools_port(profile: Path, browser: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    active = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if browser.poll() is not None:
            raise RuntimeError(f"chromium exited with {browser.returncode} while starting")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(active.read_text().split()[0])
        time.sleep(0.1)
    raise RuntimeError(f"chromium wrote no {active} within {timeout:.0f} s")


@contextlib.asynccontextmanager
async def open_page(width: int = 1440, height: int = 900) -> AsyncIterator[Page]:
    """A headless Chromium of its own (a throwaway profile) and its one tab."""
    with tempfile.TemporaryDirectory(
        prefix="taskmesh-chromium-", ignore_cleanup_errors=True
    ) as profile:
        browser = subprocess.Popen(
            [
                chromium(),
                "--headless=new",
                "--no-sandbox",  # we may be root; the sandbox refuses to run as root
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-allow-origins=*",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = _devtools_port(Path(profile), browser, timeout=60)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with _attach(url, port, width, height) as page:
                yield page
        finally:
            browser.terminate()
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()
