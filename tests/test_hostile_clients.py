"""Hostile clients: oversized, binary, malformed and flooding messages, too many sockets,
half-open connections and thousands of failed logins. Each is refused with a clear
close code or status, and the server stays healthy: other users' deliveries go on."""

import asyncio
import contextlib
import json
import socket
from contextlib import AsyncExitStack

import httpx
import pytest
import websockets
from clients import connect, recv_notification
from conftest import unique_name
from sessions import closed_with, user_with_pair

pytestmark = pytest.mark.integration

LIMITS = {
    "NOTIFIER_WS_MAX_MESSAGE_SIZE": "4096",
    "NOTIFIER_WS_MAX_SOCKETS_PER_USER": "3",
    "NOTIFIER_WS_CLIENT_MESSAGE_RATE": "1",
    "NOTIFIER_WS_CLIENT_MESSAGE_BURST": "5",
    # Failed logins come "from" several addresses (X-Forwarded-For, as behind a proxy).
    "NOTIFIER_FORWARDED_ALLOW_IPS": "127.0.0.1",
}


SERVER_SETTINGS = LIMITS


async def bystander_still_served(api, ws, username: str) -> None:
    """The healthy user's socket gets what is sent to it, and the server answers."""
    sent = await api.send(username, "business as usual")
    assert await recv_notification(ws) == sent
    assert (await api.client.get("/healthz")).status_code == 200


@pytest.fixture
async def bystander(module_api):
    username, pair = await user_with_pair(module_api)
    async with AsyncExitStack() as stack:
        ws = await connect(module_api, pair["access_token"], stack)
        yield username, ws


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param("x" * 5000, (1009, None), id="oversized-text"),
        pytest.param(b"\x00" * 5000, (1009, None), id="oversized-binary"),
        pytest.param(b"\x00\x01", (1003, "binary frames not supported"), id="binary"),
        pytest.param("{not json", (1008, "invalid message"), id="invalid-json"),
        pytest.param(b"\xed\xa0\x80", (1007, None), id="invalid-utf8-text"),
        pytest.param("[1, 2, 3]", (1008, "invalid message"), id="json-array"),
        pytest.param('{"no": "type"}', (1008, "invalid message"), id="no-type"),
        pytest.param('{"type": 7}', (1008, "invalid message"), id="type-not-a-string"),
        pytest.param('{"type": "auth"}', (1008, "invalid message"), id="auth-without-token"),
        pytest.param('{"type": "auth", "token": 5}', (1008, "invalid message"), id="auth-number"),
    ],
)
async def test_bad_messages_close_only_the_sender(module_api, bystander, payload, expected) -> None:
    username, pair = await user_with_pair(module_api)
    async with AsyncExitStack() as stack:
        ws = await connect(module_api, pair["access_token"], stack)
        # Invalid UTF-8 goes out as a text frame, which the protocol layer refuses (1007).
        await ws.send(payload, text=True if expected[0] == 1007 else None)
        code, reason = await closed_with(ws)
        assert code == expected[0]
        if expected[1] is not None:
            assert reason == expected[1]
    # The closed user can reconnect; nothing they sent reached anyone else.
    async with AsyncExitStack() as stack:
        ws = await connect(module_api, pair["access_token"], stack)
        sent = await module_api.send(username, "after")
        assert await recv_notification(ws) == sent
    await bystander_still_served(module_api, bystander[1], bystander[0])


async def test_a_message_flood_is_cut_off(module_api, bystander) -> None:
    _username, pair = await user_with_pair(module_api)
    async with AsyncExitStack() as stack:
        ws = await connect(module_api, pair["access_token"], stack)
        with contextlib.suppress(websockets.ConnectionClosed):
            for _ in range(1000):
                await ws.send(json.dumps({"type": "ping"}))
        assert await closed_with(ws) == (1008, "too many messages")
    await bystander_still_served(module_api, bystander[1], bystander[0])


async def test_sockets_per_user_are_limited(module_api, bystander) -> None:
    username, pair = await user_with_pair(module_api)
    async with AsyncExitStack() as stack:
        sockets = [await connect(module_api, pair["access_token"], stack) for _ in range(3)]
        sent = await module_api.send(username, "three")
        for ws in sockets:
            assert await recv_notification(ws) == sent
        # The fourth is refused; the three open ones are untouched.
        async with websockets.connect(
            f"{module_api.server.ws_url}?token={pair['access_token']}"
        ) as ws:
            assert await closed_with(ws) == (1008, "too many sockets")
        sent = await module_api.send(username, "still three")
        for ws in sockets:
            assert await recv_notification(ws) == sent
        # Closing one frees a place.
        await sockets[0].close()
        for _ in range(50):
            async with websockets.connect(
                f"{module_api.server.ws_url}?token={pair['access_token']}"
            ) as ws:
                sent = await module_api.send(username, "replacement")
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame.get("type") == "notification":
                    assert frame["notification"]["id"] == sent["id"]
                    break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("no place freed after closing a socket")
    await bystander_still_served(module_api, bystander[1], bystander[0])


async def test_half_open_connections_do_not_block_anyone(module_api, bystander) -> None:
    port = module_api.server.port
    loop = asyncio.get_running_loop()
    stalled: list[socket.socket] = []
    try:
        for index in range(50):
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            # Half a WebSocket handshake, then silence.
            await loop.sock_sendall(
                sock, f"GET /ws?token=x{index} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
            )
            stalled.append(sock)
        await bystander_still_served(module_api, bystander[1], bystander[0])
        # Fresh logins and sockets still work while they hang.
        username, pair = await user_with_pair(module_api)
        async with AsyncExitStack() as stack:
            ws = await connect(module_api, pair["access_token"], stack)
            sent = await module_api.send(username, "while stalled")
            assert await recv_notification(ws) == sent
    finally:
        for sock in stalled:
            sock.close()


async def test_thousands_of_failed_logins(module_api, bystander) -> None:
    victim = await module_api.create_user()
    limit = asyncio.Semaphore(50)

    async def attempt(index: int) -> int:
        async with limit:
            name = victim if index % 2 else unique_name("nobody")
            response = await module_api.client.post(
                "/token",
                data={"username": name, "password": f"guess-{index}"},
                headers={"X-Forwarded-For": "203.0.113.7"},
            )
            return response.status_code

    statuses = await asyncio.gather(*(attempt(i) for i in range(2000)))
    assert set(statuses) <= {401, 429}, set(statuses)
    # Nearly all were refused before any password hashing.
    assert statuses.count(429) > 1800
    await bystander_still_served(module_api, bystander[1], bystander[0])
    # The victim, from their own address, is throttled only on their own name...
    victim_login = await module_api.client.post(
        "/token",
        data={"username": victim, "password": "user-password-123"},
        headers={"X-Forwarded-For": "198.51.100.1"},
    )
    assert victim_login.status_code in (200, 429)
    # ...and anyone else logs in at once from anywhere but the attacker's address.
    other = await module_api.create_user()
    async with httpx.AsyncClient(base_url=module_api.server.base_url) as client:
        response = await client.post(
            "/token",
            data={"username": other, "password": "user-password-123"},
            headers={"X-Forwarded-For": "198.51.100.2"},
        )
    assert response.status_code == 200, response.text
