"""Behind a real PgBouncer in transaction mode (NOTIFIER_DATABASE_PGBOUNCER=true): several
migrators at once, two servers, login, sends, socket delivery and replay.

Transaction pooling gives each transaction whichever server connection is free, so
prepared statements and session-level locks do not survive from one transaction to the
next. The bouncer here has fewer server connections than the two servers have clients,
so they share server connections all the time.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from clients import Collector, connect
from conftest import POSTGRES_DSN, ServerProcess, free_port, service_missing

pytestmark = pytest.mark.integration

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
SERVER_CONNECTIONS = 3


@dataclass
class PgBouncer:
    workdir: Path
    port: int
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        return (self.workdir / "pgbouncer.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def pgbouncer(postgres) -> Iterator[PgBouncer]:
    if not os.access(PGBOUNCER, os.X_OK):
        service_missing("pgbouncer", FileNotFoundError(PGBOUNCER))
    # Not under pytest's private tmp: pgbouncer refuses to run as root and drops to the
    # postgres user, who must read its files.
    with tempfile.TemporaryDirectory(prefix="notifier-pgbouncer-") as name:
        workdir = Path(name)
        workdir.chmod(0o755)
        yield from _run_pgbouncer(workdir)


def _run_pgbouncer(workdir: Path) -> Iterator[PgBouncer]:
    port = free_port()
    host, pg_port = POSTGRES_DSN.split("@", 1)[1].split("/", 1)[0].split(":")
    (workdir / "userlist.txt").write_text('"postgres" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={pg_port}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {workdir / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {SERVER_CONNECTIONS}\n"
        "max_client_conn = 200\n"
    )
    for path in workdir.iterdir():
        path.chmod(0o644)
    user = ["-u", "postgres"] if os.geteuid() == 0 else []
    with (workdir / "pgbouncer.log").open("ab") as log:
        process = subprocess.Popen(
            [PGBOUNCER, *user, str(workdir / "pgbouncer.ini")], stdout=log, stderr=log
        )
    bouncer = PgBouncer(workdir, port, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"pgbouncer did not start:\n{bouncer.log()}")
            time.sleep(0.05)
    yield bouncer
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def database(postgres, pgbouncer: PgBouncer) -> str:
    """A fresh database, reached through the bouncer."""
    return pgbouncer.url(postgres.create().rsplit("/", 1)[1])


def bouncer_env(database: str) -> dict[str, str]:
    return {
        "NOTIFIER_DATABASE_URL": database,
        "NOTIFIER_DATABASE_PGBOUNCER": "true",
        "NOTIFIER_DATABASE_POOL_SIZE": "8",
    }


def test_several_migrators_at_once_behind_pgbouncer(database: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(bouncer_env(database), NOTIFIER_SECRET_KEY="k" * 32)
    migrators = [
        subprocess.Popen(
            [sys.executable, "-m", "notifier", "migrate"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [migrator.communicate(timeout=120)[0].decode() for migrator in migrators]
    assert [migrator.returncode for migrator in migrators] == [0] * 4, outputs

    async def schema() -> tuple[str, int]:
        direct = POSTGRES_DSN.rsplit("/", 1)[0] + "/" + database.rsplit("/", 1)[1]
        connection = await asyncpg.connect(direct, timeout=5)
        try:
            version = await connection.fetch("SELECT version_num FROM alembic_version")
            tables = await connection.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
        finally:
            await connection.close()
        assert len(version) == 1, "one migrator ran, the others found the schema current"
        return version[0]["version_num"], tables

    version, tables = asyncio.run(schema())
    assert version and tables > 3


async def test_serve_login_send_deliver_and_replay_behind_pgbouncer(
    database: str, redis_url: str, tmp_path_factory, api_for, pgbouncer: PgBouncer
) -> None:
    prefix = f"notifier-test-{uuid.uuid4().hex[:12]}"
    servers = [
        ServerProcess(
            tmp_path_factory.mktemp("bounced"),
            env_overrides={
                **bouncer_env(database),
                "NOTIFIER_BROKER_URL": redis_url,
                "NOTIFIER_BROKER_CHANNEL_PREFIX": prefix,
            },
        )
        for _ in range(2)
    ]
    try:
        for proc in servers:
            proc.start()  # each migrates first: the lock and the schema check, bounced
        async with (
            api_for(servers[0]) as one,
            api_for(servers[1]) as two,
            AsyncExitStack() as stack,
        ):
            username, token = await one.user_with_token()
            _other, other_token = await two.user_with_token()
            live = [
                Collector(await connect(one, token, stack, since=0)),
                Collector(await connect(two, token, stack, since=0)),
            ]
            bystander = Collector(await connect(two, other_token, stack, since=0))
            limit = asyncio.Semaphore(16)

            async def send(i: int) -> int:
                api = (one, two)[i % 2]
                async with limit:
                    response = await api.client.post(
                        f"/users/{username}/notifications",
                        json={"title": f"n{i}", "data": {"i": i}},
                        headers=await api.admin_headers(),
                    )
                assert response.status_code == 201, response.text
                return response.json()["id"]

            # More clients than server connections: statements of both servers' pools
            # run on the same few server connections.
            ids = sorted(await asyncio.gather(*(send(i) for i in range(60))))
            broadcast = await two.client.post(
                "/notifications/broadcast",
                json={"title": "everyone"},
                headers=await two.admin_headers(),
            )
            assert broadcast.status_code == 201, broadcast.text
            for collector in live:
                received = await collector.wait_for(61, within=30)
                assert received[:60] == ids, "every send once, in id order"
                assert collector.notifications[-1]["title"] == "everyone"
                await collector.stop()
            await bystander.wait_for(1, within=30)
            assert [n["title"] for n in bystander.notifications] == ["everyone"]
            await bystander.stop()

            replay = Collector(await connect(one, token, stack, since=ids[29]))
            assert (await replay.wait_for(31, within=30))[:30] == ids[30:]
            await replay.stop()
            page = await two.client.get(
                "/notifications",
                params={"limit": 100},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert page.status_code == 200
            assert page.json()["unread_count"] == 61
            assert {n["username"] for n in page.json()["items"]} == {username}
        for proc in servers:
            assert "Traceback" not in proc.log(), proc.log()
        assert "prepared statement" not in pgbouncer.log()
    finally:
        for proc in servers:
            if proc.process is not None and proc.process.poll() is None:
                proc.stop()
