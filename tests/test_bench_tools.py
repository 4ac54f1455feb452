"""The benchmark's own instruments (bench/), checked against a real server.

`make bench` trusts its small WebSocket and HTTP clients to see every frame, inflate
compressed ones and keep a socket alive, and its table to divide the right numbers.
"""

import asyncio
import json

import pytest
from clients import bearer

from bench import profile, report, wsclient
from bench.httpclient import HttpPool

pytestmark = pytest.mark.integration


class Frames:
    """The `on_message` callback of a bench client: keeps every message, wakes waiters."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self._arrived = asyncio.Event()

    def __call__(self, _client: wsclient.WsClient, payload: bytes) -> None:
        self.items.append(payload)
        self._arrived.set()

    async def wait_for(self, count: int, within: float = 5.0) -> list[dict]:
        async with asyncio.timeout(within):
            while len(self.items) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return [json.loads(item)["notification"] for item in self.items]


async def test_ws_client_receives_notifications_and_close_reasons(server, api):
    user, token = await api.user_with_token()
    frames = Frames()
    client = await wsclient.connect("127.0.0.1", server.port, f"/ws?token={token}", frames)
    try:
        sent = [await api.send(user, title=f"n{i}", data={"i": i}) for i in range(3)]
        received = await frames.wait_for(3)
        assert [n["id"] for n in received] == [n["id"] for n in sent]
        assert [n["data"] for n in received] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert client.open and not client.deflate
    finally:
        client.drop()

    rejected = await wsclient.connect(
        "127.0.0.1", server.port, "/ws?token=not-a-token", lambda _c, _p: None
    )
    await asyncio.wait_for(rejected.closed, 5)
    assert (rejected.close_code, rejected.close_reason) == (1008, "invalid token")


async def test_ws_client_inflates_deflate_frames_and_answers_pings(server_factory, api_for):
    proc = server_factory(
        NOTIFIER_WS_PER_MESSAGE_DEFLATE="true",
        NOTIFIER_WS_PING_INTERVAL="0.2",
        NOTIFIER_WS_PING_TIMEOUT="0.5",
    )
    async with api_for(proc) as api:
        user, token = await api.user_with_token()
        frames = Frames()
        client = await wsclient.connect(
            "127.0.0.1", proc.port, f"/ws?token={token}", frames, offer_deflate=True
        )
        try:
            assert client.deflate
            # Compressible bodies, twice: the second frame depends on the first's context.
            bodies = ["alpha " * 300, "alpha beta " * 300]
            for body in bodies:
                await api.send(user, title="long", body=body)
            assert [n["body"] for n in await frames.wait_for(2)] == bodies
            # Several ping intervals pass: a client that did not answer would be dropped.
            await asyncio.sleep(1.5)
            assert client.open
            await api.send(user, title="still here")
            await frames.wait_for(3)
        finally:
            client.drop()


async def test_http_pool_reuses_a_bounded_set_of_connections(server, api):
    pool = HttpPool("127.0.0.1", server.port, 2, bearer(await api.admin_token()))
    try:
        responses = await asyncio.gather(*(pool.request("GET", "/healthz") for _ in range(10)))
        assert [r.status for r in responses] == [200] * 10
        assert json.loads(responses[0].body) == {"status": "ok"}
        assert len(pool._open) <= 2
        missing = await pool.request("POST", "/users/nobody-here/notifications", b'{"title":"x"}')
        assert missing.status == 404
    finally:
        pool.close()


def test_table_divides_notifier_by_baseline_and_checks_the_target():
    results = {
        "S3": {
            "notifier": {"back_to_back": {"deliveries_per_s": 50000.0}},
            "baseline": {"back_to_back": {"deliveries_per_s": 20000.0}},
        }
    }
    lines = report.table(report.s3_rows("S3"), results)
    deliveries = next(line for line in lines if line["metric"].startswith("deliveries/s"))
    assert (deliveries["ratio"], deliveries["met"]) == (2.5, True)
    markdown = report.markdown(lines, ["header"])
    assert "| S3 | deliveries/s (broadcasts back to back) | 50,000 | 20,000 | 2.50x |" in markdown


def test_postgres_rows_show_the_ratio_to_sqlite_and_connections_opened():
    label = report.POSTGRES_LABEL
    results = {
        "S3": {
            "notifier": {"back_to_back": {"deliveries_per_s": 40000.0}},
            label: {
                "back_to_back": {"deliveries_per_s": 30000.0},
                "vs_sqlite": 0.75,
                "database": {"sessions": 2 * report.POOL_SIZE + 1, "backends_cpu_s": 1.5},
            },
            "baseline": {"back_to_back": {"deliveries_per_s": 20000.0}},
        }
    }
    lines = report.table(report.postgres_rows("S3", "deliveries/s"), results)
    # Only the PostgreSQL run has these rows, judged on their own value, not on a ratio.
    assert [line["metric"] for line in lines] == [
        f"deliveries/s: PostgreSQL + Redis / SQLite, same run [{label}]",
        f"database connections opened during the run [{label}]",
        f"database backends' CPU during the run (s) [{label}]",
    ]
    assert [(line["notifier"], line["ratio"], line["met"]) for line in lines] == [
        (0.75, None, False),
        (2 * report.POOL_SIZE + 1, None, False),
        (1.5, None, None),
    ]


def test_profile_summary_counts_own_and_total_samples(tmp_path):
    stacks = tmp_path / "stacks.txt"
    stacks.write_text(
        "thread (1): MainThread;main (app.py:1);send (hub.py:10) 3\n"
        "thread (1): MainThread;main (app.py:1);encode (frames.py:5) 1\n"
        "thread (2): Thread-1 (worker);wait (threading.py:3) 4\n"
    )
    summary = profile.summarize(stacks)
    assert (summary["samples"], summary["main_thread_samples"]) == (8, 4)
    assert summary["threads"] == {"MainThread": 4, "Thread-1 (worker)": 4}
    assert summary["own"][0] == ("send (hub.py:10)", 3, 75.0)
    assert summary["total"][0] == ("main (app.py:1)", 4, 100.0)
    assert summary["all_threads_own"][0] == ("wait (threading.py:3)", 4, 50.0)
