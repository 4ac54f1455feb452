"""One server made of several workers or processes: `/metrics` answers for all of them,
and the sockets-per-user limit and `open_sockets` count every process sharing Redis."""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import psutil
import pytest
import redis
import websockets
from clients import (
    bearer,
    connect,
    expect_close,
    lint_metrics,
    open_sockets,
    recv_notification,
    wait_for_open_sockets,
)
from conftest import ServerProcess, backend_env
from prometheus_client.parser import text_string_to_metric_families

from notifier.delivery.presence import RedisPresence
from notifier.server import shared_metrics_dir

pytestmark = pytest.mark.integration

TIMEOUT = 30
WORKERS_START_TIMEOUT = 120
SCRAPES = 20
TOO_MANY = (1008, "too many sockets")
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def worker_pids(serve: psutil.Process) -> set[int]:
    """The uvicorn workers: the children of `notifier serve` that listen on its port."""
    return {child.pid for child in serve.children() if _listens(child)}


def _listens(process: psutil.Process) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN for c in process.net_connections("tcp"))
    except psutil.NoSuchProcess:
        return False


def holder(workers: set[int], ws: websockets.ClientConnection) -> int:
    """The worker holding the server end of the client socket `ws`."""
    client_port = ws.local_address[1]
    for pid in workers:
        for conn in psutil.Process(pid).net_connections("tcp"):
            if conn.raddr and conn.raddr.port == client_port:
                return pid
    raise AssertionError(f"no worker holds the socket from port {client_port}")


async def metrics_text(base_url: str) -> str:
    # A new connection per scrape, so the kernel picks a worker each time.
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get("/metrics", headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    return response.text


async def scrape(base_url: str) -> tuple[dict[str, float], dict[str, set[str]]]:
    """Samples by `name{labels}` (without pid), and the pids each family names."""
    samples: dict[str, float] = {}
    pids: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(await metrics_text(base_url)):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "pid"}
            if "pid" in sample.labels:
                pids.setdefault(family.name, set()).add(sample.labels["pid"])
            rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            samples[f"{sample.name}{{{rendered}}}" if rendered else sample.name] = sample.value
    return samples, pids


def notifier_counters(samples: dict[str, float]) -> dict[str, float]:
    return {
        name: value
        for name, value in samples.items()
        if name.startswith("notifier_") and name.split("{")[0].endswith(COUNTER_SUFFIXES)
    }


def assert_never_decrease(previous: dict[str, float], current: dict[str, float]) -> None:
    for name, value in previous.items():
        assert current.get(name, 0) >= value, f"{name} went from {value} to {current.get(name)}"


@pytest.fixture
def two_workers(request, tmp_path_factory) -> Iterator[ServerProcess]:
    """`notifier serve --workers 2` on PostgreSQL and Redis, stopped with SIGTERM."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("workers"),
        env_overrides={
            **backend_env(request, "postgres"),
            "NOTIFIER_WS_MAX_SOCKETS_PER_USER": "64",
        },
        serve_args=["--workers", "2"],
    )
    try:
        # Each worker imports everything at once: slow on a busy 2-core machine.
        proc.start(timeout=WORKERS_START_TIMEOUT)
        yield proc
    finally:
        if proc.process is not None and proc.process.poll() is None:
            proc.stop(signal.SIGTERM, 30.0)


async def test_two_workers_report_the_whole_server_on_every_scrape(two_workers, api_for):
    proc = two_workers
    assert proc.process is not None
    serve = psutil.Process(proc.process.pid)
    async with api_for(proc) as api, AsyncExitStack() as stack:
        await eventually(lambda: len(worker_pids(serve)) == 2, TIMEOUT)
        workers = worker_pids(serve)
        metrics_dir = Path(psutil.Process(min(workers)).environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert await asyncio.to_thread(metrics_dir.is_dir)
        before, _ = await scrape(proc.base_url)

        # Sockets until both workers hold some (the kernel picks the worker).
        username, token = await api.user_with_token()
        sockets: list[websockets.ClientConnection] = []
        held_by: dict[int, list[websockets.ClientConnection]] = {pid: [] for pid in workers}
        while len(sockets) < 6 or not all(held_by.values()):
            assert len(sockets) < 40, f"every socket went to one worker: {held_by}"
            ws = await connect(api, token, stack, since=0)
            sockets.append(ws)
            held_by[holder(workers, ws)].append(ws)
        sends = 3
        for i in range(sends):
            await api.send(username, f"w{i}")
        for ws in sockets:
            assert [(await recv_notification(ws))["title"] for _ in range(sends)] == [
                f"w{i}" for i in range(sends)
            ]

        previous = notifier_counters(before)
        served_by: set[str] = set()
        scrapes = 0
        # 20 scrapes, and more (bounded) until each worker has answered one.
        while scrapes < SCRAPES or len(served_by) < 2:
            assert scrapes < 10 * SCRAPES, f"only {served_by} answered"
            scrapes += 1
            samples, pids = await scrape(proc.base_url)
            current = notifier_counters(samples)
            assert_never_decrease(previous, current)
            previous = current

            def moved(name: str, samples: dict[str, float] = samples) -> float:
                return samples.get(name, 0) - before.get(name, 0)

            assert samples["notifier_open_sockets"] == len(sockets)
            assert samples["notifier_broker_up"] == 1
            assert moved("notifier_sockets_opened_total") == len(sockets)
            assert moved("notifier_notifications_stored_total") == sends
            assert moved('notifier_deliveries_total{path="live"}') == sends * len(sockets)
            assert moved("notifier_delivery_latency_seconds_count") >= 1
            # Process metrics of every live worker, Python's of the worker that answered.
            assert pids["process_resident_memory_bytes"] == {str(pid) for pid in workers}
            assert samples["process_open_fds"] > 0 and "python_info" in str(samples)
            (answered,) = pids["python_gc_objects_collected"]
            served_by.add(answered)
        assert served_by == {str(pid) for pid in workers}
        lint_metrics(await metrics_text(proc.base_url))

        # SIGKILL one worker: its sockets drop and stop counting; its counts stay.
        victim = min(workers)
        dropped = held_by[victim]
        psutil.Process(victim).kill()
        for ws in dropped:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            while True:
                samples, pids = await scrape(proc.base_url)
                current = notifier_counters(samples)
                assert_never_decrease(previous, current)
                previous = current
                if samples["notifier_open_sockets"] == len(sockets) - len(dropped):
                    break
                await asyncio.sleep(0.1)
        assert samples["notifier_sockets_opened_total"] - before.get(
            "notifier_sockets_opened_total", 0
        ) == len(sockets)
        assert str(victim) not in pids["process_resident_memory_bytes"]

    # The supervisor removes the directory when it stops.
    assert proc.stop(signal.SIGTERM, 30.0) == 0
    assert not await asyncio.to_thread(metrics_dir.exists)


async def test_an_inherited_multiprocess_dir_is_ignored(server_factory, api_for, tmp_path):
    inherited = tmp_path / "elsewhere"
    inherited.mkdir()
    proc = server_factory(PROMETHEUS_MULTIPROC_DIR=str(inherited))
    async with api_for(proc) as api:
        samples, pids = await scrape(proc.base_url)
        assert samples["notifier_open_sockets"] == 0 and pids == {}
        assert (await api.client.get("/healthz")).status_code == 200
    assert list(inherited.iterdir()) == []


LIMITED = {"NOTIFIER_WS_MAX_SOCKETS_PER_USER": "2", "NOTIFIER_PRESENCE_TTL": "2"}


async def test_socket_limit_and_counts_span_processes(server_factory, api_for):
    first = server_factory(backend_name="postgres", **LIMITED)
    second = server_factory(like=first, **LIMITED)
    async with api_for(first) as one, api_for(second) as two, AsyncExitStack() as stack:
        _username, token = await one.user_with_token()
        _other, other_token = await one.user_with_token()
        await connect(one, token, stack)
        on_first = await connect(one, token, stack)
        # Both of the user's sockets are on the first process; the second refuses a third.
        async with websockets.connect(f"{second.ws_url}?token={token}") as refused:
            assert await expect_close(refused) == TOO_MANY
        for api in (one, two):
            assert await open_sockets(api.client, token) == 2
            assert await open_sockets(api.client, other_token) == 0
        # Another user is not limited by them.
        await connect(two, other_token, stack)
        await connect(one, other_token, stack)
        assert await open_sockets(two.client, other_token) == 2

        # A clean close frees its slot for any process at once.
        await on_first.close()
        await wait_for_open_sockets(two.client, token, 1)
        on_second = await connect(two, token, stack)
        assert await open_sockets(one.client, token) == 2
        async with websockets.connect(f"{first.ws_url}?token={token}") as refused:
            assert await expect_close(refused) == TOO_MANY

        # SIGKILL the first process: its sockets stop counting within the ttl.
        killed_at = time.monotonic()
        await asyncio.to_thread(first.stop, signal.SIGKILL)
        while await open_sockets(two.client, token) != 1:
            assert time.monotonic() - killed_at < 2 + 3, "still counted past the ttl (+3 s)"
            await asyncio.sleep(0.05)
        assert await open_sockets(two.client, other_token) == 1
        await connect(two, token, stack)
        assert await open_sockets(two.client, token) == 2
        async with websockets.connect(f"{second.ws_url}?token={token}") as refused:
            assert await expect_close(refused) == TOO_MANY
        await on_second.close()
        await wait_for_open_sockets(two.client, token, 1)

        async with httpx.AsyncClient(base_url=second.base_url) as client:
            response = await client.get("/users/me", headers=bearer(token))
        assert response.json()["open_sockets"] == 1


async def wait_for_count(presence: RedisPresence, username: str, expected: int) -> None:
    deadline = time.monotonic() + 10
    count = await presence.count(username)
    while count != expected:
        assert time.monotonic() < deadline, f"count stayed at {count}, expected {expected}"
        await asyncio.sleep(0.05)
        count = await presence.count(username)


async def eventually(check: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.1)


async def test_presence_survives_redis_losing_its_data_and_going_away(redis_server):
    first = RedisPresence(redis_server.url, "presence-test", ttl=1.0, timeout=0.5)
    second = RedisPresence(redis_server.url, "presence-test", ttl=1.0, timeout=0.5)
    await first.start()
    await second.start()
    try:
        assert [await first.join("u", 3) for _ in range(2)] == [True, True]
        assert await second.join("u", 3)
        assert not await second.join("u", 3) and not await first.join("u", 3)
        assert await second.count("u") == 3 and await first.count("v") == 0

        # Redis restarts empty: each process writes its counts again (at once or at its
        # next heartbeat), and the limit holds across them again.
        redis.Redis(port=redis_server.port).flushall()
        await wait_for_count(first, "u", 3)
        await wait_for_count(second, "u", 3)
        assert not await second.join("u", 3)

        # Redis is away: each process counts its own sockets only.
        await asyncio.to_thread(redis_server.kill)
        assert await first.count("u") == 2 and await second.count("u") == 1
        assert await first.join("u", 3)
        await first.leave("u")
        assert await second.join("u", 3)

        # Back, empty: the heartbeats write both processes' counts again.
        await asyncio.to_thread(redis_server.start)
        await wait_for_count(first, "u", 4)
        await second.leave("u")
        await wait_for_count(first, "u", 3)
    finally:
        await first.stop()
        await second.stop()
    # Stopped processes stop counting at once.
    third = RedisPresence(redis_server.url, "presence-test", ttl=1.0)
    await third.start()
    try:
        assert await third.count("u") == 0
    finally:
        await third.stop()


def test_serve_makes_a_fresh_metrics_dir_and_removes_orphaned_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    orphaned = tmp_path / f"notifier-metrics-{ended.pid}-abc"
    running = tmp_path / f"notifier-metrics-{os.getpid()}-def"
    unrelated = tmp_path / "notifier-metrics-notapid"
    for directory in (orphaned, running, unrelated):
        directory.mkdir()
    with shared_metrics_dir() as directory:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == directory
        assert Path(directory).parent == tmp_path and not list(Path(directory).iterdir())
        assert not orphaned.exists() and running.exists() and unrelated.exists()
    assert not Path(directory).exists()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
