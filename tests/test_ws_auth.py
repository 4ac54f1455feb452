"""Who may open `/ws`: every rejection is a 1008 close frame with a reason, nothing else.

A rejected socket is accepted and then closed, so a client (a browser included) can
read why; it must never see a notification first, and it must never join the hub.
Accepted sockets are proven to work by receiving a notification sent over HTTP.
"""

import base64
import json
import time
from urllib.parse import quote

import pytest
import websockets
from clients import bearer, cookie, expect_close, open_sockets, recv_notification
from conftest import make_token, unique_name

pytestmark = pytest.mark.integration


def _b64(obj: dict) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned_token(sub: str) -> str:
    """A JWT with `alg: none` and an empty signature, otherwise well formed and current."""
    now = int(time.time())
    header = _b64({"alg": "none", "typ": "JWT"})
    payload = _b64({"sub": sub, "iat": now, "exp": now + 3600, "jti": "x"})
    return f"{header}.{payload}."


async def expect_rejection(url: str, **connect_kwargs: object) -> tuple[int, str]:
    """Open a socket that the server must reject; return the close code and reason.

    The first thing received must be the close: a data frame first fails the test.
    """
    async with websockets.connect(url, **connect_kwargs) as ws:
        return await expect_close(ws)


async def assert_works(api, ws, username: str) -> None:
    sent = await api.send(username, "proof", body="accepted socket")
    assert await recv_notification(ws) == sent


# --- rejections --------------------------------------------------------------------------


async def test_no_token_is_rejected(api):
    close = await expect_rejection(api.server.ws_url)
    assert close == (1008, "no token")


async def test_empty_token_is_rejected_as_no_token(api):
    close = await expect_rejection(f"{api.server.ws_url}?token=")
    assert close == (1008, "no token")


async def test_malformed_token_is_rejected(api):
    close = await expect_rejection(f"{api.server.ws_url}?token=abc")
    assert close == (1008, "invalid token")


async def test_bad_signature_is_rejected(api):
    username = await api.create_user()
    forged = make_token(username, key="other-secret-key-that-is-long-enough-for-hs256")
    close = await expect_rejection(f"{api.server.ws_url}?token={forged}")
    assert close == (1008, "invalid token")


async def test_alg_none_is_rejected(api):
    username = await api.create_user()
    close = await expect_rejection(f"{api.server.ws_url}?token={unsigned_token(username)}")
    assert close == (1008, "invalid token")


async def test_alg_none_in_bearer_header_is_rejected(api):
    username = await api.create_user()
    close = await expect_rejection(
        api.server.ws_url, additional_headers=bearer(unsigned_token(username))
    )
    assert close == (1008, "invalid token")


async def test_expired_token_is_rejected(api):
    username = await api.create_user()
    expired = make_token(username, expires_in=-10)
    close = await expect_rejection(f"{api.server.ws_url}?token={expired}")
    assert close == (1008, "token expired")


async def test_unknown_user_is_rejected(api):
    ghost = make_token(unique_name("ghost"))
    close = await expect_rejection(f"{api.server.ws_url}?token={ghost}")
    assert close == (1008, "unknown user")


async def test_cookie_from_foreign_origin_is_rejected_and_never_joins(api):
    username, token = await api.user_with_token()
    # Something is stored, so a socket that slipped through with since=0 would replay it.
    await api.send(username, "stored before the attempt")
    close = await expect_rejection(
        f"{api.server.ws_url}?since=0",
        additional_headers=cookie(token),
        origin="http://evil.example",
    )
    assert close == (1008, "origin not allowed")
    # Sending after the rejection reaches no socket: the hub never held this one.
    await api.send(username, "after the rejection")
    assert await open_sockets(api, token) == 0


async def test_invalid_since_is_rejected(api):
    username, token = await api.user_with_token()
    await api.send(username, "stored")
    for since in ["abc", "-1", "1.5", "", "99999999999999999999"]:
        close = await expect_rejection(f"{api.server.ws_url}?token={token}&since={quote(since)}")
        assert close == (1008, "invalid since"), since
    assert await open_sockets(api, token) == 0


async def test_rejected_socket_is_not_counted_while_a_good_one_is(api):
    username, token = await api.user_with_token()
    async with websockets.connect(f"{api.server.ws_url}?token={token}") as ws:
        await assert_works(api, ws, username)
        close = await expect_rejection(
            api.server.ws_url, additional_headers=cookie(token), origin="http://evil.example"
        )
        assert close == (1008, "origin not allowed")
        assert await open_sockets(api, token) == 1
        # The good socket still gets exactly the next notification, nothing was duplicated.
        await assert_works(api, ws, username)


# --- accepted paths ----------------------------------------------------------------------


async def test_query_token_is_accepted(api):
    username, token = await api.user_with_token()
    async with websockets.connect(f"{api.server.ws_url}?token={token}") as ws:
        await assert_works(api, ws, username)
        assert await open_sockets(api, token) == 1


async def test_bearer_header_is_accepted(api):
    username, token = await api.user_with_token()
    async with websockets.connect(api.server.ws_url, additional_headers=bearer(token)) as ws:
        await assert_works(api, ws, username)


async def test_cookie_without_origin_is_accepted(api):
    username, token = await api.user_with_token()
    async with websockets.connect(api.server.ws_url, additional_headers=cookie(token)) as ws:
        await assert_works(api, ws, username)


async def test_cookie_with_own_origin_is_accepted(api):
    username, token = await api.user_with_token()
    async with websockets.connect(
        api.server.ws_url, additional_headers=cookie(token), origin=api.server.base_url
    ) as ws:
        await assert_works(api, ws, username)


async def test_cookie_with_configured_origins(server_factory, api_for):
    proc = server_factory(NOTIFIER_ALLOWED_ORIGINS="http://app.example,http://other.example")
    async with api_for(proc) as api:
        username, token = await api.user_with_token()
        for origin in ("http://app.example", "http://other.example", proc.base_url):
            async with websockets.connect(
                proc.ws_url, additional_headers=cookie(token), origin=origin
            ) as ws:
                await assert_works(api, ws, username)
        # The list is an allow-list, not "anything goes" once configured.
        close = await expect_rejection(
            proc.ws_url, additional_headers=cookie(token), origin="http://evil.example"
        )
        assert close == (1008, "origin not allowed")
        assert await open_sockets(api, token) == 0


async def test_tokens_never_reach_the_server_log(api):
    username, token = await api.user_with_token()
    async with websockets.connect(f"{api.server.ws_url}?token={token}&since=0") as ws:
        sent = await api.send(username, "logged?")
        assert await recv_notification(ws) == sent
    bad = "not.a-valid.token"
    await expect_rejection(f"{api.server.ws_url}?token={bad}")
    log = api.server.log()
    assert "/ws?token=[redacted]&since=0" in log
    assert token not in log
    assert bad not in log
