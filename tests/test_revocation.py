"""Revocation: RFC 7009 `POST /token/revoke`, `DELETE /session`, the admin's
`POST /users/{username}/revoke-tokens`, and a password change. A revoked token stops
working at once over HTTP, and every socket it opened closes with 1008 "token revoked";
other sessions and other users carry on."""

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest
import websockets
from clients import bearer, connect, cookie, recv_notification
from conftest import USER_PASSWORD, make_token, unique_name
from sessions import (
    claims,
    closed_with,
    login_pair,
    refresh,
    revoke,
    status_with,
    user_with_pair,
)

pytestmark = pytest.mark.integration

# POST /token/revoke


async def test_revoking_an_access_token_ends_its_session(api) -> None:
    username, pair = await user_with_pair(api)
    other = await login_pair(api, username)
    response = await revoke(api, pair["access_token"])
    assert response.status_code == 200
    assert response.content == b""
    assert await status_with(api, pair["access_token"]) == (401, "token revoked")
    # Its refresh token died with it (RFC 7009: the whole grant).
    assert (await refresh(api, pair["refresh_token"])).json()["detail"] == "token revoked"
    # The user's other login is untouched.
    assert await status_with(api, other["access_token"]) == (200, username)


async def test_revoking_a_refresh_token_ends_its_session(api) -> None:
    _username, pair = await user_with_pair(api)
    for hint in ("refresh_token", None):
        response = await revoke(api, pair["refresh_token"], hint)
        assert response.status_code == 200
    assert await status_with(api, pair["access_token"]) == (401, "token revoked")


async def test_wrong_hint_still_finds_the_token(api) -> None:
    _username, pair = await user_with_pair(api)
    assert (await revoke(api, pair["access_token"], "refresh_token")).status_code == 200
    assert await status_with(api, pair["access_token"]) == (401, "token revoked")


async def test_unknown_and_malformed_tokens_answer_200(api) -> None:
    username, pair = await user_with_pair(api)
    for token in ("garbage", "a.b.c", "x" * 5000, make_token("someone", key="k" * 40)):
        response = await revoke(api, token, "access_token")
        assert response.status_code == 200, (token[:20], response.text)
    assert (await revoke(api, "whatever", "no_such_hint")).status_code == 200
    # Nothing real was revoked on the way.
    assert await status_with(api, pair["access_token"]) == (200, username)


async def test_revoke_without_token_field(api) -> None:
    response = await api.client.post("/token/revoke", data={})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "the form field `token` is required",
        "detail": "the form field `token` is required",
    }


async def test_an_expired_access_token_can_still_revoke_its_session(api) -> None:
    # An expired access token still names its session, whose refresh token is alive.
    username, pair = await user_with_pair(api)
    expired = make_token(username, expires_in=-60, sid=claims(pair["access_token"])["sid"])
    assert (await revoke(api, expired)).status_code == 200
    assert (await refresh(api, pair["refresh_token"])).json()["detail"] == "token revoked"


async def test_tokens_from_before_sessions_can_be_revoked_one_by_one(api) -> None:
    # Tokens issued before token families existed carry no `sid`.
    username = await api.create_user()
    legacy, other_legacy = make_token(username), make_token(username)
    assert (await revoke(api, legacy)).status_code == 200
    assert await status_with(api, legacy) == (401, "token revoked")
    assert await status_with(api, other_legacy) == (200, username)


# DELETE /session


async def test_logout_revokes_the_bearer_session(api) -> None:
    _username, pair = await user_with_pair(api)
    response = await api.client.delete("/session", headers=bearer(pair["access_token"]))
    assert response.status_code == 204
    assert await status_with(api, pair["access_token"]) == (401, "token revoked")
    assert (await refresh(api, pair["refresh_token"])).status_code == 400


async def test_logout_revokes_the_cookie_session(server, api) -> None:
    username = await api.create_user()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as browser:
        login = await browser.post(
            "/session", data={"username": username, "password": USER_PASSWORD}
        )
        token = login.json()["access_token"]
        assert (await browser.delete("/session")).status_code == 204
    assert await status_with(api, token) == (401, "token revoked")
    api.client.cookies.clear()
    assert (await api.client.get("/users/me", headers=cookie(token))).status_code == 401


async def test_logout_without_or_with_bad_credentials_is_204(api) -> None:
    assert (await api.client.delete("/session")).status_code == 204
    assert (await api.client.delete("/session", headers=bearer("garbage"))).status_code == 204


# Sockets


async def test_revocation_closes_exactly_that_sessions_sockets(api) -> None:
    username, pair = await user_with_pair(api)
    other = await login_pair(api, username)
    bystander, bystander_pair = await user_with_pair(api)
    async with AsyncExitStack() as stack:
        doomed = [await connect(api, pair["access_token"], stack) for _ in range(2)]
        kept = await connect(api, other["access_token"], stack)
        watcher = await connect(api, bystander_pair["access_token"], stack)
        # All live first.
        sent = await api.send(username, "before")
        for ws in (*doomed, kept):
            assert await recv_notification(ws) == sent

        assert (await revoke(api, pair["access_token"])).status_code == 200
        closes = await asyncio.gather(*(closed_with(ws) for ws in doomed))
        assert closes == [(1008, "token revoked")] * 2

        # The other session and the other user still get their notifications.
        after = await api.send(username, "after")
        assert await recv_notification(kept) == after
        theirs = await api.send(bystander, "yours")
        assert await recv_notification(watcher) == theirs


async def test_a_revoked_token_cannot_open_a_socket(api) -> None:
    _username, pair = await user_with_pair(api)
    await revoke(api, pair["access_token"])
    async with websockets.connect(f"{api.server.ws_url}?token={pair['access_token']}") as ws:
        assert await closed_with(ws) == (1008, "token revoked")


# Admin: POST /users/{username}/revoke-tokens


async def test_admin_revokes_every_token_of_a_user(api) -> None:
    username = await api.create_user()
    pairs = [await login_pair(api, username) for _ in range(2)]
    legacy = make_token(username)
    bystander, bystander_pair = await user_with_pair(api)
    async with AsyncExitStack() as stack:
        sockets = [await connect(api, p["access_token"], stack) for p in pairs]
        response = await api.client.post(
            f"/users/{username}/revoke-tokens", headers=await api.admin_headers()
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"revoked_sessions": 2}
        closes = await asyncio.gather(*(closed_with(ws) for ws in sockets))
        assert closes == [(1008, "token revoked")] * 2
    for token in (*(p["access_token"] for p in pairs), legacy):
        assert await status_with(api, token) == (401, "token revoked")
    for p in pairs:
        assert (await refresh(api, p["refresh_token"])).status_code == 400
    assert await status_with(api, bystander_pair["access_token"]) == (200, bystander)
    # Logging in again works.
    fresh = await login_pair(api, username)
    assert await status_with(api, fresh["access_token"]) == (200, username)


async def test_revoke_tokens_errors(api) -> None:
    _caller, caller_token = await api.user_with_token()
    target = await api.create_user()
    denied = await api.client.post(f"/users/{target}/revoke-tokens", headers=bearer(caller_token))
    assert denied.status_code == 403
    missing = await api.client.post(
        f"/users/{unique_name('ghost')}/revoke-tokens", headers=await api.admin_headers()
    )
    assert missing.status_code == 404
    assert missing.json() == {"detail": "user not found"}
    bad = await api.client.post("/users/bad name/revoke-tokens", headers=await api.admin_headers())
    assert bad.status_code == 422
    # The refused caller's attempt revoked nothing.
    assert (await status_with(api, caller_token))[0] == 200


# PUT /users/me/password


async def test_password_change_revokes_everything_and_returns_a_new_pair(api) -> None:
    username, pair = await user_with_pair(api)
    other = await login_pair(api, username)
    async with AsyncExitStack() as stack:
        ws = await connect(api, other["access_token"], stack)
        response = await api.client.put(
            "/users/me/password",
            json={"current_password": USER_PASSWORD, "new_password": "a-brand-new-password"},
            headers=bearer(pair["access_token"]),
        )
        assert response.status_code == 200, response.text
        assert await closed_with(ws) == (1008, "token revoked")
    fresh = response.json()
    assert set(fresh) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert await status_with(api, fresh["access_token"]) == (200, username)
    for token in (pair["access_token"], other["access_token"]):
        assert await status_with(api, token) == (401, "token revoked")
    assert (await refresh(api, other["refresh_token"])).status_code == 400
    # The old password is gone; the new one logs in.
    old = await api.client.post("/token", data={"username": username, "password": USER_PASSWORD})
    assert old.status_code == 401
    await login_pair(api, username, "a-brand-new-password")


async def test_password_change_errors(api) -> None:
    username, pair = await user_with_pair(api)
    headers = bearer(pair["access_token"])
    wrong = await api.client.put(
        "/users/me/password",
        json={"current_password": "not-my-password", "new_password": "another-password"},
        headers=headers,
    )
    assert wrong.status_code == 403
    assert wrong.json() == {"detail": "current password is incorrect"}
    short = await api.client.put(
        "/users/me/password",
        json={"current_password": USER_PASSWORD, "new_password": "tiny1"},
        headers=headers,
    )
    assert short.status_code == 422
    [error] = short.json()["detail"]
    assert error["loc"] == ["body", "new_password"]
    assert error["msg"] == "password must be at least 8 characters"
    assert "tiny1" not in short.text  # the rejected password is not echoed
    for body in ({}, {"current_password": USER_PASSWORD}, {"new_password": "x" * 20, "x": 1}):
        response = await api.client.put("/users/me/password", json=body, headers=headers)
        assert response.status_code == 422, body
    anonymous = await api.client.put(
        "/users/me/password",
        json={"current_password": USER_PASSWORD, "new_password": "another-password"},
    )
    assert anonymous.status_code == 401
    # None of the failures changed anything.
    assert await status_with(api, pair["access_token"]) == (200, username)
    await login_pair(api, username)


# Across workers


async def test_revocation_reaches_sockets_on_every_worker(server_factory, api_for) -> None:
    # Two processes sharing PostgreSQL and Redis. The periodic recheck is off, so only
    # the broker's close request can end the sockets on the other worker.
    first = server_factory(backend_name="postgres", NOTIFIER_WS_RECHECK_INTERVAL="0")
    second = server_factory(like=first, NOTIFIER_WS_RECHECK_INTERVAL="0")
    async with api_for(first) as api_a, api_for(second) as api_b:
        username, pair = await user_with_pair(api_a)
        other = await login_pair(api_a, username)
        disabled_user, disabled_pair = await user_with_pair(api_a)
        async with AsyncExitStack() as stack:
            on_b = await connect(api_b, pair["access_token"], stack)
            kept_on_b = await connect(api_b, other["access_token"], stack)
            doomed_user_on_b = await connect(api_b, disabled_pair["access_token"], stack)
            sent = await api_a.send(username, "live on b")
            for ws in (on_b, kept_on_b):
                assert await recv_notification(ws) == sent

            await revoke(api_a, pair["access_token"])
            assert await closed_with(on_b) == (1008, "token revoked")

            response = await api_a.client.patch(
                f"/users/{disabled_user}",
                json={"disabled": True},
                headers=await api_a.admin_headers(),
            )
            assert response.status_code == 200
            assert await closed_with(doomed_user_on_b) == (1008, "user disabled")

            after = await api_a.send(username, "the other session lives")
            assert await recv_notification(kept_on_b) == after


async def test_periodic_recheck_closes_sockets_a_close_request_missed(
    server_factory, api_for
) -> None:
    # Two processes on one SQLite file with in-process brokers: no close request crosses
    # between them, so the socket's own recheck of its session has to catch it.
    first = server_factory(backend_name="sqlite")
    second = server_factory(like=first, NOTIFIER_WS_RECHECK_INTERVAL="1")
    async with api_for(first) as api_a, api_for(second) as api_b:
        _username, pair = await user_with_pair(api_a)
        async with AsyncExitStack() as stack:
            on_b = await connect(api_b, pair["access_token"], stack)
            await revoke(api_a, pair["access_token"])
            assert await closed_with(on_b, within=10) == (1008, "token revoked")
