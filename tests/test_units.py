"""`db.units.UnitRunner` on real SQLite and PostgreSQL: read and write units, commit and
rollback, SQLite's one writer thread shared by every write of the process (sends and
auth alike), and PostgreSQL's single retry of a unit whose connection died."""

import asyncio
import threading
import time

import pytest
from conftest import unique_name
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from notifier.db.auth_models import LoginThrottle
from notifier.db.auth_store import AuthStore
from notifier.db.models import User
from notifier.db.store import Store

pytestmark = [pytest.mark.backends, pytest.mark.integration]


def _count_users(name: str):
    def count(connection: Connection) -> int:
        return connection.scalar(select(func.count()).where(User.username == name)) or 0

    return count


def _add_user(name: str):
    def add(session: Session) -> int:
        row = User(username=name, password_hash="h", is_admin=False)
        session.add(row)
        session.flush()
        return row.id

    return add


async def test_a_write_unit_commits_when_it_returns_and_reads_see_it(store: Store) -> None:
    name = unique_name()
    user_id = await store.units.write(_add_user(name))
    assert user_id > 0
    assert await store.units.read(_count_users(name)) == 1
    assert (await store.get_user(name)).id == user_id  # type: ignore[union-attr]


async def test_a_write_unit_that_raises_stores_nothing_and_the_error_reaches_the_caller(
    store: Store,
) -> None:
    name = unique_name()

    def add_then_fail(session: Session) -> None:
        _add_user(name)(session)
        raise LookupError("the unit gave up")

    with pytest.raises(LookupError, match="gave up"):
        await store.units.write(add_then_fail)
    assert await store.units.read(_count_users(name)) == 0
    # The runner is still usable after a failed unit.
    await store.units.write(_add_user(name))
    assert await store.units.read(_count_users(name)) == 1


async def test_a_database_error_in_a_write_unit_rolls_it_back(store: Store) -> None:
    """A unique violation after an insert: neither row is kept."""
    taken, fresh = unique_name(), unique_name()
    await store.units.write(_add_user(taken))

    def two_inserts(session: Session) -> None:
        _add_user(fresh)(session)
        _add_user(taken)(session)

    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        await store.units.write(two_inserts)
    assert await store.units.read(_count_users(fresh)) == 0
    assert await store.units.read(_count_users(taken)) == 1


async def test_concurrent_write_units_all_commit(store: Store, database_url: str) -> None:
    """Units from this process and from a second store on the same database (as a second
    worker would be) all commit: SQLite queues them, PostgreSQL runs them side by side."""
    other = Store(database_url)
    try:
        names = [unique_name() for _ in range(12)]
        runners = [store.units, other.units]
        await asyncio.gather(
            *(runners[i % 2].write(_add_user(name)) for i, name in enumerate(names))
        )
        counts = await asyncio.gather(*(store.units.read(_count_users(n)) for n in names))
        assert counts == [1] * len(names)
    finally:
        await other.close()


async def test_a_closed_runner_opens_again_on_first_use(store: Store) -> None:
    name = unique_name()
    await store.units.write(_add_user(name))
    store.units.close()
    assert await store.units.read(_count_users(name)) == 1
    await store.units.write(_add_user(unique_name()))


async def test_sqlite_writes_of_sends_and_auth_share_one_writer_thread(
    store: Store, backend: str
) -> None:
    """One writer path per process: while a unit holds the writer thread, an auth write
    waits behind it instead of opening a transaction of its own."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL runs write units side by side (row locks order them)")
    auth = AuthStore(store.units)
    writer_threads: set[str] = set()
    release = threading.Event()

    def hold(session: Session) -> None:
        writer_threads.add(threading.current_thread().name)
        release.wait(timeout=10)

    def note_thread(session: Session) -> None:
        writer_threads.add(threading.current_thread().name)

    holding = asyncio.create_task(store.units.write(hold))
    key = f"user:{unique_name()}"
    counting = asyncio.create_task(auth.count_attempts([key], int(time.time()), 60))
    await asyncio.sleep(0.2)
    assert not counting.done(), "an auth write ran beside the writer thread"
    release.set()
    await holding
    assert (await counting)[key] == (1, 0)
    await store.units.write(note_thread)
    [writer] = writer_threads
    assert writer.startswith("notifier-sqlite-writer")
    assert writer != threading.current_thread().name

    def throttle_rows(connection: Connection) -> int:
        return connection.scalar(
            select(func.count()).select_from(LoginThrottle).where(LoginThrottle.key == key)
        )

    assert await store.units.read(throttle_rows) == 1


async def test_postgres_runs_a_unit_again_once_when_its_connection_died_before_commit(
    store: Store, backend: str
) -> None:
    """A killed backend (a restarted server, a failover) costs a retry on a fresh
    connection, and the write is stored once."""
    if backend != "postgres":
        pytest.skip("SQLite has no server connection to lose")
    name = unique_name()
    attempts: list[int] = []

    def add_dying_once(session: Session) -> int:
        attempts.append(1)
        user_id = _add_user(name)(session)
        if len(attempts) == 1:
            session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return user_id

    user_id = await store.units.write(add_dying_once)
    assert len(attempts) == 2
    assert await store.units.read(_count_users(name)) == 1
    assert (await store.get_user(name)).id == user_id  # type: ignore[union-attr]

    reads: list[int] = []

    def read_dying_once(connection: Connection) -> int:
        reads.append(1)
        if len(reads) == 1:
            connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return _count_users(name)(connection)

    assert await store.units.read(read_dying_once) == 1
    assert len(reads) == 2
