"""Async queries the rest of the app calls. Sessions are opened here and nowhere else."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notifier.db.engine import create_engine
from notifier.db.models import Message, Notification, User, utcnow
from notifier.schemas import NotificationContent, NotificationOut


class UsernameTakenError(Exception):
    """A user with that name already exists."""


@dataclass(frozen=True, slots=True)
class StoredUser:
    id: int
    username: str
    password_hash: str
    is_admin: bool
    created_at: datetime


def _user(row: User) -> StoredUser:
    return StoredUser(row.id, row.username, row.password_hash, row.is_admin, row.created_at)


def _notification(row: Notification) -> NotificationOut:
    message = row.message
    return NotificationOut(
        id=row.id,
        username=row.user.username,
        title=message.title,
        body=message.body,
        data=message.data,
        created_at=message.created_at,
        read=row.read_at is not None,
    )


class Store:
    def __init__(self, database_url: str) -> None:
        self.engine: AsyncEngine = create_engine(database_url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    # Users

    async def get_user(self, username: str) -> StoredUser | None:
        async with self._sessions() as session:
            row = await session.scalar(select(User).where(User.username == username))
            return _user(row) if row else None

    async def create_user(self, username: str, password_hash: str, is_admin: bool) -> StoredUser:
        row = User(username=username, password_hash=password_hash, is_admin=is_admin)
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError as exc:
            raise UsernameTakenError(username) from exc
        return _user(row)

    async def find_users(self, usernames: Sequence[str]) -> dict[str, int]:
        """Map each existing name among `usernames` to its user id."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(User.username, User.id).where(User.username.in_(usernames))
            )
            return {name: user_id for name, user_id in rows.tuples()}

    # Sending

    async def add_for_users(
        self, recipients: Mapping[int, str], content: NotificationContent, sender_id: int | None
    ) -> list[NotificationOut]:
        """Store one message for `recipients` (user id -> name) in one transaction.

        Notification ids follow the order of `recipients`.
        """
        async with self._sessions.begin() as session:
            return await self._add(session, recipients, content, sender_id)

    async def add_broadcast(
        self, content: NotificationContent, sender_id: int | None
    ) -> list[NotificationOut]:
        """Store one message for every user that exists now, in one transaction."""
        async with self._sessions.begin() as session:
            users = await session.execute(select(User.id, User.username).order_by(User.id))
            recipients = {user_id: name for user_id, name in users.tuples()}
            return await self._add(session, recipients, content, sender_id)

    async def _add(
        self,
        session: AsyncSession,
        recipients: Mapping[int, str],
        content: NotificationContent,
        sender_id: int | None,
    ) -> list[NotificationOut]:
        message = Message(
            title=content.title,
            body=content.body,
            data=content.data,
            sender_id=sender_id,
            created_at=utcnow(),
        )
        session.add(message)
        await session.flush()
        if not recipients:
            return []
        rows = await session.execute(
            insert(Notification).returning(
                Notification.id, Notification.user_id, sort_by_parameter_order=True
            ),
            [{"user_id": user_id, "message_id": message.id} for user_id in recipients],
        )
        return [
            NotificationOut(
                id=notification_id,
                username=recipients[user_id],
                title=message.title,
                body=message.body,
                data=message.data,
                created_at=message.created_at,
                read=False,
            )
            for notification_id, user_id in rows.tuples()
        ]

    # Reading

    async def since(self, user_id: int, after_id: int, limit: int) -> list[NotificationOut]:
        """The user's notifications with id > after_id, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Notification)
                .where(Notification.user_id == user_id, Notification.id > after_id)
                .order_by(Notification.id)
                .limit(limit)
            )
            return [_notification(row) for row in rows]

    async def last_id(self) -> int:
        """The highest notification id issued so far (0 when there is none)."""
        async with self._sessions() as session:
            return await session.scalar(select(func.max(Notification.id))) or 0

    async def inbox(
        self, user_id: int, limit: int, before: int | None, unread_only: bool
    ) -> tuple[list[NotificationOut], int]:
        query = select(Notification).where(Notification.user_id == user_id)
        if before is not None:
            query = query.where(Notification.id < before)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        async with self._sessions() as session:
            rows = await session.scalars(query.order_by(Notification.id.desc()).limit(limit))
            items = [_notification(row) for row in rows]
            unread = await session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            )
        return items, unread or 0

    async def mark_read(self, user_id: int, notification_id: int) -> NotificationOut | None:
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(Notification).where(
                    Notification.id == notification_id, Notification.user_id == user_id
                )
            )
            if row is None:
                return None
            if row.read_at is None:
                row.read_at = utcnow()
            return _notification(row)

    async def mark_all_read(self, user_id: int) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Notification)
                .where(Notification.user_id == user_id, Notification.read_at.is_(None))
                .values(read_at=utcnow())
            )
            return result.rowcount
