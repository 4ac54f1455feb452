"""Client helpers for the token lifecycle: token pairs, refresh, revocation, tickets."""

import asyncio
import json
from typing import TYPE_CHECKING

import httpx
import pytest
import websockets
from clients import RECV_TIMEOUT
from conftest import TEST_SECRET, USER_PASSWORD
from jose import jwt

if TYPE_CHECKING:
    from conftest import Api


def claims(token: str) -> dict:
    return jwt.decode(token, TEST_SECRET, algorithms=["HS256"])


async def login_pair(api: "Api", username: str, password: str = USER_PASSWORD) -> dict:
    """POST /token; it must succeed. The whole body (access and refresh token)."""
    response = await api.client.post("/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


async def user_with_pair(api: "Api") -> tuple[str, dict]:
    username = await api.create_user()
    return username, await login_pair(api, username)


async def refresh(api: "Api", refresh_token: str) -> httpx.Response:
    return await api.client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def revoke(api: "Api", token: str, hint: str | None = None) -> httpx.Response:
    data = {"token": token} | ({"token_type_hint": hint} if hint else {})
    return await api.client.post("/token/revoke", data=data)


async def status_with(api: "Api", token: str) -> tuple[int, str]:
    """GET /users/me with `token`: (status, detail or username)."""
    response = await api.client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    return response.status_code, body.get("detail") or body.get("username")


async def recv_frame(ws, within: float = RECV_TIMEOUT) -> dict:
    raw = await asyncio.wait_for(ws.recv(), within)
    assert isinstance(raw, str), raw
    return json.loads(raw)


async def recv_frame_of(ws, kind: str, within: float = RECV_TIMEOUT) -> dict:
    """The next frame of type `kind`, skipping control frames of other types."""
    async with asyncio.timeout(within):
        while True:
            frame = await recv_frame(ws, within)
            if frame["type"] == kind:
                return frame
            assert frame["type"] in {"token_expiring", "auth_ok", "read"}, frame


async def closed_with(ws, within: float = RECV_TIMEOUT) -> tuple[int, str]:
    """Read until the close (skipping control frames, failing on notifications)."""
    with pytest.raises(websockets.ConnectionClosed) as info:
        async with asyncio.timeout(within):
            while True:
                frame = json.loads(await ws.recv())
                assert frame["type"] != "notification", f"expected a close, got {frame}"
    close = info.value.rcvd
    assert close is not None, f"no close frame: {info.value!r}"
    return close.code, close.reason
