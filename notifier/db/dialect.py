"""The one place that knows which SQL the two databases want.

Queries elsewhere in `db/` are written once in SQLAlchemy; where SQLite and PostgreSQL
need different statements for speed or semantics, they ask the `Dialect` of their
connection. How units run (`db.units`: a writer thread for SQLite's one write lock) asks
`Dialect.single_writer`; `db.engine` only builds each backend's engine (drivers, pools,
pragmas), never statements.
"""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Select,
    String,
    Table,
    any_,
    bindparam,
    insert,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase

_NAMES = postgresql.ARRAY(String)
_MOVE_HEADS = text(
    "UPDATE users SET last_notification_id = moved.head, unread_count = moved.unread_count"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:heads AS bigint[]), CAST(:counts AS integer[]))"
    " AS moved(id, head, unread_count) WHERE users.id = moved.id"
)

Query = TypeVar("Query", bound="Select[*tuple[Any, ...]]")
HeadMove = tuple[int, int, int]
"""(user id, new stream head, new unread count)."""


class Dialect:
    """PostgreSQL's statements; `SQLiteDialect` overrides where SQLite differs."""

    single_writer = False
    """Whether the database takes one writer at a time (then a process queues its own)."""

    def upsert(self, model: type[DeclarativeBase]) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can say ON CONFLICT."""
        return postgresql.insert(model)

    def where_in(
        self, query: Query, column: Column[str] | Any, values: Sequence[str]
    ) -> tuple[Query, dict[str, Any]]:
        """`query` filtered to `column IN values`, with its parameters."""
        # One array parameter: the same statement (prepared once per connection) whatever
        # the number of values, where IN renders one placeholder per value.
        return query.where(column == any_(bindparam("names", type_=_NAMES))), {
            "names": list(values)
        }

    def move_heads(self, connection: Connection, moves: Sequence[HeadMove]) -> None:
        """Set each user's stream head and unread count."""
        # One statement over three arrays, whatever the number of users: an executemany
        # runs (and PostgreSQL plans) one UPDATE per user of a broadcast.
        connection.execute(
            _MOVE_HEADS,
            {
                "ids": [user_id for user_id, _head, _count in moves],
                "heads": [head for _user_id, head, _count in moves],
                "counts": [count for _user_id, _head, count in moves],
            },
        )

    def insert_numbered(
        self, connection: Connection, table: Table, rows: list[dict[str, Any]]
    ) -> list[int]:
        """Insert `rows` in one statement and return their ids, in order."""
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(connection.execute(returning, rows).scalars())


class SQLiteDialect(Dialect):
    single_writer = True

    def upsert(self, model: type[DeclarativeBase]) -> postgresql.Insert | sqlite.Insert:
        return sqlite.insert(model)

    def where_in(
        self, query: Query, column: Column[str] | Any, values: Sequence[str]
    ) -> tuple[Query, dict[str, Any]]:
        return query.where(column.in_(values)), {}

    def move_heads(self, connection: Connection, moves: Sequence[HeadMove]) -> None:
        # One row per user of a broadcast: straight to the driver's executemany, without
        # SQLAlchemy's per-row parameter processing (these are plain integers).
        connection.exec_driver_sql(
            "UPDATE users SET last_notification_id = ?, unread_count = ? WHERE id = ?",
            [(head, count, user_id) for user_id, head, count in moves],
        )

    def insert_numbered(
        self, connection: Connection, table: Table, rows: list[dict[str, Any]]
    ) -> list[int]:
        # SQLite answers an ordered INSERT ... RETURNING one row at a time, a round trip
        # per recipient. A write transaction holds SQLite's only write lock, so nobody else
        # takes ids meanwhile: number the rows here, past every id ever used
        # (AUTOINCREMENT's sqlite_sequence remembers deleted ones), and insert them with
        # one executemany.
        used = connection.scalar(
            text(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = :table), 0),"
                f" coalesce((SELECT max(id) FROM {table.name}), 0))"
            ),
            {"table": table.name},
        )
        first = int(used or 0) + 1
        ids = list(range(first, first + len(rows)))
        if table.name == "notifications":
            # Plain integers, one row per user of a broadcast: straight to the driver's
            # executemany, without SQLAlchemy's per-row parameter processing.
            connection.exec_driver_sql(
                "INSERT INTO notifications (id, user_id, message_id) VALUES (?, ?, ?)",
                [
                    (row_id, row["user_id"], row["message_id"])
                    for row_id, row in zip(ids, rows, strict=True)
                ],
            )
            return ids
        connection.execute(
            insert(table), [{"id": row_id, **row} for row_id, row in zip(ids, rows, strict=True)]
        )
        return ids


_POSTGRESQL = Dialect()
_SQLITE = SQLiteDialect()


def dialect_named(backend: str) -> Dialect:
    """The dialect of a SQLAlchemy backend name ("sqlite", "postgresql")."""
    return _SQLITE if backend == "sqlite" else _POSTGRESQL


def dialect_of(bind: Connection | URL) -> Dialect:
    """The dialect of a connection or database URL."""
    if isinstance(bind, URL):
        return dialect_named(bind.get_backend_name())
    return dialect_named(bind.dialect.name)
