"""PostgreSQL + Redis for the bench: a database of its own per run, seeded like the SQLite
template, measured (connections opened, backends' CPU) and dropped afterwards.

The services are the ones on 127.0.0.1 (BENCH_POSTGRES_DSN, BENCH_REDIS_URL to change).
"""

import asyncio
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.servers import ADMIN, USER_PREFIX, Template, clean_env

POSTGRES_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def _query(dsn: str, statement: str, *args: object) -> object:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return await connection.fetchval(statement, *args)
    finally:
        await connection.close()


def _process_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


@dataclass
class BenchDatabase:
    name: str

    @property
    def url(self) -> str:
        base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{self.name}"

    @property
    def _dsn(self) -> str:
        return POSTGRES_DSN.rsplit("/", 1)[0] + "/" + self.name

    @classmethod
    def create(cls) -> "BenchDatabase":
        database = cls(f"notifier_bench_{secrets.token_hex(6)}")
        asyncio.run(_query(POSTGRES_DSN, f'CREATE DATABASE "{database.name}"'))
        return database

    def server_env(self) -> dict[str, str]:
        """What a `notifier serve` on this database and the local Redis needs."""
        return {
            "NOTIFIER_DATABASE_URL": self.url,
            "NOTIFIER_BROKER_URL": REDIS_URL,
            "NOTIFIER_BROKER_CHANNEL_PREFIX": f"notifier-bench-{self.name}",
        }

    def seed(self, template: Template, users: int, directory: Path) -> None:
        """Migrate, create the admin with the real CLI, and insert the bench users."""
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "notifier", "create-user", ADMIN, "--admin", "--password-stdin"],
            cwd=directory,
            env=clean_env(NOTIFIER_SECRET_KEY=template.secret_key, **self.server_env()),
            input=b"bench-admin-password\n",
            check=True,
            capture_output=True,
        )

        async def insert() -> None:
            connection = await asyncpg.connect(self._dsn, timeout=10)
            try:
                await connection.executemany(
                    "INSERT INTO users (username, password_hash, is_admin, created_at)"
                    " VALUES ($1, $2, false, now())",
                    [(f"{USER_PREFIX}{i:05d}", template.password_hash) for i in range(users)],
                )
                await connection.execute("ANALYZE")
            finally:
                await connection.close()

        asyncio.run(insert())

    def backend_pids(self) -> list[int]:
        async def pids() -> list[int]:
            connection = await asyncpg.connect(POSTGRES_DSN, timeout=10)
            try:
                rows = await connection.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.name
                )
            finally:
                await connection.close()
            return [row["pid"] for row in rows]

        return asyncio.run(pids())

    def backends_cpu_seconds(self) -> float:
        """CPU used so far by the backends now serving this database (the server's pool)."""
        return sum(_process_cpu_seconds(pid) for pid in self.backend_pids())

    def sessions(self, timeout: float = 30.0) -> int:
        """pg_stat_database.sessions once no backend is connected (each reports its
        session to the statistics at the latest when it exits)."""
        deadline = time.monotonic() + timeout
        while self.backend_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        value = asyncio.run(
            _query(
                POSTGRES_DSN,
                "SELECT coalesce(sessions, 0) FROM pg_stat_database WHERE datname = $1",
                self.name,
            )
        )
        assert isinstance(value, int)
        return value

    def drop(self) -> None:
        asyncio.run(_query(POSTGRES_DSN, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
