# ruff: noqa: F811
"""Cross-site requests with the session cookie: refused with 403 "origin not allowed".

A page on another port of the same host is the same *site*, so `SameSite=Lax` lets the
cookie through; only the Origin (or Referer) tells the server another page started the
request. Real Chromium runs the attacks (auto-submitted forms); httpx covers each rule.
"""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from clients import bearer, cookie, inbox
from conftest import USER_PASSWORD, ServerProcess, free_port, unique_name
from playwright.async_api import Browser

# The page tests' one Chromium per session (skips or fails on CI without it); the tests
# below take `browser` by name, as fixtures are (F811).
from test_page import browser, chromium_path  # noqa: F401

from notifier.api.cross_site import origin_allowed, referer_origin

pytestmark = pytest.mark.integration

ALLOWED = "http://allowed.example:8080"
REFUSED = {"detail": "origin not allowed"}
# The OAuth2 routes answer the same refusal as an RFC 6749 5.2 error, so OAuth2 clients raise.
LOGIN_REFUSED = REFUSED | {"error": "invalid_request", "error_description": "origin not allowed"}


SERVER_SETTINGS = {"NOTIFIER_ALLOWED_ORIGINS": ALLOWED}


async def unread_user(api) -> tuple[str, str]:
    """A user with one unread notification, and their token."""
    username, token = await api.user_with_token()
    await api.send(username, "unread")
    assert (await inbox(api, token))["unread_count"] == 1
    return username, token


# --- The rule, one header at a time (httpx) ---------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "null"},
        {"Origin": "http://evil.example"},
        {"Referer": "http://127.0.0.1:1/attack.html"},
        {"Referer": "not a url"},
    ],
    ids=["other-port", "null", "other-host", "referer-other-port", "referer-garbage"],
)
async def test_cookie_request_from_another_origin_is_refused(module_api, headers) -> None:
    _username, token = await unread_user(module_api)
    response = await module_api.client.post(
        "/notifications/read-all", headers=cookie(token) | headers
    )
    assert response.status_code == 403, response.text
    assert response.json() == REFUSED
    assert (await inbox(module_api, token))["unread_count"] == 1


def own_origin(api) -> str:
    return api.server.base_url


@pytest.mark.parametrize(
    "which",
    ["own-origin", "own-referer", "listed-origin", "no-origin-no-referer", "bearer-cross-origin"],
)
async def test_allowed_cookie_and_bearer_requests_go_through(module_api, which) -> None:
    _username, token = await unread_user(module_api)
    headers = {
        "own-origin": cookie(token) | {"Origin": own_origin(module_api)},
        "own-referer": cookie(token) | {"Referer": f"{own_origin(module_api)}/"},
        "listed-origin": cookie(token) | {"Origin": ALLOWED},
        # curl and scripts send neither: no page started them.
        "no-origin-no-referer": cookie(token),
        # An app's bearer token is not sent by a browser on its own.
        "bearer-cross-origin": bearer(token) | {"Origin": "http://evil.example"},
    }[which]
    response = await module_api.client.post("/notifications/read-all", headers=headers)
    assert response.status_code == 200, response.text
    assert (await inbox(module_api, token))["unread_count"] == 0


async def test_safe_methods_with_the_cookie_are_not_refused(module_api) -> None:
    _username, token = await unread_user(module_api)
    response = await module_api.client.get(
        "/notifications", headers=cookie(token) | {"Origin": "http://evil.example"}
    )
    assert response.status_code == 200
    assert response.json()["unread_count"] == 1


async def test_every_unsafe_method_is_guarded(module_api) -> None:
    username, token = await module_api.user_with_token()
    cross = cookie(token) | {"Origin": "http://127.0.0.1:1"}
    attempts = [
        module_api.client.put(
            "/users/me/password",
            json={"current_password": USER_PASSWORD, "new_password": "a-new-password-456"},
            headers=cross,
        ),
        module_api.client.delete("/session", headers=cross),
        module_api.client.post("/ws-ticket", headers=cross),
    ]
    for attempt in attempts:
        response = await attempt
        assert (response.status_code, response.json()) == (403, REFUSED)
        assert "set-cookie" not in response.headers
    # The password was not changed and the session not closed: both still work.
    assert (await module_api.client.get("/users/me", headers=cookie(token))).status_code == 200
    await module_api.login(username, USER_PASSWORD)


async def test_login_from_another_origin_is_refused_without_a_cookie(module_api) -> None:
    username = await module_api.create_user()
    form = {"username": username, "password": USER_PASSWORD}
    refused = await module_api.client.post(
        "/session", data=form, headers={"Origin": "http://127.0.0.1:1"}
    )
    assert (refused.status_code, refused.json()) == (403, LOGIN_REFUSED)
    assert "set-cookie" not in refused.headers
    assert refused.headers["cache-control"] == "no-store"
    own = await module_api.client.post(
        "/session", data=form, headers={"Origin": own_origin(module_api)}
    )
    assert own.status_code == 200, own.text
    assert "access_token=" in own.headers["set-cookie"]
    module_api.client.cookies.clear()
    # POST /token sets no cookie: apps log in there from anywhere.
    token = await module_api.client.post(
        "/token", data=form, headers={"Origin": "http://evil.example"}
    )
    assert token.status_code == 200


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("https://Notify.Example", "notify.example", True),
        (ALLOWED + "/", "127.0.0.1:8000", True),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("http://[::1", "127.0.0.1:8000", False),  # unparsable: refused, not a 500
        ("null", "", False),
        ("http://127.0.0.1:8000", "", False),  # no Host header: nothing is "own"
    ],
)
def test_origin_rule(origin: str, host: str, allowed: bool) -> None:
    assert origin_allowed(origin, host, [ALLOWED]) is allowed


def test_referer_origin() -> None:
    assert referer_origin("http://127.0.0.1:1/a/b?c=d#e") == "http://127.0.0.1:1"
    assert referer_origin("not a url") == ""
    assert referer_origin("http://[::1/") == ""


# --- Attacks in a real browser ------------------------------------------------------------


class AttackerPages:
    """Pages served from another port of the same host: each auto-submits one form."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *_args: object) -> None:
                pass

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def form(self, name: str, action: str, fields: dict[str, str] | None = None) -> str:
        inputs = "".join(
            f'<input type="hidden" name="{key}" value="{value}">'
            for key, value in (fields or {}).items()
        )
        self.pages[f"/{name}.html"] = (
            f'<form method="POST" action="{action}">{inputs}</form>'
            "<script>document.forms[0].submit()</script>"
        ).encode()
        return f"http://127.0.0.1:{self.port}/{name}.html"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def attacker() -> Iterator[AttackerPages]:
    pages = AttackerPages()
    yield pages
    pages.close()


async def attack(chromium: Browser, server: ServerProcess, victim_token: str, url: str, path: str):
    """Open `url` in a browser holding the victim's cookie; the response to `path`."""
    context = await chromium.new_context()
    try:
        await context.add_cookies(
            [
                {
                    "name": "access_token",
                    "value": victim_token,
                    "url": server.base_url,
                    "httpOnly": True,
                    "sameSite": "Lax",
                }
            ]
        )
        page = await context.new_page()
        async with page.expect_response(lambda r: r.url == server.base_url + path) as info:
            await page.goto(url)
        response = await info.value
        sent = await response.request.all_headers()
        # The attack is real: the browser sent the victim's cookie along, cross-origin.
        assert f"access_token={victim_token}" in sent.get("cookie", ""), sent
        assert sent["origin"] == url.rsplit("/", 1)[0], sent
        cookies = {c["name"]: c["value"] for c in await context.cookies(server.base_url)}
        return response.status, await response.json(), cookies
    finally:
        await context.close()


async def test_browser_form_to_read_all_is_refused(browser, attacker, module_api) -> None:
    server = module_api.server
    _username, token = await unread_user(module_api)
    url = attacker.form("read-all", f"{server.base_url}/notifications/read-all")
    status, body, _cookies = await attack(browser, server, token, url, "/notifications/read-all")
    assert (status, body) == (403, REFUSED)
    assert (await inbox(module_api, token))["unread_count"] == 1


async def test_browser_form_revoking_tokens_as_an_admin_is_refused(
    browser, attacker, module_api
) -> None:
    server = module_api.server
    _admin, admin_token = await module_api.user_with_token(is_admin=True)
    bob, bob_token = await module_api.user_with_token()
    path = f"/users/{bob}/revoke-tokens"
    url = attacker.form("revoke", server.base_url + path)
    status, body, _cookies = await attack(browser, server, admin_token, url, path)
    assert (status, body) == (403, REFUSED)
    # Bob's token still works.
    assert (await module_api.client.get("/users/me", headers=bearer(bob_token))).status_code == 200


async def test_browser_login_csrf_is_refused(browser, attacker, module_api) -> None:
    server = module_api.server
    victim, victim_token = await module_api.user_with_token()
    intruder = await module_api.create_user(unique_name("intruder"))
    url = attacker.form(
        "login",
        f"{server.base_url}/session",
        {"username": intruder, "password": USER_PASSWORD},
    )
    status, body, cookies = await attack(browser, server, victim_token, url, "/session")
    assert (status, body) == (403, LOGIN_REFUSED)
    # The victim's cookie was not replaced by the intruder's session.
    assert cookies["access_token"] == victim_token
    me = await module_api.client.get("/users/me", headers=cookie(cookies["access_token"]))
    assert me.json()["username"] == victim
