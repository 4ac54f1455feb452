"""The Alembic migrations on SQLite and PostgreSQL: both directions, data carried over,
and several processes migrating one database at once."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from conftest import TEST_SECRET, backend_env
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from notifier.migrate import alembic_config

pytestmark = [pytest.mark.integration, pytest.mark.backends]


@pytest.fixture
def database_url(request, backend: str, tmp_path: Path) -> str:
    env = backend_env(request, backend)
    return env.get("NOTIFIER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def rows_of(url: str, sql: str) -> list[tuple]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql))]
    finally:
        await engine.dispose()


async def execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_upgrade_downgrade_upgrade(database_url):
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    assert asyncio.run(scalar(database_url, "SELECT version_num FROM alembic_version")) == head()
    command.downgrade(config, "base")
    assert asyncio.run(scalar(database_url, "SELECT count(*) FROM alembic_version")) == 0
    command.upgrade(config, "head")
    assert asyncio.run(scalar(database_url, "SELECT count(*) FROM idempotency_keys")) == 0


def test_stream_heads_and_unread_counts_are_backfilled(database_url):
    config = alembic_config(database_url)
    command.upgrade(config, "0001")
    asyncio.run(
        execute(
            database_url,
            "INSERT INTO users (id, username, password_hash, is_admin, created_at)"
            " VALUES (1, 'a', 'x', false, CURRENT_TIMESTAMP),"
            " (2, 'b', 'x', false, CURRENT_TIMESTAMP)",
            "INSERT INTO messages (id, title, body, data, created_at)"
            " VALUES (1, 't', '', '{}', CURRENT_TIMESTAMP)",
            "INSERT INTO notifications (id, user_id, message_id, read_at) VALUES"
            " (1, 1, 1, NULL), (2, 2, 1, CURRENT_TIMESTAMP), (3, 1, 1, CURRENT_TIMESTAMP),"
            " (4, 1, 1, NULL)",
        )
    )
    command.upgrade(config, "head")
    rows = asyncio.run(
        rows_of(database_url, "SELECT username, last_notification_id, unread_count FROM users")
    )
    assert sorted(rows) == [("a", 4, 2), ("b", 2, 0)]


def test_several_processes_migrating_at_once_all_succeed(database_url, tmp_path):
    env = {"NOTIFIER_DATABASE_URL": database_url, "NOTIFIER_SECRET_KEY": TEST_SECRET, "PATH": ""}
    migrating = [
        subprocess.Popen(
            [sys.executable, "-m", "notifier", "migrate"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    for process in migrating:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output.decode()
    assert asyncio.run(scalar(database_url, "SELECT version_num FROM alembic_version")) == head()
