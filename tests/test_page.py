"""The page at `GET /` in a real browser: Debian's Chromium driven by Playwright.

Nothing downloads a browser: Playwright launches /usr/bin/chromium (installed by
`make test` through scripts/install-browser.sh). With CI=true a missing Chromium fails
these tests instead of skipping them.

Every test collects the page's console errors and uncaught exceptions and requires none,
except the failed socket handshakes a browser reports while the server is down on purpose.
Set UPDATE_SCREENSHOT=1 to refresh docs/screenshot.png from the admin test.
"""

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clients import bearer, inbox, wait_for_open_sockets
from conftest import ADMIN_PASSWORD, ADMIN_USERNAME, USER_PASSWORD, make_token, unique_name
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"
# What Chromium logs for a socket handshake that cannot reach the server.
HANDSHAKE_FAILED = re.compile(r"^WebSocket connection to '\S+' failed")

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing; run scripts/install-browser.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_path, args=LAUNCH_ARGS)
        yield chromium
        await chromium.close()


@dataclass
class Tab:
    """One browser context (a device) with the page open, and what it reported."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)
    expect_network_errors: bool = False
    socket_urls: list[str] = field(default_factory=list)
    received_ids: list[int] = field(default_factory=list)
    """Ids of every notification frame any socket of the page received, in order."""

    def on_console(self, kind: str, text: str) -> None:
        if kind != "error":
            return
        if self.expect_network_errors and HANDSHAKE_FAILED.match(text):
            self.expected_errors.append(text)
        else:
            self.errors.append(text)

    def on_frame(self, payload: str | bytes) -> None:
        frame = json.loads(payload)
        if frame.get("type") == "notification":
            self.received_ids.append(frame["notification"]["id"])

    @property
    def badge(self):
        return self.page.locator("#badge")

    def item(self, notification_id: int):
        return self.page.locator(f'#inbox li[data-id="{notification_id}"]')

    def items_titled(self, title: str):
        return self.page.locator("#inbox li .title", has_text=re.compile(f"^{re.escape(title)}$"))

    def toast(self, title: str):
        return self.page.locator(".toast", has_text=title)

    async def log_in(self, username: str, password: str) -> None:
        await expect(self.page.locator("#login-view")).to_be_visible()
        await self.page.fill("#login-username", username)
        await self.page.fill("#login-password", password)
        await self.page.click("#login-form button[type=submit]")
        await self.wait_live()

    async def wait_live(self) -> None:
        await expect(self.page.locator("#connection")).to_have_attribute("data-state", "live")


@asynccontextmanager
async def open_tab(browser: Browser, base_url: str) -> AsyncIterator[Tab]:
    context = await browser.new_context(base_url=base_url, viewport={"width": 1100, "height": 700})
    page = await context.new_page()
    tab = Tab(context, page)
    page.on("console", lambda message: tab.on_console(message.type, message.text))
    page.on("pageerror", lambda error: tab.errors.append(f"uncaught: {error}"))

    def on_socket(socket) -> None:
        tab.socket_urls.append(socket.url)
        socket.on("framereceived", tab.on_frame)

    page.on("websocket", on_socket)
    await page.goto("/")
    try:
        yield tab
    finally:
        await context.close()


async def wait_for(condition, what: str, within: float = 20.0) -> None:
    """Poll a condition the browser satisfies asynchronously (sockets opened, frames seen)."""
    try:
        async with asyncio.timeout(within):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"{what} within {within} s")


# --- Serving the page -------------------------------------------------------------------


async def test_page_is_served_whole_by_notifier(browser, server, api):
    response = await api.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    for asset in ("/static/app.js", "/static/socket.js", "/static/style.css"):
        static = await api.client.get(asset)
        assert static.status_code == 200, asset
    assert (await api.client.get("/static/missing.js")).status_code == 404

    requested: list[str] = []
    async with open_tab(browser, server.base_url) as tab:
        tab.page.on("request", lambda request: requested.append(request.url))
        await tab.page.reload()
        await expect(tab.page.locator("#login-view")).to_be_visible()
        await expect(tab.page.locator("#login-reason")).to_be_hidden()
        assert tab.errors == []
    assert requested, "the page loaded nothing"
    # No CDN, no fonts from elsewhere: everything comes from this server.
    assert all(url.startswith(server.base_url + "/") for url in requested), requested


async def test_wrong_password_is_shown_and_nothing_opens(browser, api):
    username = await api.create_user()
    async with open_tab(browser, api.server.base_url) as tab:
        await tab.page.fill("#login-username", username)
        await tab.page.fill("#login-password", "not-the-password")
        await tab.page.click("#login-form button[type=submit]")
        await expect(tab.page.locator("#login-error")).to_have_text("Wrong username or password.")
        await expect(tab.page.locator("#app-view")).to_be_hidden()
        assert tab.socket_urls == []
        # The browser reports the 401 itself; nothing else may go wrong.
        assert all("401" in error for error in tab.errors), tab.errors


async def test_browser_sees_rejected_socket_as_close_1008_with_reason(browser, server):
    """A refused socket reaches the page as a clean close with the reason, not a 403."""
    bad_token = make_token(unique_name(), key="not-the-server-secret-key-at-all-000000")
    async with open_tab(browser, server.base_url) as tab:
        closed = await tab.page.evaluate(
            """(url) => new Promise((resolve) => {
                const ws = new WebSocket(url);
                ws.onclose = (e) => resolve({code: e.code, reason: e.reason, clean: e.wasClean});
            })""",
            f"{server.ws_url}?token={bad_token}",
        )
    assert closed == {"code": 1008, "reason": "invalid token", "clean": True}


# --- Live notifications -----------------------------------------------------------------


async def test_live_notification_shows_toast_and_badge_then_mark_read(browser, api):
    username, token = await api.user_with_token()
    async with open_tab(browser, api.server.base_url) as tab:
        await tab.log_in(username, USER_PASSWORD)
        await expect(tab.badge).to_have_text("0")
        await expect(tab.page.locator("#who")).to_have_text(username)
        await expect(tab.page.locator("#admin-view")).to_be_hidden()

        sent = await api.send(username, "Deploy finished", body="v1.2 is live", data={"run": 7})
        await expect(tab.toast("Deploy finished")).to_be_visible()
        await expect(tab.toast("Deploy finished")).to_contain_text("v1.2 is live")
        item = tab.item(sent["id"])
        await expect(item).to_have_class("unread")
        await expect(item.locator(".data")).to_have_text('{"run":7}')
        await expect(tab.badge).to_have_text("1")

        await item.get_by_role("button", name="Mark read").click()
        await expect(item).to_have_class("read")
        await expect(tab.badge).to_have_text("0")
        assert tab.errors == []
    page = await inbox(api, token)
    assert page["unread_count"] == 0
    assert [n["read"] for n in page["items"]] == [True]


async def test_mark_all_read(browser, api):
    username, token = await api.user_with_token()
    first = await api.send(username, "first")
    async with open_tab(browser, api.server.base_url) as tab:
        await tab.log_in(username, USER_PASSWORD)
        await expect(tab.item(first["id"])).to_have_class("unread")
        second = await api.send(username, "second")
        await expect(tab.item(second["id"])).to_have_class("unread")
        await expect(tab.badge).to_have_text("2")

        await tab.page.click("#read-all")
        await expect(tab.item(first["id"])).to_have_class("read")
        await expect(tab.item(second["id"])).to_have_class("read")
        await expect(tab.badge).to_have_text("0")
        assert tab.errors == []
    assert (await inbox(api, token, unread="true"))["items"] == []


async def test_missed_notifications_arrive_once_after_server_restart(
    browser, server_factory, api_for
):
    proc = server_factory()
    async with api_for(proc) as api:
        username = await api.create_user()
        before = await api.send(username, "before the restart")
    async with open_tab(browser, proc.base_url) as tab:
        await tab.log_in(username, USER_PASSWORD)
        await expect(tab.item(before["id"])).to_be_visible()

        tab.expect_network_errors = True
        await asyncio.to_thread(proc.stop)
        await expect(tab.page.locator("#connection")).to_have_attribute("data-state", "waiting")
        # Offline, the page cannot reconnect before the test has sent what it must miss.
        await tab.context.set_offline(True)
        await asyncio.to_thread(proc.start)
        async with api_for(proc) as api:
            missed = [await api.send(username, f"missed {i}") for i in range(3)]
            # Another device reads the old one meanwhile; read frames are not replayed.
            token = await api.login(username, USER_PASSWORD)
            marked = await api.client.post(
                f"/notifications/{before['id']}/read", headers=bearer(token)
            )
            assert marked.status_code == 200
        sockets_before = len(tab.socket_urls)
        await tab.context.set_offline(False)

        await tab.wait_live()
        for notification in missed:
            await expect(tab.item(notification["id"])).to_be_visible()
            await expect(tab.toast(notification["title"])).to_have_count(1)
        tab.expect_network_errors = False

        # Resumed right after the last notification it had, and got each missed one once.
        assert tab.socket_urls[-1].endswith(f"/ws?since={before['id']}"), tab.socket_urls
        assert len(tab.socket_urls) > sockets_before
        missed_ids = [n["id"] for n in missed]
        assert [i for i in tab.received_ids if i in missed_ids] == missed_ids
        for title in ["before the restart", *(n["title"] for n in missed)]:
            await expect(tab.items_titled(title)).to_have_count(1)
        await expect(tab.item(before["id"])).to_have_class("read")
        await expect(tab.badge).to_have_text("3")

        # And it is live again.
        async with api_for(proc) as api:
            after = await api.send(username, "after the restart")
        await expect(tab.item(after["id"])).to_be_visible()
        assert tab.errors == []


# --- Sessions ---------------------------------------------------------------------------


async def test_expired_session_returns_to_login_with_the_reason(browser, server_factory, api_for):
    proc = server_factory(NOTIFIER_ACCESS_TOKEN_TTL="3")
    async with api_for(proc) as api:
        username = await api.create_user()
    async with open_tab(browser, proc.base_url) as tab:
        await tab.log_in(username, USER_PASSWORD)
        # A reloaded tab keeps the cookie but not the password, so it cannot renew: the
        # server closes its socket with 1008 "token expired" when the token runs out.
        await tab.page.reload()
        await tab.wait_live()
        await expect(tab.page.locator("#login-view")).to_be_visible()
        await expect(tab.page.locator("#login-reason")).to_have_text(
            "Your session expired. Log in again. (token expired)"
        )
        await expect(tab.page.locator("#app-view")).to_be_hidden()
        assert tab.errors == []


async def test_session_is_renewed_before_it_expires(browser, server_factory, api_for):
    proc = server_factory(NOTIFIER_ACCESS_TOKEN_TTL="3")
    async with api_for(proc) as api:
        username = await api.create_user()
        async with open_tab(browser, proc.base_url) as tab:
            await tab.log_in(username, USER_PASSWORD)
            # Each renewal moves the socket to the new cookie: two renewals outlive two TTLs.
            await wait_for(lambda: len(tab.socket_urls) >= 3, "the page never renewed")
            await tab.wait_live()
            proc.admin_token = None  # the cached admin token has expired too
            sent = await api.send(username, "still here")
            await expect(tab.toast("still here")).to_be_visible()
            await expect(tab.item(sent["id"])).to_be_visible()
            await expect(tab.page.locator("#login-view")).to_be_hidden()
            assert tab.errors == []


async def test_logout_closes_the_socket_and_the_session(browser, api):
    username, token = await api.user_with_token()
    async with open_tab(browser, api.server.base_url) as tab:
        await tab.log_in(username, USER_PASSWORD)
        await wait_for_open_sockets(api, token, 1)
        await tab.page.click("#logout")
        await expect(tab.page.locator("#login-view")).to_be_visible()
        await expect(tab.page.locator("#login-reason")).to_be_hidden()
        await wait_for_open_sockets(api, token, 0)

        async def session_cookies() -> list[dict]:
            return [c for c in await tab.context.cookies() if c["name"] == "access_token"]

        async with asyncio.timeout(10):
            while True:
                if not await session_cookies():
                    break
                await asyncio.sleep(0.05)
        # A reload stays logged out.
        await tab.page.reload()
        await expect(tab.page.locator("#login-view")).to_be_visible()
        assert tab.errors == []


# --- Admin ------------------------------------------------------------------------------


async def test_admin_sends_from_the_form(browser, server_factory, api_for, tmp_path):
    proc = server_factory()
    async with api_for(proc) as api:
        alice = await api.create_user(unique_name("alice"))
        bob = await api.create_user(unique_name("bob"))
    async with (
        open_tab(browser, proc.base_url) as admin,
        open_tab(browser, proc.base_url) as user,
    ):
        await admin.log_in(ADMIN_USERNAME, ADMIN_PASSWORD)
        await user.log_in(alice, USER_PASSWORD)
        form = admin.page.locator("#send-form")
        result = admin.page.locator("#send-result")
        await expect(form).to_be_visible()

        # One user.
        await form.locator("#send-usernames").fill(alice)
        await form.locator("#send-title").fill("Build #42 finished")
        await form.locator("#send-body").fill("main is green")
        await form.locator("#send-data").fill('{"run": 42}')
        await form.get_by_role("button", name="Send").click()
        await expect(result).to_have_text(re.compile(rf"^Sent to {alice} \(id \d+\)\.$"))
        await expect(user.toast("Build #42 finished")).to_be_visible()
        await expect(user.items_titled("Build #42 finished")).to_have_count(1)

        # Several users.
        await form.get_by_label("several users").check()
        await form.locator("#send-usernames").fill(f"{alice}, {bob} {ADMIN_USERNAME}")
        await form.locator("#send-title").fill("Deploy at 5pm")
        await form.locator("#send-body").fill("Freeze merges to main at 4:30.")
        await form.get_by_role("button", name="Send").click()
        await expect(result).to_have_text("Sent to 3 users.")
        await expect(user.toast("Deploy at 5pm")).to_be_visible()
        await expect(admin.toast("Deploy at 5pm")).to_be_visible()

        # Everyone: the recipients field goes away.
        await form.get_by_label("everyone").check()
        await expect(form.locator("#send-usernames")).to_be_hidden()
        await form.locator("#send-title").fill("Maintenance tonight")
        await form.locator("#send-body").fill("22:00 to 22:15 UTC")
        await form.get_by_role("button", name="Send").click()
        await expect(result).to_have_text("Broadcast to 3 users.")
        await expect(user.toast("Maintenance tonight")).to_be_visible()
        await expect(admin.toast("Maintenance tonight")).to_be_visible()
        await expect(user.badge).to_have_text("3")
        await expect(admin.badge).to_have_text("2")
        assert admin.errors == [] and user.errors == []

        await form.get_by_label("one user").check()
        await form.locator("#send-usernames").fill(bob)
        await form.locator("#send-title").fill("Your report is ready")
        await form.locator("#send-body").fill("Q3 numbers are in.")
        shot = tmp_path / "screenshot.png"
        await admin.page.screenshot(path=str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG")
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, SCREENSHOT)

        # Bad input is explained and nothing is sent.
        await form.locator("#send-data").fill("[1, 2]")
        await form.get_by_role("button", name="Send").click()
        await expect(result).to_have_text('Data must be a JSON object, like {"run": 42}.')
        await form.locator("#send-data").fill("")
        await form.locator("#send-usernames").fill("ghost-user-that-does-not-exist")
        await form.get_by_role("button", name="Send").click()
        await expect(result).to_have_text("unknown users: ghost-user-that-does-not-exist")
    async with api_for(proc) as api:
        bob_token = await api.login(bob, USER_PASSWORD)
        titles = [n["title"] for n in (await inbox(api, bob_token))["items"]]
    assert titles == ["Maintenance tonight", "Deploy at 5pm"]


async def test_read_state_is_shared_live_across_devices(browser, api):
    """Each device's badge follows the server's unread_count: read frames and the count in
    every notification frame, whichever device (or API client) marked something read."""
    username, token = await api.user_with_token()
    async with (
        open_tab(browser, api.server.base_url) as phone,
        open_tab(browser, api.server.base_url) as laptop,
    ):
        await phone.log_in(username, USER_PASSWORD)
        await laptop.log_in(username, USER_PASSWORD)
        sent = [await api.send(username, f"alert {i}") for i in range(3)]
        for tab in (phone, laptop):
            await expect(tab.item(sent[-1]["id"])).to_be_visible()
            await expect(tab.badge).to_have_text("3")

        # Read on the phone: the laptop follows.
        await phone.item(sent[0]["id"]).get_by_role("button", name="Mark read").click()
        for tab in (phone, laptop):
            await expect(tab.item(sent[0]["id"])).to_have_class("read")
            await expect(tab.badge).to_have_text("2")

        # Read by another client through the API: both pages follow.
        marked = await api.client.post(
            f"/notifications/{sent[1]['id']}/read", headers=bearer(token)
        )
        assert marked.status_code == 200
        for tab in (phone, laptop):
            await expect(tab.item(sent[1]["id"])).to_have_class("read")
            await expect(tab.badge).to_have_text("1")

        # A new notification carries the count; then "mark all" on the laptop clears both.
        newest = await api.send(username, "alert 3")
        for tab in (phone, laptop):
            await expect(tab.item(newest["id"])).to_be_visible()
            await expect(tab.badge).to_have_text("2")
        await laptop.page.click("#read-all")
        for tab in (phone, laptop):
            await expect(tab.item(sent[2]["id"])).to_have_class("read")
            await expect(tab.item(newest["id"])).to_have_class("read")
            await expect(tab.badge).to_have_text("0")
        assert phone.errors == [] and laptop.errors == []
    assert (await inbox(api, token))["unread_count"] == 0
