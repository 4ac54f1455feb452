"""Alembic environment (async): runs migrations against NOTIFIER_DATABASE_URL."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

import notifier.db.auth_models  # noqa: F401  (registers its tables on Base.metadata)
from notifier.db.engine import PoolOptions, create_engine
from notifier.db.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
MIGRATION_LOCK = 0x6E6F746966  # any constant shared by every Notifier process


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from notifier.settings import Settings

    return Settings().database_url  # type: ignore[call-arg]


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Hosts starting `serve` at the same time: one migrates while the others wait
            # here, then find the schema current. A transaction-level lock, released by the
            # commit: it works behind PgBouncer's transaction pooling. (SQLite: a lock
            # file, see migrate.py.)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def run_migrations_online() -> None:
    pgbouncer = bool(config.attributes.get("pgbouncer", False))
    engine = create_engine(
        _database_url(), PoolOptions(size=1, max_overflow=0, pgbouncer=pgbouncer)
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
