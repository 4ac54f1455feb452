"""A socket's life after the handshake: expiry, shutdown, restart, dead peers, slow peers.

Every test talks to a real `notifier serve` process over real TCP. Waits are bounded so
a broken server fails the test quickly instead of hanging it.
"""

import asyncio
import json
import re
import signal
import socket

import pytest
import websockets
from clients import (
    expect_close,
    inbox,
    open_sockets,
    recv_notification,
    wait_for_open_sockets,
)
from conftest import make_token

pytestmark = pytest.mark.integration


async def test_token_expiry_closes_a_live_socket(api):
    username, token = await api.user_with_token()
    short = make_token(username, expires_in=3)
    async with websockets.connect(f"{api.server.ws_url}?token={short}") as ws:
        # Its token expires sooner than the warning time: the warning comes at once.
        warning = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert warning["type"] == "token_expiring" and 0 <= warning["expires_in"] <= 3
        # Live before expiry.
        sent = await api.send(username, "before expiry")
        assert await recv_notification(ws) == sent
        # Then closed with the reason, and nothing else on the way.
        assert await expect_close(ws, within=8) == (1008, "token expired")
    await wait_for_open_sockets(api.client, token, 0, within=5)


async def test_sigterm_closes_every_socket_with_1012(server_factory, api_for):
    proc = server_factory()
    async with api_for(proc) as api:
        (alice, alice_token), (bob, bob_token) = [await api.user_with_token() for _ in range(2)]
        sockets = [
            await websockets.connect(f"{proc.ws_url}?token={token}")
            for token in (alice_token, alice_token, bob_token)
        ]
        try:
            # All three are live before the signal.
            sent_a = await api.send(alice, "a")
            sent_b = await api.send(bob, "b")
            for ws, sent in zip(sockets, (sent_a, sent_a, sent_b), strict=True):
                assert await recv_notification(ws) == sent

            stopping = asyncio.create_task(asyncio.to_thread(proc.stop, signal.SIGTERM, 15.0))
            closes = await asyncio.gather(*(expect_close(ws, within=10) for ws in sockets))
            exit_code = await asyncio.wait_for(stopping, 20)
        finally:
            for ws in sockets:
                await ws.close()
    hints = []
    for code, reason in closes:
        match = re.fullmatch(r"server restarting; retry_after_ms=(\d+)", reason)
        assert code == 1012 and match, (code, reason)
        hints.append(int(match[1]))
    # Each socket gets its own jittered delay within the configured spread (default 5 s).
    assert all(500 <= hint <= 5000 for hint in hints), hints
    # uvicorn re-raises SIGTERM after its graceful shutdown, as supervisors expect.
    assert exit_code in (0, -signal.SIGTERM), proc.log()
    assert "Finished server process" in proc.log()


async def test_restart_keeps_every_notification(server_factory, api_for):
    proc = server_factory()
    async with api_for(proc) as api:
        username, token = await api.user_with_token()
        sent = [await api.send(username, f"n{i}", data={"i": i}) for i in range(5)]
    assert [n["id"] for n in sent] == sorted(n["id"] for n in sent)

    await asyncio.to_thread(proc.restart)

    async with api_for(proc) as api:
        # The token signed before the restart is still good, and the store kept it all.
        async with websockets.connect(f"{proc.ws_url}?token={token}&since=0") as ws:
            replayed = [await recv_notification(ws) for _ in sent]
            assert replayed == sent
            # Nothing more was replayed: the next frame is a new live one.
            after = await api.send(username, "after restart")
            assert await recv_notification(ws) == after
        stored = await inbox(api, token)
        assert [n["id"] for n in stored["items"]] == [n["id"] for n in [*sent, after]][::-1]
        assert stored["unread_count"] == len(sent) + 1


async def test_dead_connection_is_dropped_by_pings(server_factory, api_for):
    proc = server_factory(NOTIFIER_WS_PING_INTERVAL="0.5", NOTIFIER_WS_PING_TIMEOUT="0.5")
    async with api_for(proc) as api:
        username, token = await api.user_with_token()
        url = f"{proc.ws_url}?token={token}"
        async with websockets.connect(url) as alive, websockets.connect(url) as dead:
            await wait_for_open_sockets(api.client, token, 2, within=5)
            # The client stops reading at the transport: the server's pings go unanswered.
            dead.transport.pause_reading()
            await wait_for_open_sockets(api.client, token, 1, within=10)
            # The live socket answers pings: after several more intervals it is still there
            # and still gets notifications.
            await asyncio.sleep(1.5)
            assert await open_sockets(api.client, token) == 1
            for i in range(3):
                sent = await api.send(username, f"still here {i}")
                assert await recv_notification(alive) == sent
            dead.transport.resume_reading()


def small_buffer_socket(port: int) -> socket.socket:
    """A connected TCP socket with a tiny receive buffer, so a paused reader fills up fast."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def read_forever(ws, into: list[dict]) -> None:
    while True:
        into.append(await recv_notification(ws, within=30))


async def wait_for_count(got: list[dict], count: int, readers: list[asyncio.Task]) -> None:
    async with asyncio.timeout(30):
        while len(got) < count:
            for task in readers:
                if task.done():
                    task.result()  # a reader failed: surface its error
            await asyncio.sleep(0.05)


async def test_slow_consumer_is_dropped_without_slowing_anyone(server_factory, api_for):
    proc = server_factory(NOTIFIER_WS_QUEUE_SIZE="8", NOTIFIER_WS_STUCK_TIMEOUT="2")
    # Each frame is ~20 KB. Send until the stuck socket is dropped: a few hundred fill the
    # kernel buffers of a typical host; the cap keeps a host with huge buffers bounded.
    min_count, max_count, check_every = 300, 1500, 50
    body = "b" * 4000
    data = {"blob": "d" * (15 * 1024)}
    async with api_for(proc) as api:
        (alice, alice_token), (bob, bob_token) = [await api.user_with_token() for _ in range(2)]
        stuck = await websockets.connect(
            f"{proc.ws_url}?token={alice_token}", sock=small_buffer_socket(proc.port)
        )
        alice_ws = await websockets.connect(f"{proc.ws_url}?token={alice_token}")
        bob_ws = await websockets.connect(f"{proc.ws_url}?token={bob_token}")
        alice_got: list[dict] = []
        bob_got: list[dict] = []
        readers = [
            asyncio.create_task(read_forever(alice_ws, alice_got)),
            asyncio.create_task(read_forever(bob_ws, bob_got)),
        ]
        try:
            await wait_for_open_sockets(api.client, alice_token, 2, within=5)
            stuck.transport.pause_reading()

            alice_sent: list[dict] = []
            bob_sent: list[dict] = []
            headers = await api.admin_headers()
            for i in range(max_count):
                # Every POST answers promptly although one of Alice's sockets is stuck.
                response = await asyncio.wait_for(
                    api.client.post(
                        "/notifications",
                        json={
                            "usernames": [alice, bob],
                            "title": f"n{i}",
                            "body": body,
                            "data": {**data, "i": i},
                        },
                        headers=headers,
                    ),
                    10,
                )
                assert response.status_code == 201, response.text
                by_user = {n["username"]: n for n in response.json()["notifications"]}
                alice_sent.append(by_user[alice])
                bob_sent.append(by_user[bob])
                if len(alice_sent) >= min_count and len(alice_sent) % check_every == 0:
                    if await open_sockets(api.client, alice_token) == 1:
                        break
                    for task in readers:
                        if task.done():
                            task.result()

            # The readers got everything, in id order, each exactly once.
            await wait_for_count(alice_got, len(alice_sent), readers)
            await wait_for_count(bob_got, len(bob_sent), readers)
            assert [n["id"] for n in alice_got] == [n["id"] for n in alice_sent]
            assert [n["id"] for n in bob_got] == [n["id"] for n in bob_sent]
            assert alice_got == alice_sent
            assert bob_got == bob_sent

            # The stuck socket was dropped by the server; Alice's reading socket stays.
            await wait_for_open_sockets(api.client, alice_token, 1, within=15)
            assert await open_sockets(api.client, bob_token) == 1

            # Resume reading: whatever arrives is an in-order prefix, then the socket ends.
            stuck.transport.resume_reading()
            stuck_got: list[dict] = []
            with pytest.raises(websockets.ConnectionClosed) as info:
                while True:
                    stuck_got.append(await recv_notification(stuck, within=15))
            alice_ids = [n["id"] for n in alice_sent]
            got_ids = [n["id"] for n in stuck_got]
            assert got_ids == alice_ids[: len(got_ids)], "stuck socket got frames out of order"
            assert len(got_ids) < len(alice_ids), "the stuck socket was never cut off"
            if info.value.rcvd is not None:
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (1013, "slow consumer")

            # Reconnecting with `since` catches up on exactly the rest, from the store.
            since = got_ids[-1] if got_ids else 0
            async with websockets.connect(
                f"{proc.ws_url}?token={alice_token}&since={since}"
            ) as again:
                rest = [await recv_notification(again) for _ in alice_ids[len(got_ids) :]]
                assert rest == alice_sent[len(got_ids) :]
                marker = await api.send(alice, "marker")
                assert await recv_notification(again) == marker
                await wait_for_count(alice_got, len(alice_sent) + 1, readers)
                assert alice_got[-1] == marker
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            stuck.transport.abort()  # a paused reader cannot finish a close handshake
            for ws in (stuck, alice_ws, bob_ws):
                await ws.close()


async def test_a_slow_reader_catches_up_from_the_store_without_a_disconnect(
    server_factory, api_for
):
    # A tiny queue and big frames: the paused reader's queue overflows many times over.
    proc = server_factory(NOTIFIER_WS_QUEUE_SIZE="4")
    data = {"blob": "d" * (15 * 1024)}
    async with api_for(proc) as api:
        username, token = await api.user_with_token()
        slow = await websockets.connect(
            f"{proc.ws_url}?token={token}&since=0", sock=small_buffer_socket(proc.port)
        )
        try:
            await wait_for_open_sockets(api.client, token, 1, within=5)
            slow.transport.pause_reading()
            headers = await api.admin_headers()
            sent = []
            for i in range(300):
                response = await api.client.post(
                    f"/users/{username}/notifications",
                    json={"title": f"n{i}", "data": {**data, "i": i}},
                    headers=headers,
                )
                assert response.status_code == 201
                sent.append(response.json())
            slow.transport.resume_reading()
            received = [await recv_notification(slow, within=15) for _ in sent]
            assert [n["id"] for n in received] == [n["id"] for n in sent]
            assert received == sent
            # Still the same open socket, back on live delivery.
            assert await open_sockets(api.client, token) == 1
            marker = await api.send(username, "marker")
            assert await recv_notification(slow) == marker
        finally:
            await slow.close()
