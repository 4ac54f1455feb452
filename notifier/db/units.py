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
  I/O without threads. Reads run in autocommit mode: one round trip per statement, where
  a transaction adds a BEGIN and a ROLLBACK (two more). Behind PgBouncer's transaction
  pooling they run in a transaction instead, since a statement's prepare and execute must
  reach the same server connection. A unit that finds its connection dead (a restarted
  server, a killed backend) runs once more on a fresh one, the pool having by then
  replaced every connection opened before the failure; a write only when the connection
  died before its commit was sent (after that, the commit may have happened).

Every query of `db.store` and `db.auth_store` runs here: this is the one writer path of a
process, and the only place that opens sessions. Read units take a Core `Connection`
(statements of their own, one snapshot per statement); write units take a `Session` and
are committed when they return.
"""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from notifier.db.dialect import dialect_of
from notifier.db.engine import WRITE, create_sqlite_sync_engine

logger = logging.getLogger(__name__)
T = TypeVar("T")
ReadUnit = Callable[[Connection], T]
WriteUnit = Callable[[Session], T]

INLINE_READ_BUSY_TIMEOUT_MS = 200
"""A WAL reader only meets a lock while the WAL is being recovered; never wait long
for it on the event loop."""


class _DeadBeforeCommitError(Exception):
    """A write unit's connection died before its commit was sent."""


class UnitRunner:
    def __init__(self, engine: AsyncEngine, *, pgbouncer: bool = False) -> None:
        self._read_engine = (
            engine if pgbouncer else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._write_engine = engine.execution_options(**{WRITE: True})
        self._sqlite_reads: Engine | None = None
        self._held: Connection | None = None
        self._sqlite_writes: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        # SQLite takes one writer at a time: this process queues its own on one thread.
        self._sqlite = dialect_of(engine.url).single_writer
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
        try:
            return await self._read_once(unit)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return await self._read_once(unit)

    async def _read_once(self, unit: ReadUnit[T]) -> T:
        async with self._read_engine.connect() as connection:
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
        try:
            return await self._write_once(unit)
        except _DeadBeforeCommitError as exc:
            # Nothing was committed: PostgreSQL rolled the transaction back with its backend.
            logger.warning("database connection lost before commit; retrying once: %s", exc)
        return await self._write_once(unit)

    async def _write_once(self, unit: WriteUnit[T]) -> T:
        session = AsyncSession(self._write_engine, expire_on_commit=False)
        async with session:
            transaction = await session.begin()
            try:
                result = await session.run_sync(unit)
            except DBAPIError as exc:
                await transaction.rollback()
                if exc.connection_invalidated:
                    raise _DeadBeforeCommitError(exc) from exc
                raise
            except BaseException:
                await transaction.rollback()
                raise
            # A failure from here on is not retried: the commit may have reached the server.
            await transaction.commit()
            return result

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
