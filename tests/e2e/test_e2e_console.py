"""A person uses the web console at the gateway's `/` in headless Chromium: registers,
creates three tasks, completes one, sees 1 of 3 done in the statistics, stays logged in
across a reload, loses a race with another edit (412) and reapplies their change, logs out.
axe-core checks the page at 1440 and 375 px, the CSP holds with nothing refused.

Set TASKMESH_SCREENSHOTS=<folder> to keep the screenshots at both widths (docs/images holds
the README's)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
from browser import Page, open_page
from console_steps import (
    assert_accessible,
    create_task,
    log_in,
    register,
    task_selector,
    wait_for_text,
)
from taskmesh_common.testing import random_email

WIDE, NARROW = (1440, 900), (375, 812)
PASSWORD = "a console password"


def task_selector_css(task_id: str) -> str:
    return f'li.task[data-task="{task_id}"]'


async def _raced_edit(page: Page, api: Any, email: str) -> None:
    """The person opens the editor; another client renames the task first."""
    card = task_selector("write the report")
    await page.evaluate(
        f"[...{card}.querySelectorAll('button')].find(b => b.innerText.startsWith('Edit')).click()"
    )
    # The editor takes the keyboard focus, on its first field.
    await page.wait_for("document.activeElement && document.activeElement.id === 'edit-title'")
    other = await api.login(email, PASSWORD)
    tasks = (await api.client.get("/api/v1/tasks", headers=other.headers)).json()["items"]
    task = next(t for t in tasks if t["title"] == "write the report")
    await api.patch_task(other, task["id"], priority="urgent")

    await page.fill("#edit-title", "write the final report")
    await page.click_text("Save", within=".editor")
    # The 412 shows the newer version (urgent), and the person's change is kept to reapply.
    await wait_for_text(page, "Someone changed this task meanwhile", within=".editor")
    await wait_for_text(page, "urgent", within=".conflict")
    # The board behind the editor shows the newer version as well.
    await wait_for_text(page, "urgent", within=task_selector_css(task["id"]))
    await page.click_text("Reapply my change", within=".conflict")
    await page.wait_for(f"!!{task_selector('write the final report')}")

    final = (await api.client.get(f"/api/v1/tasks/{task['id']}", headers=other.headers)).json()
    assert (final["title"], final["priority"]) == ("write the final report", "urgent")
    assert final["version"] == task["version"] + 2


async def _screenshots(page: Page, tmp_path: Path) -> list[Path]:
    shots = []
    for width, height in (WIDE, NARROW):
        await page.resize(width, height)
        await page.wait_for(f"document.documentElement.clientWidth === {width}")
        # Nothing wider than the screen: no sideways scrolling at either width.
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await assert_accessible(page, f"the board at {width} px")
        shot = tmp_path / f"console-{width}.png"
        await page.screenshot(shot, full_page=True)
        assert shot.stat().st_size > 10_000
        shots.append(shot)
    await page.resize(*WIDE)
    return shots


async def test_a_person_walks_the_console_from_register_to_log_out(
    api: Any, suite, tmp_path: Path
) -> None:
    url = suite.gateway_url + "/"
    email = random_email("console")
    async with open_page(*WIDE) as page:
        await page.goto(url)
        await assert_accessible(page, "the login form")
        await register(page, email, PASSWORD)

        for title, priority in (
            ("write the report", "high"),
            ("book the venue", "medium"),
            ("send the invites", "low"),
        ):
            await create_task(page, title, priority=priority, tags="team")
        await page.wait_for("document.querySelector('[data-status=todo] .count').innerText === '3'")
        complete = task_selector("book the venue")
        await page.evaluate(
            f"[...{complete}.querySelectorAll('button')]"
            ".find(b => b.innerText.startsWith('Complete')).click()"
        )
        await page.wait_for("document.querySelector('[data-status=done] .count').innerText === '1'")
        # Statistics arrive by events: the panel follows and says when it was updated.
        await wait_for_text(page, "1 of 3 done", within=".stats")
        await wait_for_text(page, "33%", within=".stats")
        await wait_for_text(page, "Updated ", within=".stats .updated")

        # A reload keeps the session (the refresh cookie), and script sees no token anywhere.
        await page.reload()
        await page.wait_for(f"!!{task_selector('send the invites')}")
        stored = await page.evaluate(
            "[document.cookie, localStorage.length, sessionStorage.length]"
        )
        assert stored == ["", 0, 0]

        await _raced_edit(page, api, email)
        shots = await _screenshots(page, tmp_path)

        await page.click_text("Log out")
        await page.wait_for("!!document.querySelector('#email')")
        # Logged out for good: a reload lands on the login form, not back in.
        await page.reload()
        await page.wait_for("!!document.querySelector('#email')")
        await page.evaluate("new Promise(r => setTimeout(r, 500))")
        assert not await page.evaluate("!!document.querySelector('header.top')")
        refused = [r for r in page.reports if "Content Security Policy" in r or "exception" in r]
        assert not refused, refused

    if keep := os.environ.get("TASKMESH_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)


async def test_the_console_is_served_with_a_strict_csp_and_cacheable_assets(suite) -> None:
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=10) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["cache-control"] == "no-cache"
        assert "<script>" not in page.text and " style=" not in page.text
        script = page.text.split('src="', 1)[1].split('"', 1)[0]
        asset = await client.get(script)
        assert asset.status_code == 200
        assert "immutable" in asset.headers["cache-control"]
        assert (await client.get("/console/../../etc/passwd")).status_code == 404


async def test_the_login_form_works_from_the_keyboard(suite) -> None:
    async with open_page(*NARROW) as page:
        await page.goto(suite.gateway_url + "/")
        await page.wait_for("!!document.querySelector('#email')")
        await page.click("#email")
        order = []
        for _ in range(3):
            await page.press("Tab")
            order.append(
                await page.evaluate("document.activeElement.innerText || document.activeElement.id")
            )
        assert order == ["password", "Log in", "New here? Create an account"]
        # Enter on the focused link switches to the register form.
        await page.press("Enter")
        await page.wait_for("!!document.querySelector('#display_name')")


async def test_an_admin_promotes_and_disables_a_user_from_the_console(api: Any, suite) -> None:
    registered = await api.register(password=PASSWORD)
    row = f"document.querySelector('tr[data-user=\"{registered['id']}\"]')"
    async with open_page(*NARROW) as page:
        await page.goto(suite.gateway_url + "/")
        await log_in(
            page,
            suite.env["TASKMESH_BOOTSTRAP_ADMIN_EMAIL"],
            suite.env["TASKMESH_BOOTSTRAP_ADMIN_PASSWORD"],
        )
        await page.click_text("Users")
        # Oldest first, twenty a page: page on (keyset) until the new account shows.
        first_row = "document.querySelector('table.users tbody tr')"
        for _ in range(200):
            await page.wait_for(f"!!{first_row}")
            if await page.evaluate(f"!!{row}"):
                break
            first = await page.evaluate(f"{first_row}.dataset.user")
            await page.click_text("Next page")
            await page.wait_for(f"{first_row} && {first_row}.dataset.user !== '{first}'")
        else:
            raise AssertionError("the new account is on no page of the users")
        await page.evaluate(
            f"[...{row}.querySelectorAll('button')].find(b => b.innerText.startsWith('Promote')).click()"
        )
        await page.wait_for(f"{row}.querySelector('[data-label=Role]').innerText === 'admin'")
        await page.evaluate(
            f"[...{row}.querySelectorAll('button')].find(b => b.innerText.startsWith('Disable')).click()"
        )
        await page.wait_for(f"{row}.querySelector('[data-label=State]').innerText === 'disabled'")
        await assert_accessible(page, "the users at 375 px")
    refused = await api.client.post(
        "/api/v1/auth/login", json={"email": registered["email"], "password": PASSWORD}
    )
    assert refused.status_code == 401


async def test_the_list_filters_by_status_priority_tag_and_text_and_pages_on(
    api: Any, suite
) -> None:
    registered = await api.register(password=PASSWORD)
    user = await api.login(registered["email"], PASSWORD)
    for i in range(13):
        await api.create_task(
            user,
            title=f"errand {i:02d}" + (" at the bakery" if i % 4 == 0 else ""),
            priority=("low", "high")[i % 2],
            tags=["home" if i % 3 == 0 else "work"],
        )
    shown = "[...document.querySelectorAll('.list li.task .title')].map(e => e.innerText)"
    async with open_page(*WIDE) as page:
        await page.goto(suite.gateway_url + "/")
        await log_in(page, registered["email"], PASSWORD)
        await page.click_text("List")
        await page.wait_for(f"{shown}.length === 10")
        first_page = await page.evaluate(shown)
        assert first_page[0].startswith("errand 12")  # newest first
        await page.click_text("Next page")
        await page.wait_for(f"{shown}.length === 3")
        assert (await page.evaluate(shown))[-1] == "errand 00 at the bakery"
        await page.click_text("Previous page")
        await page.wait_for(f"{shown}.length === 10")
        assert await page.evaluate(shown) == first_page

        # home: 0, 3, 6, 9, 12; of those high: 3, 9; with "bakery" in the title: none left.
        await page.fill("#f-tag", "home")
        await page.click_text("Apply filters")
        await page.wait_for(f"{shown}.length === 5")
        await page.evaluate(
            "(() => { const s = document.querySelector('#f-priority'); s.value = 'high'; })()"
        )
        await page.click_text("Apply filters")
        await page.wait_for(f'JSON.stringify({shown}) === \'["errand 09","errand 03"]\'')
        await page.fill("#f-tag", "")
        await page.evaluate("document.querySelector('#f-priority').value = ''")
        await page.fill("#f-q", "bakery")
        await page.click_text("Apply filters")
        await page.wait_for(f"{shown}.length === 4")
        await page.evaluate("document.querySelector('#f-status').value = 'done'")
        await page.click_text("Apply filters")
        await wait_for_text(page, "No tasks match.")

        # Escape closes the editor without saving.
        await page.evaluate("document.querySelector('#f-status').value = ''")
        await page.click_text("Apply filters")
        await page.wait_for(f"{shown}.length === 4")
        await page.click_text("Edit", within=".list")
        await page.wait_for("document.activeElement.id === 'edit-title'")
        await page.press("Escape")
        await page.wait_for("!document.querySelector('.editor')")


async def _both_refresh_at_once(tabs: tuple[Page, Page]) -> bool:
    """Reload both tabs holding each one's cookie refresh at the gateway's door: True when
    both tabs had sent one before either was let through (the cookie spent twice at once)."""
    for tab in tabs:  # gone with the document, so only a reloaded page lacks it
        await tab.evaluate("window.before_reload = true")
    await asyncio.gather(*(tab.reload() for tab in tabs))
    # One reader per tab's socket at a time: each tab is spoken to only once its wait is over.
    waits = {asyncio.ensure_future(t.next_event("Fetch.requestPaused")): t for t in tabs}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    # The other tab gets every chance to send its own refresh while the first one is held.
    more, pending = await asyncio.wait(pending, timeout=5)
    order = [*done, *more, *pending]
    for held in order:
        paused = await held  # a tab whose refresh waited for the first one's turn sends it now
        await waits[held].call("Fetch.continueRequest", requestId=paused["requestId"])
    return not pending


async def test_two_tabs_reloading_at_once_stay_logged_in(api: Any, suite) -> None:
    """Each reload spends the refresh cookie; two tabs spending one cookie at the same time
    would look like a replayed stolen token and end the session, so the tabs take turns."""
    registered = await api.register(password=PASSWORD)
    url = suite.gateway_url + "/"
    signed_in = "!!document.querySelector('header.top')"
    fresh = f"!window.before_reload && (!!document.querySelector('#email') || {signed_in})"
    async with open_page(*WIDE) as first:
        await first.goto(url)
        await log_in(first, registered["email"], PASSWORD)
        async with first.new_tab(url) as second:
            await second.wait_for(signed_in)
            tabs = (first, second)
            for tab in tabs:
                pattern = {"urlPattern": "*/api/v1/auth/session/refresh", "requestStage": "Request"}
                await tab.call("Fetch.enable", patterns=[pattern])
            at_once = await _both_refresh_at_once(tabs)
            await asyncio.gather(*(tab.wait_for(fresh) for tab in tabs))
            assert [await tab.evaluate(signed_in) for tab in tabs] == [True, True]
            assert not at_once, "both tabs spent the refresh cookie at the same time"
