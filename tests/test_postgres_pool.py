"""The PostgreSQL connection pool: its size is honoured, a burst of requests opens no new
connections, and killed backends (a restarted or failed-over server) cost no request."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import asyncpg
import pytest
from clients import Collector, connect, inbox
from conftest import POSTGRES_DSN, USER_PASSWORD, ServerProcess, backend_env
from pydantic import ValidationError

from notifier.db.engine import PoolOptions, create_engine
from notifier.runtime import pool_options
from notifier.settings import Settings

pytestmark = pytest.mark.integration

POOL_SIZE = 4
MAX_OVERFLOW = 2
STARTUP_SESSIONS = 3
"""`serve` before it answers: the migration's engine, the admin's creation, the pool's first."""


def database_name(proc: ServerProcess) -> str:
    return proc.env()["NOTIFIER_DATABASE_URL"].rsplit("/", 1)[1]


@pytest.fixture
async def admin_connection(postgres) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the maintenance database, for pg_stat_* and pg_terminate_backend."""
    connection = await asyncpg.connect(POSTGRES_DSN, timeout=5)
    yield connection
    await connection.close()


@pytest.fixture
def start_server(request, tmp_path_factory) -> AsyncIterator:
    started: list[ServerProcess] = []

    def start(max_overflow: int = MAX_OVERFLOW) -> ServerProcess:
        proc = ServerProcess(
            tmp_path_factory.mktemp("pool"),
            env_overrides={
                **backend_env(request, "postgres"),
                "NOTIFIER_DATABASE_POOL_SIZE": str(POOL_SIZE),
                "NOTIFIER_DATABASE_MAX_OVERFLOW": str(max_overflow),
            },
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.process is not None and proc.process.poll() is None:
            proc.stop()


async def backends(connection: asyncpg.Connection, database: str) -> int:
    return await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
    )


async def sessions_opened(connection: asyncpg.Connection, database: str) -> int:
    """pg_stat_database.sessions, once every backend of `database` has exited (a backend
    reports its session to the statistics at the latest when it exits)."""
    async with asyncio.timeout(15):
        while await backends(connection, database):  # noqa: ASYNC110 (polling PostgreSQL)
            await asyncio.sleep(0.05)
    await connection.execute("SELECT pg_stat_clear_snapshot()")
    return await connection.fetchval(
        "SELECT coalesce(sessions, 0) FROM pg_stat_database WHERE datname = $1", database
    )


@pytest.mark.parametrize("max_overflow", [0, MAX_OVERFLOW])
async def test_pool_size_is_honoured_and_a_burst_opens_no_connections(
    start_server, admin_connection, api_for, max_overflow: int
):
    proc = start_server(max_overflow)
    database = database_name(proc)
    proc.start()  # migrations and the admin's creation each open and close one engine
    async with api_for(proc) as api:
        username = await api.create_user()
        token = await api.login(username, USER_PASSWORD)
        headers = await api.admin_headers()
        limit = asyncio.Semaphore(32)

        async def request(i: int) -> int:
            async with limit:
                if i % 3 == 2:
                    response = await api.client.get(
                        "/notifications", headers={"Authorization": f"Bearer {token}"}
                    )
                else:
                    response = await api.client.post(
                        f"/users/{username}/notifications", json={"title": f"n{i}"}, headers=headers
                    )
                return response.status_code

        most = 0
        burst = asyncio.gather(*(request(i) for i in range(300)))
        while not burst.done():
            most = max(most, await backends(admin_connection, database))
            await asyncio.sleep(0.01)
        statuses = await burst
        assert sorted(set(statuses)) == [200, 201]
        assert statuses.count(201) == 200
        assert most <= POOL_SIZE + max_overflow, "the pool never exceeds size + overflow"
        # Overflow connections are closed when returned; the pool keeps its size.
        assert await backends(admin_connection, database) <= POOL_SIZE
        page = await inbox(api, token, limit=200)
        assert len(page["items"]) == page["unread_count"] == 200
    proc.stop()
    opened = await sessions_opened(admin_connection, database)
    assert opened > STARTUP_SESSIONS
    if max_overflow == 0:
        # 300 requests open nothing past the pool (churn would show here as one session
        # per request or two). Overflow connections, by design, are closed whenever they
        # are returned to a full pool and opened again at the next peak: README says so.
        assert opened <= STARTUP_SESSIONS + POOL_SIZE, opened


async def test_killed_backends_cost_no_request(start_server, admin_connection, api_for):
    proc = start_server()
    database = database_name(proc)
    proc.start()
    async with api_for(proc) as api, AsyncExitStack() as stack:
        username = await api.create_user()
        token = await api.login(username, USER_PASSWORD)
        live = Collector(await connect(api, token, stack, since=0))
        first = [(await api.send(username, title=f"before{i}"))["id"] for i in range(5)]
        await live.wait_for(5)
        assert await backends(admin_connection, database) > 0

        # What a PostgreSQL restart or failover does to every pooled connection.
        killed = await admin_connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
        assert killed > 0
        async with asyncio.timeout(10):
            while await backends(admin_connection, database):  # noqa: ASYNC110
                await asyncio.sleep(0.02)

        headers = await api.admin_headers()
        responses = await asyncio.gather(
            *(
                api.client.post(
                    f"/users/{username}/notifications", json={"title": f"after{i}"}, headers=headers
                )
                for i in range(12)
            ),
            *(
                api.client.get("/notifications", headers={"Authorization": f"Bearer {token}"})
                for _ in range(4)
            ),
        )
        assert [r.status_code for r in responses] == [201] * 12 + [200] * 4, [
            r.text for r in responses
        ]
        after = sorted(r.json()["id"] for r in responses[:12])
        assert await api.login(username, USER_PASSWORD)

        # Delivered live once each, in id order, and replayed from the database.
        ids = await live.wait_for(17)
        assert ids == first + after
        await live.stop()
        replay = Collector(await connect(api, token, stack, since=0))
        assert await replay.wait_for(17) == first + after
        await replay.stop()
        assert 0 < await backends(admin_connection, database) <= POOL_SIZE + MAX_OVERFLOW
    assert "Traceback" not in proc.log(), proc.log()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("database_pool_size", 0),
        ("database_max_overflow", -1),
        ("database_pool_recycle", 0),
        ("database_pool_timeout", 0),
    ],
)
def test_pool_settings_out_of_range_are_refused(name: str, value: int) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(secret_key="x" * 32, **{name: value})


def test_pool_settings_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("NOTIFIER_DATABASE_POOL_SIZE", "7")
    monkeypatch.setenv("NOTIFIER_DATABASE_MAX_OVERFLOW", "3")
    monkeypatch.setenv("NOTIFIER_DATABASE_POOL_RECYCLE", "60")
    monkeypatch.setenv("NOTIFIER_DATABASE_PGBOUNCER", "true")
    options = pool_options(Settings(secret_key="x" * 32, _env_file=None))
    assert options == PoolOptions(size=7, max_overflow=3, recycle=60.0, pgbouncer=True)
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", options)
    assert engine.pool.size() == 7
    assert engine.pool._max_overflow == 3
    assert engine.pool._recycle == 60.0
