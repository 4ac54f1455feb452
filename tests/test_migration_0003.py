"""Schema revision 0003 (token lifecycle) upgrades and downgrades on SQLite and
PostgreSQL, and leaves the schema exactly as the models describe it."""

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from conftest import backend_env
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from notifier.db.engine import create_engine
from notifier.migrate import alembic_config, upgrade

pytestmark = [pytest.mark.integration, pytest.mark.backends]

TOKEN_TABLES = {"auth_sessions", "refresh_tokens", "login_throttle", "ws_tickets"}


def _describe(connection: Connection) -> tuple[str | None, set[str], set[str]]:
    inspector = inspect(connection)
    users = {column["name"] for column in inspector.get_columns("users")}
    revision = MigrationContext.configure(connection).get_current_revision()
    return revision, set(inspector.get_table_names()), users


def describe(url: str) -> tuple[str | None, set[str], set[str]]:
    """(current revision, table names, columns of `users`)."""

    async def run() -> tuple[str | None, set[str], set[str]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_describe)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def check_round_trip(url: str) -> None:
    upgrade(url)
    config = alembic_config(url)
    config.attributes["configure_logger"] = False
    # The models and the migrations agree: autogenerate finds nothing to do.
    command.check(config)
    revision, tables, users = describe(url)
    assert revision == "0003"
    assert tables >= TOKEN_TABLES
    assert users >= {"disabled", "tokens_valid_after"}

    command.downgrade(config, "0002")
    revision, tables, users = describe(url)
    assert revision == "0002"
    assert not tables & TOKEN_TABLES
    assert not users & {"disabled", "tokens_valid_after"}

    upgrade(url)
    assert describe(url)[0] == "0003"


def test_0003_round_trip(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    env = backend_env(request, backend)
    check_round_trip(env.get("NOTIFIER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"))
