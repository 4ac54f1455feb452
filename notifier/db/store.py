"""Async queries behind notifications and users: sending, reading, read state.

Every query runs as one unit of `db.units` (one writer path per process for every
write); `db.auth_store` shares this store's `UnitRunner`. Results are `db.records` types.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from notifier.db.engine import PoolOptions, create_engine
from notifier.db.models import Message, Notification, User, utcnow
from notifier.db.records import MessageContent, ReadResult, StoredNotification, StoredUser
from notifier.db.sending import SendOutcome, SendRequest, lock_users_by_id, store_sends
from notifier.db.units import UnitRunner
from notifier.errors import UsernameTakenError

# Hot-path statements, built once (their compiled form is cached by SQLAlchemy).
_HEAD = select(User.last_notification_id).where(User.id == bindparam("user_id"))
_UNREAD = select(User.unread_count).where(User.id == bindparam("user_id"))
_NOTIFICATIONS = (
    select(
        Notification.id,
        Notification.read_at,
        User.username,
        User.unread_count,
        Message.title,
        Message.body,
        Message.data,
        Message.created_at,
    )
    .join(Message, Message.id == Notification.message_id)
    .join(User, User.id == Notification.user_id)
)
"""One user's notifications as `_notification` reads them, with the user's unread count."""
_SINCE = (
    _NOTIFICATIONS.where(
        Notification.user_id == bindparam("user_id"), Notification.id > bindparam("after_id")
    )
    .order_by(Notification.id)
    .limit(bindparam("limit"))
)


_USER_COLUMNS = (User.id, User.username, User.password_hash, User.is_admin, User.created_at)


def _user(row: User) -> StoredUser:
    return StoredUser(row.id, row.username, row.password_hash, row.is_admin, row.created_at)


def _notification(row: Row[Any], read: bool | None = None) -> StoredNotification:
    """A row of `_NOTIFICATIONS`."""
    return StoredNotification(
        row.id,
        row.username,
        MessageContent(row.title, row.body, row.data),
        row.created_at,
        read=row.read_at is not None if read is None else read,
    )


class Store:
    def __init__(self, database_url: str, pool: PoolOptions | None = None) -> None:
        pool = pool or PoolOptions()
        self.engine: AsyncEngine = create_engine(database_url, pool)
        self.units = UnitRunner(self.engine, pgbouncer=pool.pgbouncer)
        """Runs the hot paths' queries as one function each (see `db.units`)."""

    async def close(self) -> None:
        self.units.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    # Users

    async def get_user(self, username: str) -> StoredUser | None:
        query = select(*_USER_COLUMNS).where(User.username == username)

        def get(connection: Connection) -> StoredUser | None:
            row = connection.execute(query).first()
            return StoredUser(*row) if row else None

        return await self.units.read(get)

    async def create_user(self, username: str, password_hash: str, is_admin: bool) -> StoredUser:
        def create(session: Session) -> StoredUser:
            row = User(username=username, password_hash=password_hash, is_admin=is_admin)
            session.add(row)
            session.flush()
            return _user(row)

        try:
            return await self.units.write(create)
        except IntegrityError as exc:
            raise UsernameTakenError(username) from exc

    async def stream_head(self, user_id: int) -> int:
        """The id of the user's newest notification (0 when they have none)."""

        def head(connection: Connection) -> int:
            return connection.scalar(_HEAD, {"user_id": user_id}) or 0

        return await self.units.read(head)

    # Sending

    async def send_batch(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        """Store a batch of sends in one transaction; one outcome per request, in order.

        A send to unknown users or with a reused idempotency key fails alone (nothing of it
        is stored); the others are stored. See `notifier.db.sending`.
        """
        return await self.units.write(lambda session: store_sends(session, requests))

    # Reading

    async def since(
        self, user_id: int, after_id: int, limit: int
    ) -> tuple[list[StoredNotification], int]:
        """The user's notifications with id > after_id, oldest first, and their unread count."""

        def page(connection: Connection) -> tuple[list[StoredNotification], int]:
            rows = connection.execute(
                _SINCE, {"user_id": user_id, "after_id": after_id, "limit": limit}
            ).all()
            notifications = [_notification(row) for row in rows]
            # The page and the count come from one statement, so they agree.
            unread = (
                rows[-1].unread_count if rows else connection.scalar(_UNREAD, {"user_id": user_id})
            )
            return notifications, unread or 0

        return await self.units.read(page)

    async def inbox(
        self, user_id: int, limit: int, before: int | None, unread_only: bool
    ) -> tuple[list[StoredNotification], int]:
        query = _NOTIFICATIONS.where(Notification.user_id == user_id)
        if before is not None:
            query = query.where(Notification.id < before)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        query = query.order_by(Notification.id.desc()).limit(limit)

        def page(connection: Connection) -> tuple[list[StoredNotification], int]:
            items = [_notification(row) for row in connection.execute(query)]
            # Its own statement: the page may be empty while the user has unread ones.
            return items, connection.scalar(_UNREAD, {"user_id": user_id}) or 0

        return await self.units.read(page)

    async def mark_read(
        self, user_id: int, notification_id: int
    ) -> tuple[StoredNotification, ReadResult] | None:
        """Mark one of the user's notifications read; None if they have no such id."""

        def mark(session: Session) -> tuple[StoredNotification, ReadResult] | None:
            [user] = lock_users_by_id(session, user_id)
            connection = session.connection()
            row = connection.execute(
                _NOTIFICATIONS.where(
                    Notification.id == notification_id, Notification.user_id == user_id
                )
            ).first()
            if row is None:
                return None
            changed = row.read_at is None
            unread = user.unread_count - changed
            if changed:
                connection.execute(
                    update(Notification)
                    .where(Notification.id == notification_id)
                    .values(read_at=utcnow())
                )
                connection.execute(
                    update(User).where(User.id == user_id).values(unread_count=unread)
                )
            read = ReadResult([notification_id] if changed else [], unread)
            return _notification(row, read=True), read

        return await self.units.write(mark)

    async def mark_all_read(self, user_id: int) -> ReadResult:
        def mark_all(session: Session) -> ReadResult:
            lock_users_by_id(session, user_id)
            ids = session.scalars(
                update(Notification)
                .where(Notification.user_id == user_id, Notification.read_at.is_(None))
                .values(read_at=utcnow())
                .returning(Notification.id)
            )
            read_ids = sorted(ids)
            session.execute(update(User).where(User.id == user_id).values(unread_count=0))
            return ReadResult(read_ids, 0)

        return await self.units.write(mark_all)
