"""Client-side helpers shared by the tests: auth headers, socket reads, inbox and profile reads.

Every wait here is bounded, so a broken server fails a test quickly instead of hanging it:
`within` is how many seconds a helper may wait.
"""

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
import pytest
import websockets

if TYPE_CHECKING:
    from conftest import Api

RECV_TIMEOUT = 5.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str) -> dict[str, str]:
    """The session cookie, sent by hand."""
    return {"Cookie": f"access_token={token}"}


def _client(api_or_client: "Api | httpx.AsyncClient") -> httpx.AsyncClient:
    if isinstance(api_or_client, httpx.AsyncClient):
        return api_or_client
    return api_or_client.client


# --- sockets -----------------------------------------------------------------------------


async def connect(api: "Api", token: str, stack: AsyncExitStack, **params: object):
    """Open `/ws?token=...&<params>` on `api`'s server; `stack` closes it."""
    query = urlencode({"token": token, **params})
    return await stack.enter_async_context(websockets.connect(f"{api.server.ws_url}?{query}"))


async def recv_notification(ws, within: float = RECV_TIMEOUT) -> dict:
    """The next frame, which must be a text frame of type "notification"; its notification."""
    raw = await asyncio.wait_for(ws.recv(), within)
    assert isinstance(raw, str), f"expected a text frame, got {raw!r}"
    frame = json.loads(raw)
    assert frame["type"] == "notification", frame
    assert set(frame) == {"type", "notification", "unread_count"}, frame
    assert isinstance(frame["unread_count"], int) and frame["unread_count"] >= 0, frame
    return frame["notification"]


async def recv_until(
    ws, stop: int | Callable[[dict], bool], within: float = RECV_TIMEOUT
) -> list[dict]:
    """Notifications up to and including the one with id `stop`, or the first one for which
    `stop(n)` holds; all of them within `within` seconds."""
    is_last = stop if callable(stop) else lambda n: n["id"] == stop
    received = []
    async with asyncio.timeout(within):
        while True:
            notification = await recv_notification(ws, within)
            received.append(notification)
            if is_last(notification):
                return received


async def expect_close(ws, within: float = RECV_TIMEOUT) -> tuple[int, str]:
    """The next thing on `ws` must be a close frame; return its code and reason."""
    with pytest.raises(websockets.ConnectionClosed) as info:
        frame = await asyncio.wait_for(ws.recv(), within)
        pytest.fail(f"expected a close, got a data frame: {frame!r}")
    close = info.value.rcvd
    assert close is not None, f"connection ended without a close frame: {info.value!r}"
    return close.code, close.reason


# --- HTTP --------------------------------------------------------------------------------


async def me(api_or_client: "Api | httpx.AsyncClient", token: str) -> dict:
    """GET /users/me as the owner of `token`; it must succeed."""
    response = await _client(api_or_client).get("/users/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def open_sockets(api_or_client: "Api | httpx.AsyncClient", token: str) -> int:
    return (await me(api_or_client, token))["open_sockets"]


async def wait_for_open_sockets(
    api_or_client: "Api | httpx.AsyncClient", token: str, expected: int, within: float = 10.0
) -> None:
    """The server sees opens and closes asynchronously: poll until the count is `expected`."""
    deadline = time.monotonic() + within
    count = await open_sockets(api_or_client, token)
    while count != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"open_sockets stayed at {count}, expected {expected}")
        await asyncio.sleep(0.05)
        count = await open_sockets(api_or_client, token)


async def inbox(api: "Api", token: str, **params: object) -> dict:
    """GET /notifications as the owner of `token`; it must succeed with the usual shape."""
    response = await api.client.get("/notifications", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "unread_count"}, body
    return body


# --- collecting frames in the background ---------------------------------------------------


class Collector:
    """Reads every frame of a socket in the background, keeping the notifications in order."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.notifications: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            self.notifications.append(await recv_notification(self.ws, within=60))

    @property
    def ids(self) -> list[int]:
        return [n["id"] for n in self.notifications]

    async def wait_for(self, count: int, within: float = RECV_TIMEOUT * 4) -> list[int]:
        """Wait until `count` notifications arrived (a reader error surfaces here)."""
        async with asyncio.timeout(within):
            while len(self.notifications) < count:
                if self.task.done():
                    self.task.result()
                    pytest.fail("the socket's reader stopped")
                await asyncio.sleep(0.02)
        return self.ids

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def wait_for_status(
    client: httpx.AsyncClient, path: str, status: int, within: float = 15.0
) -> dict:
    """Poll `path` until it answers `status`; its JSON body."""
    deadline = time.monotonic() + within
    while True:
        response = await client.get(path)
        if response.status_code == status:
            return response.json()
        if time.monotonic() > deadline:
            pytest.fail(f"{path} stayed {response.status_code}: {response.text}")
        await asyncio.sleep(0.1)


# --- Metrics -----------------------------------------------------------------------------


def lint_metrics(exposition: str) -> None:
    """`promtool check metrics` finds nothing (Debian's prometheus package; `make test`
    installs it with scripts/install-promtool.sh)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        from conftest import service_missing

        service_missing("promtool", FileNotFoundError("run scripts/install-promtool.sh"))
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
