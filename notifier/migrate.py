"""Alembic migrations, run from the CLI before the server starts."""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url


def _find(name: str) -> Path:
    # Installed wheels carry migrations inside the package; a checkout has them at the top.
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / name, package_dir.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"cannot find {name} next to the notifier package")


def alembic_config(database_url: str, *, pgbouncer: bool = False) -> Config:
    config = Config(str(_find("alembic.ini")))
    # Read by migrations/env.py: behind PgBouncer, no prepared statement cache.
    config.attributes["pgbouncer"] = pgbouncer
    config.set_main_option("script_location", str(_find("migrations")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@contextmanager
def _one_migrator(database_url: str) -> Iterator[None]:
    """Let one process migrate at a time; the others wait, then find nothing to do.

    PostgreSQL: a transaction-level advisory lock taken in migrations/env.py, inside the
    one transaction that runs every migration, so it holds behind PgBouncer's transaction
    pooling too (a session-level lock would be taken on one server connection and
    released on another). SQLite (one host by nature):
    a lock file next to the database, since SQLite's DDL under Alembic is not one
    transaction that a second process would wait for.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate-lock")
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def upgrade(database_url: str, revision: str = "head", *, pgbouncer: bool = False) -> None:
    with _one_migrator(database_url):
        command.upgrade(alembic_config(database_url, pgbouncer=pgbouncer), revision)
