"""Renewing a socket's credentials in place with `{"type": "auth", "token": ...}`, and the
`{"type": "token_expiring", "expires_in": s}` warning that invites it."""

import asyncio
import json
from contextlib import AsyncExitStack

import pytest
import websockets
from clients import connect, recv_notification
from conftest import make_token
from sessions import closed_with, login_pair, recv_frame, revoke, user_with_pair

pytestmark = pytest.mark.integration


async def renew(ws, token: str) -> None:
    await ws.send(json.dumps({"type": "auth", "token": token}))


async def test_renewal_outlives_the_first_token(api) -> None:
    username, pair = await user_with_pair(api)
    short = make_token(username, expires_in=3)
    async with websockets.connect(f"{api.server.ws_url}?token={short}") as ws:
        # Less than the warning time (60 s) is left: the warning comes at once.
        warning = await recv_frame(ws)
        assert warning["type"] == "token_expiring" and 0 <= warning["expires_in"] <= 3
        await renew(ws, pair["access_token"])
        ok = await recv_frame(ws)
        assert ok["type"] == "auth_ok"
        assert 3500 < ok["expires_in"] <= 3600
        # Well past the first token's expiry, the socket still delivers.
        await asyncio.sleep(4)
        sent = await api.send(username, "after the old expiry")
        assert await recv_notification(ws) == sent


async def test_renewal_failures_close_the_socket(api) -> None:
    username, pair = await user_with_pair(api)
    _other, other_pair = await user_with_pair(api)
    revoked = await login_pair(api, username)
    await revoke(api, revoked["access_token"])
    cases = [
        (other_pair["access_token"], (1008, "wrong user")),
        ("garbage", (1008, "invalid token")),
        (make_token(username, expires_in=-5), (1008, "token expired")),
        (make_token(username, key="k" * 40), (1008, "invalid token")),
        (revoked["access_token"], (1008, "token revoked")),
    ]
    for token, expected in cases:
        async with AsyncExitStack() as stack:
            ws = await connect(api, pair["access_token"], stack)
            await renew(ws, token)
            assert await closed_with(ws) == expected, token[:30]


async def test_renewal_moves_the_socket_to_the_new_session(api) -> None:
    username, first = await user_with_pair(api)
    second = await login_pair(api, username)
    async with AsyncExitStack() as stack:
        ws = await connect(api, first["access_token"], stack)
        await renew(ws, second["access_token"])
        assert (await recv_frame(ws))["type"] == "auth_ok"
        # The first session no longer backs this socket: revoking it leaves it open.
        await revoke(api, first["access_token"])
        sent = await api.send(username, "still here")
        assert await recv_notification(ws) == sent
        await revoke(api, second["access_token"])
        assert await closed_with(ws) == (1008, "token revoked")


async def test_warning_time_is_a_setting(server_factory, api_for) -> None:
    proc = server_factory(NOTIFIER_TOKEN_EXPIRY_WARNING="2")
    async with api_for(proc) as api:
        username = await api.create_user()
        async with websockets.connect(f"{proc.ws_url}?token={make_token(username, 5)}") as ws:
            # More than 2 s are left: a notification comes first, then the warning.
            sent = await api.send(username, "first")
            assert await recv_notification(ws) == sent
            warning = await recv_frame(ws, within=8)
            assert warning == {"type": "token_expiring", "expires_in": warning["expires_in"]}
            assert 0 <= warning["expires_in"] <= 2
            # Renewed with another short token: a new deadline gets its own warning.
            await renew(ws, make_token(username, 4))
            assert (await recv_frame(ws))["type"] == "auth_ok"
            assert (await recv_frame(ws, within=8))["type"] == "token_expiring"
            # Not renewed this time: the socket ends as in the core protocol.
            assert await closed_with(ws, within=8) == (1008, "token expired")


async def test_unknown_message_types_are_ignored(api) -> None:
    username, pair = await user_with_pair(api)
    async with AsyncExitStack() as stack:
        ws = await connect(api, pair["access_token"], stack)
        await ws.send(json.dumps({"type": "hello", "anything": [1, 2]}))
        sent = await api.send(username, "still fine")
        assert await recv_notification(ws) == sent
