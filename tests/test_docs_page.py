"""`/docs` in Debian's Chromium with the network closed: Swagger UI renders every route
from the files Notifier serves itself, under its Content-Security-Policy, without one
violation, console error or request to another host."""

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Route, expect

# The browser fixtures of the page tests (one Chromium per module that uses them).
from test_page import browser, chromium_path  # noqa: F401

pytestmark = pytest.mark.integration

VIOLATIONS_SCRIPT = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


MARK_READ = "#operations-inbox-mark_read_notifications__notification_id__read_post"


async def test_docs_render_offline_under_the_csp(browser, server, api):  # noqa: F811
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    operations = sum(len(methods) for methods in paths.values())
    own_host = urlsplit(server.base_url).netloc
    context = await browser.new_context(base_url=server.base_url)
    blocked: list[str] = []
    errors: list[str] = []

    async def offline(route: Route) -> None:
        # The network is closed: only this server answers.
        if urlsplit(route.request.url).netloc == own_host:
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", offline)
    await context.add_init_script(VIOLATIONS_SCRIPT)
    page = await context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    try:
        response = await page.goto("/docs")
        assert response is not None and response.ok
        assert "script-src 'self'" in response.headers["content-security-policy"]
        await expect(page.locator(".info .title")).to_contain_text("Notifier")
        await expect(page.locator(".opblock")).to_have_count(operations)
        # Expanding an operation renders its documented responses.
        await page.locator(
            "#operations-inbox-mark_read_notifications__notification_id__read_post"
        ).click()
        await expect(page.locator(".responses-table .response[data-code='404']")).to_have_count(1)
        assert await page.evaluate("window.__cspViolations") == []
        assert blocked == []
        assert errors == []
    finally:
        await context.close()
