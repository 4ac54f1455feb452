"""Several processes on one PostgreSQL database and one Redis: fan-out across them, id order
under concurrent sends, idempotent retries, `--workers`, and a Redis outage."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from contextlib import AsyncExitStack

import pytest
import websockets
from clients import Collector, connect, wait_for_status
from conftest import TEST_SECRET

pytestmark = pytest.mark.integration

# Two or three servers start per test; give them room on a loaded machine.
TIMEOUT = 30


@pytest.fixture
async def cluster(server_factory, api_for):
    """Two `notifier serve` processes on one PostgreSQL database and one Redis."""
    first = server_factory(backend_name="postgres")
    second = server_factory(like=first)
    async with api_for(first) as one, api_for(second) as two, AsyncExitStack() as stack:
        yield one, two, stack


async def post(api, path: str, body: dict, key: str | None = None):
    headers = await api.admin_headers()
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return await api.client.post(path, json=body, headers=headers)


async def test_two_processes_deliver_to_every_socket_once_in_id_order(cluster):
    one, two, stack = cluster
    username, token = await one.user_with_token()
    other, other_token = await two.user_with_token()
    sockets = [
        Collector(await connect(one, token, stack, since=0)),
        Collector(await connect(two, token, stack, since=0)),
        Collector(await connect(two, token, stack, since=0)),
    ]
    bystander = Collector(await connect(one, other_token, stack, since=0))

    # Concurrent POSTs, alternating between the processes.
    responses = await asyncio.gather(
        *(
            post((one, two)[i % 2], f"/users/{username}/notifications", {"title": f"n{i}"})
            for i in range(40)
        )
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    expected = sorted(r.json()["id"] for r in responses)
    broadcast = await post(two, "/notifications/broadcast", {"title": "everyone"})
    assert broadcast.status_code == 201

    for collector in sockets:
        ids = await collector.wait_for(len(expected) + 1, TIMEOUT)
        assert ids[:-1] == expected, "every notification once, in id order"
        assert collector.notifications[-1]["title"] == "everyone"
    await bystander.wait_for(1, TIMEOUT)
    assert [n["title"] for n in bystander.notifications] == ["everyone"]
    assert {n["username"] for n in bystander.notifications} == {other}
    await asyncio.sleep(0.5)  # nothing more arrives afterwards
    assert [len(c.ids) for c in sockets] == [len(expected) + 1] * 3
    for collector in [*sockets, bystander]:
        await collector.stop()


async def test_concurrent_sends_through_two_processes_replay_gap_free(cluster):
    one, two, stack = cluster
    username, token = await one.user_with_token()
    live = Collector(await connect(two, token, stack, since=0))
    limit = asyncio.Semaphore(24)

    async def send(i: int) -> int:
        async with limit:
            api = (one, two)[i % 2]
            response = await post(api, f"/users/{username}/notifications", {"title": f"c{i}"})
            assert response.status_code == 201, response.text
            return response.json()["id"]

    ids = sorted(await asyncio.gather(*(send(i) for i in range(200))))
    assert len(set(ids)) == 200
    assert await live.wait_for(200, TIMEOUT) == ids

    # A client that saw up to the middle id resumes with exactly the rest, in order.
    middle = ids[99]
    for api in (one, two):
        resumed = Collector(await connect(api, token, stack, since=middle))
        assert await resumed.wait_for(100, TIMEOUT) == ids[100:]
        await resumed.stop()
    await live.stop()


async def test_idempotent_retries_across_processes_store_and_deliver_once(cluster):
    one, two, stack = cluster
    username, token = await one.user_with_token()
    socket = Collector(await connect(one, token, stack, since=0))
    path = f"/users/{username}/notifications"
    key = uuid.uuid4().hex

    # The same keyed POST, at once to both processes, then again one after the other.
    concurrent = await asyncio.gather(
        post(one, path, {"title": "once"}, key), post(two, path, {"title": "once"}, key)
    )
    later = [
        await post(two, path, {"title": "once"}, key),
        await post(one, path, {"title": "once"}, key),
    ]
    responses = [*concurrent, *later]
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.content for r in responses}) == 1, "every retry gets the first body"
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert replayed.count("true") == 3 and replayed.count(None) == 1

    multi_key = uuid.uuid4().hex
    multi = [
        await post(api, "/notifications", {"usernames": [username], "title": "m"}, multi_key)
        for api in (two, one)
    ]
    assert multi[0].content == multi[1].content and multi[1].status_code == 201

    marker = await post(two, path, {"title": "marker"})
    await socket.wait_for(3, TIMEOUT)
    await asyncio.sleep(0.5)
    assert [n["title"] for n in socket.notifications] == ["once", "m", "marker"]
    assert socket.ids[-1] == marker.json()["id"]
    await socket.stop()


async def test_workers_flag_runs_several_workers_behind_one_port(server_factory, api_for):
    proc = server_factory(backend_name="postgres", args=["--workers", "2"])
    async with api_for(proc) as api, AsyncExitStack() as stack:
        username, token = await api.user_with_token()
        # Connections spread over the workers; each socket must get everything once.
        sockets = [Collector(await connect(api, token, stack, since=0)) for _ in range(8)]
        sent = [
            (await post(api, f"/users/{username}/notifications", {"title": f"w{i}"})).json()["id"]
            for i in range(10)
        ]
        for collector in sockets:
            assert await collector.wait_for(10, TIMEOUT) == sent

        # SIGTERM to the supervisor: every worker closes its sockets with the reconnect hint.
        stopping = asyncio.create_task(asyncio.to_thread(proc.stop, signal.SIGTERM, 20.0))
        for collector in sockets:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(collector.task, TIMEOUT)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1012
            assert re.fullmatch(r"server restarting; retry_after_ms=\d+", info.value.rcvd.reason)
        await stopping
    workers = {line for line in proc.log().splitlines() if "Started server process" in line}
    assert len(workers) == 2, proc.log()


def test_several_workers_with_the_memory_broker_refuse_to_start(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")},
        "NOTIFIER_SECRET_KEY": TEST_SECRET,
        "NOTIFIER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'n.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "notifier", "serve", "--workers", "2", "--port", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "NOTIFIER_BROKER_URL=redis://" in result.stderr
    assert not (tmp_path / "n.db").exists(), "nothing was migrated or started"


async def test_redis_outage_loses_nothing_for_connected_sockets(
    server_factory, api_for, redis_server
):
    first = server_factory(backend_name="postgres", NOTIFIER_BROKER_URL=redis_server.url)
    second = server_factory(like=first)
    async with api_for(first) as one, api_for(second) as two, AsyncExitStack() as stack:
        username, token = await one.user_with_token()
        sockets = [
            Collector(await connect(one, token, stack, since=0)),
            Collector(await connect(two, token, stack, since=0)),
        ]
        path = f"/users/{username}/notifications"
        sent = []

        async def send(api, title: str) -> None:
            response = await post(api, path, {"title": title})
            assert response.status_code == 201, response.text
            sent.append(response.json()["id"])

        for i in range(4):
            await send((one, two)[i % 2], f"before-{i}")
        for collector in sockets:
            assert await collector.wait_for(4, TIMEOUT) == sent

        await asyncio.to_thread(redis_server.kill)
        for api in (one, two):
            body = await wait_for_status(api.client, "/readyz", 503)
            assert body["broker"] == "down" and body["database"] == "up"
            assert (await api.client.get("/healthz")).status_code == 200
        # Sends keep being stored and answered while the broker is away.
        for i in range(10):
            await send((one, two)[i % 2], f"during-{i}")

        await asyncio.to_thread(redis_server.start)
        for api in (one, two):
            body = await wait_for_status(api.client, "/readyz", 200)
            assert body == {"status": "ready", "database": "up", "broker": "up"}
        for i in range(4):
            await send((one, two)[i % 2], f"after-{i}")

        expected = sorted(sent)
        for collector in sockets:
            # Every stored notification, once, in order, on the same socket (no reconnect).
            assert await collector.wait_for(len(expected), TIMEOUT) == expected
        await asyncio.sleep(0.5)
        assert [c.ids for c in sockets] == [expected, expected]
        for collector in sockets:
            assert not collector.task.done(), "the socket stayed open through the outage"
            await collector.stop()
