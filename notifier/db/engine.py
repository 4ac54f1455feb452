"""Engine creation, with the per-connection settings each backend needs."""

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

WRITE = "notifier_write"
"""Execution option marking a connection that will write (see `create_engine`)."""


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """How a PostgreSQL engine keeps its connections (`NOTIFIER_DATABASE_*` settings)."""

    size: int = 20
    """Connections kept open for good."""
    max_overflow: int = 0
    """Extra connections opened under a burst, closed again when returned to a full pool.
    None by default: each costs PostgreSQL a backend (a fork and an authentication),
    where a request waiting a moment for a pooled connection costs nothing."""
    recycle: float = 1800.0
    """Seconds after which a connection is replaced at its next checkout."""
    timeout: float = 30.0
    """Seconds a request waits for a free connection before failing."""
    pgbouncer: bool = False
    """Behind PgBouncer in transaction mode: no prepared statement cache (see below)."""


def create_engine(database_url: str, pool: PoolOptions | None = None) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return _create_postgres_engine(url, pool or PoolOptions())
    # Each aiosqlite connection is a thread; keep enough of them open that concurrent
    # requests do not open and close overflow connections (a thread and pragmas each).
    engine = create_async_engine(url, pool_size=16, max_overflow=16)
    configure_sqlite(engine.sync_engine)
    return engine


def _create_postgres_engine(url: URL, pool: PoolOptions) -> AsyncEngine:
    # No pre-ping: it costs a round trip on every checkout. Connections are replaced on a
    # timer instead (pool_recycle), and a connection found dead by a statement invalidates
    # every connection opened before it, so a restarted or failed-over server costs the
    # requests in flight at that moment, not one per pooled connection (see `db.units`,
    # which retries reads once on a fresh connection). LIFO keeps the idle tail of the
    # pool idle, so PostgreSQL's idle timeouts and PgBouncer close what is not needed.
    connect_args: dict[str, Any] = {}
    if pool.pgbouncer:
        # Transaction pooling hands each transaction whichever server connection is
        # free: a statement prepared on one is unknown on the next, and asyncpg's
        # generated names collide between clients sharing a server connection.
        connect_args = {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }
    return create_async_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_recycle=pool.recycle,
        pool_timeout=pool.timeout,
        pool_use_lifo=True,
        connect_args=connect_args,
    )


def _unique_statement_name() -> str:
    return f"__notifier_{uuid4().hex}__"


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
