"""Engine creation, with the per-connection settings each backend needs."""

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

WRITE = "notifier_write"
"""Execution option marking a connection that will write (see `create_engine`)."""


def create_engine(database_url: str) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    # Each aiosqlite connection is a thread; keep enough of them open that concurrent
    # requests do not open and close overflow connections (a thread and pragmas each).
    engine = create_async_engine(url, pool_size=16, max_overflow=16)
    configure_sqlite(engine.sync_engine)
    return engine


def create_sqlite_sync_engine(url: URL, *, pool_size: int, busy_timeout_ms: int) -> Engine:
    """A plain pysqlite engine on the same file as an aiosqlite URL (see `db.units`)."""
    engine = create_sync_engine(
        url.set(drivername="sqlite"),
        pool_size=pool_size,
        max_overflow=0,
        # Connections are made on one thread and may be used on another (the writer's).
        connect_args={"check_same_thread": False},
    )
    configure_sqlite(engine, busy_timeout_ms)
    return engine


def configure_sqlite(engine: Engine, busy_timeout_ms: int = 10_000) -> None:
    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the inbox and replay read while a send writes; busy_timeout
        # waits for the writer instead of failing with "database is locked".
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()
        # SQLAlchemy emits BEGIN itself (below) instead of the driver's implicit one.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        # A write transaction that starts by reading (a send locks its recipients first)
        # must take the write lock up front: upgrading a read lock later fails at once
        # with SQLITE_BUSY instead of waiting, whenever another connection wrote meanwhile.
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # each statement is its own transaction (see `db.units`)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE) else "BEGIN")
