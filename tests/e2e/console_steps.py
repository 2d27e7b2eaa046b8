"""What a person does in the web console, as steps the browser tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from browser import Page
from taskmesh_local import web_console

__all__ = [
    "assert_accessible",
    "create_task",
    "log_in",
    "register",
    "task_selector",
    "wait_for_text",
]


def task_selector(title: str) -> str:
    """A JS expression: the board's (or list's) card of the task with this title."""
    return (
        "[...document.querySelectorAll('li.task')]"
        f".find(li => li.querySelector('.title').innerText === {json.dumps(title)})"
    )


async def wait_for_text(page: Page, text: str, *, within: str = "body") -> None:
    await page.wait_for(
        f"(document.querySelector({json.dumps(within)}) || {{innerText: ''}})"
        f".innerText.includes({json.dumps(text)})"
    )


async def register(page: Page, email: str, password: str) -> None:
    await page.wait_for("!!document.querySelector('#email')")
    await page.click_text("New here?")
    await page.wait_for("!!document.querySelector('#display_name')")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("form button[type=submit]")
    await page.wait_for("!!document.querySelector('.board')")


async def log_in(page: Page, email: str, password: str) -> None:
    await page.wait_for("!!document.querySelector('#email')")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("form button[type=submit]")
    await page.wait_for("!!document.querySelector('header.top')")


async def create_task(page: Page, title: str, *, priority: str = "medium", tags: str = "") -> None:
    opened = await page.evaluate("document.querySelector('details.new-task').open")
    if not opened:
        await page.click("details.new-task summary")
    await page.fill("#new-title", title)
    await page.evaluate(
        f"(() => {{ const s = document.querySelector('#new-priority');"
        f" s.value = {json.dumps(priority)}; s.dispatchEvent(new Event('change')); }})()"
    )
    if tags:
        await page.fill("#new-tags", tags)
    await page.click("details.new-task button[type=submit]")
    await page.wait_for(f"!!{task_selector(title)}")


async def assert_accessible(page: Page, where: str) -> list[dict[str, Any]]:
    """axe-core (from the console's own lock file) finds nothing serious or critical."""
    axe = web_console.tools_path() / "axe.min.js"
    await page.evaluate(Path(axe).read_text())
    violations: list[dict[str, Any]] = await page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
        "v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))"
    )
    grave = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not grave, f"axe-core at {where}: {json.dumps(grave, indent=1)}"
    return violations
