"""Running a unit of database work as one synchronous function.

Through the async engine every statement is its own hand-off to the driver: with aiosqlite
a thread hop per cursor, execute, fetch and close, so a credentials check took about six
hops and a stored batch about twenty-five, each paying for the GIL passing between the
event loop and a driver thread. The hot paths (credentials on every request and socket,
a socket's start point and replay, storing sends) are instead written as one plain
function and run here:

- SQLite: reads run inline on the event loop, on one connection held open in autocommit
  mode (no pool checkout, BEGIN or ROLLBACK per read: those cost four times the query).
  In WAL mode readers never wait for the writer, and these are short indexed queries.
  Writes run on one writer thread, one hand-off per unit, so waiting for the write lock
  (another process, the CLI) or a checkpoint's fsync never stalls the loop.
- PostgreSQL: `run_sync` on an async connection or session, so asyncpg keeps doing the
  I/O without threads.

Read units take a Core `Connection` (statements of their own, one snapshot per statement);
write units take a `Session` and are committed when they return.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from notifier.db.engine import WRITE, create_sqlite_sync_engine

T = TypeVar("T")
ReadUnit = Callable[[Connection], T]
WriteUnit = Callable[[Session], T]

INLINE_READ_BUSY_TIMEOUT_MS = 200
"""A WAL reader only meets a lock while the WAL is being recovered; never wait long
for it on the event loop."""


class UnitRunner:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{WRITE: True})
        self._sqlite_reads: Engine | None = None
        self._held: Connection | None = None
        self._sqlite_writes: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._sqlite = engine.dialect.name == "sqlite"
        if self._sqlite:
            self._sqlite_reads = create_sqlite_sync_engine(
                engine.url, pool_size=1, busy_timeout_ms=INLINE_READ_BUSY_TIMEOUT_MS
            )
            self._sqlite_writes = create_sqlite_sync_engine(
                engine.url, pool_size=1, busy_timeout_ms=10_000
            ).execution_options(**{WRITE: True})

    async def read(self, unit: ReadUnit[T]) -> T:
        """Run `unit` (statements that only read) and return what it returns."""
        if self._sqlite:
            return unit(self._held_connection())
        async with self._engine.connect() as connection:
            return await connection.run_sync(unit)

    def _held_connection(self) -> Connection:
        assert self._sqlite_reads is not None
        if self._held is None or self._held.invalidated or self._held.closed:
            self._held = self._sqlite_reads.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        return self._held

    async def write(self, unit: WriteUnit[T]) -> T:
        """Run `unit` in a write transaction, committed when it returns."""
        if self._sqlite:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="notifier-sqlite-writer")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer, self._write_now, unit)
        session = AsyncSession(self._write_engine, expire_on_commit=False)
        async with session, session.begin():
            return await session.run_sync(unit)

    def _write_now(self, unit: WriteUnit[T]) -> T:
        assert self._sqlite_writes is not None
        with Session(self._sqlite_writes, expire_on_commit=False) as session, session.begin():
            return unit(session)

    def close(self) -> None:
        """Release connections and the writer thread; a later call opens them again
        (an app's lifespan may run more than once, as in tests)."""
        if self._held is not None:
            self._held.close()
            self._held = None
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        for engine in (self._sqlite_reads, self._sqlite_writes):
            if engine is not None:
                engine.dispose()
