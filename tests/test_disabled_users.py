"""Admins disable users with `PATCH /users/{username}` `{"disabled": true}`: no login, no
refresh, every token refused, every socket closed with 1008 "user disabled"."""

import asyncio
from contextlib import AsyncExitStack

import pytest
import websockets
from clients import bearer, connect, recv_notification
from conftest import USER_PASSWORD, make_token, unique_name
from sessions import closed_with, login_pair, refresh, status_with, user_with_pair

pytestmark = pytest.mark.integration


async def _patch(api, username: str, body: object, headers: dict | None = None):
    return await api.client.patch(
        f"/users/{username}", json=body, headers=headers or await api.admin_headers()
    )


async def test_disabling_ends_everything(api) -> None:
    username, pair = await user_with_pair(api)
    legacy = make_token(username)
    bystander, bystander_pair = await user_with_pair(api)
    async with AsyncExitStack() as stack:
        sockets = [await connect(api, pair["access_token"], stack) for _ in range(2)]
        watcher = await connect(api, bystander_pair["access_token"], stack)
        sent = await api.send(username, "before")
        for ws in sockets:
            assert await recv_notification(ws) == sent

        response = await _patch(api, username, {"disabled": True})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["username"] == username and body["disabled"] is True
        assert body["is_admin"] is False

        closes = await asyncio.gather(*(closed_with(ws) for ws in sockets))
        assert closes == [(1008, "user disabled")] * 2
        theirs = await api.send(bystander, "still here")
        assert await recv_notification(watcher) == theirs

    for token in (pair["access_token"], legacy):
        assert await status_with(api, token) == (401, "user disabled")
    assert (await refresh(api, pair["refresh_token"])).json()["detail"] == "user disabled"
    login = await api.client.post("/token", data={"username": username, "password": USER_PASSWORD})
    assert login.status_code == 403
    assert login.json() == {
        "error": "invalid_grant",
        "error_description": "user disabled",
        "detail": "user disabled",
    }
    async with websockets.connect(f"{api.server.ws_url}?token={pair['access_token']}") as ws:
        assert await closed_with(ws) == (1008, "user disabled")
    # Notifications for a disabled user are still stored (an admin may enable them again).
    await api.send(username, "while disabled")


async def test_enabling_again_allows_login_but_not_old_tokens(api) -> None:
    username, pair = await user_with_pair(api)
    await _patch(api, username, {"disabled": True})
    response = await _patch(api, username, {"disabled": False})
    assert response.status_code == 200
    assert response.json()["disabled"] is False
    fresh = await login_pair(api, username)
    assert await status_with(api, fresh["access_token"]) == (200, username)
    # Tokens from before the disabling stay revoked.
    assert await status_with(api, pair["access_token"]) == (401, "token revoked")
    assert (await refresh(api, pair["refresh_token"])).status_code == 400


async def test_disable_errors(api) -> None:
    target, target_pair = await user_with_pair(api)
    _caller, caller_token = await api.user_with_token()
    denied = await _patch(api, target, {"disabled": True}, bearer(caller_token))
    assert denied.status_code == 403
    missing = await _patch(api, unique_name("ghost"), {"disabled": True})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "user not found"}
    for body in ({}, {"disabled": "maybe"}, {"disabled": True, "is_admin": True}, [], None):
        response = await _patch(api, target, body)
        assert response.status_code == 422, body
    # An admin cannot lock themselves out.
    admin_name = (await api.client.get("/users/me", headers=await api.admin_headers())).json()
    own = await _patch(api, admin_name["username"], {"disabled": True})
    assert own.status_code == 400
    assert own.json() == {"detail": "you cannot disable yourself"}
    # Nothing above changed the target.
    assert await status_with(api, target_pair["access_token"]) == (200, target)
