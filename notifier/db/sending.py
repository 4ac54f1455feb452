"""The statements of one send, run inside the store's write transaction.

Ordering. Clients resume with `since=<last id>`, so for each user, ids must become
visible in id order: if a user's id 11 could commit while id 10 is still in flight, a
client reading 11 and reconnecting with `since=11` would never see 10. Each send
therefore locks its recipients' user rows (in id order, so two sends never deadlock)
before it takes ids. A later send to the same user waits for the lock, and so takes
its ids after the earlier one committed: per user, id order is commit order. We chose
row locks over a per-user sequence column because the user row is updated anyway (the
stream head and unread count below), and replay keeps using the primary key index.
SQLite needs no row locks: a write transaction there holds the database's one write lock.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.db.models import IdempotencyKey, Message, Notification, User, utcnow
from notifier.schemas import NotificationContent, NotificationOut

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class LockedUser:
    id: int
    username: str
    head: int
    unread_count: int


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """A stored notification and where it sits in its recipient's stream."""

    notification: NotificationOut
    previous_id: int
    """The recipient's stream head before this notification (0 for none)."""
    unread_count: int
    """The recipient's unread notifications, this one included."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response an earlier send with the same idempotency key gave."""

    status_code: int
    body: str
    request_hash: str


_LOCKED_COLUMNS = (User.id, User.username, User.last_notification_id, User.unread_count)


async def lock_users(session: AsyncSession, usernames: Sequence[str] | None) -> list[LockedUser]:
    """Lock the named users' rows (every user's when None), in id order."""
    query = select(*_LOCKED_COLUMNS)
    if usernames is not None:
        query = query.where(User.username.in_(usernames))
    rows = await session.execute(query.order_by(User.id).with_for_update())
    return [LockedUser(*row) for row in rows.tuples()]


async def lock_users_by_id(session: AsyncSession, user_id: int) -> list[LockedUser]:
    """Lock one user's row: read-state changes keep the unread count in step with sends."""
    rows = await session.execute(
        select(*_LOCKED_COLUMNS).where(User.id == user_id).with_for_update()
    )
    return [LockedUser(*row) for row in rows.tuples()]


async def claim_idempotency_key(
    session: AsyncSession, sender_id: int, key: str, request_hash: str
) -> StoredResponse | None:
    """Record the key for this send, or return what the earlier send with it answered.

    On PostgreSQL a concurrent send holding the same key makes the insert wait until that
    send commits (then we return its response) or rolls back (then the key is ours).
    """
    await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - IDEMPOTENCY_WINDOW)
    )
    dialect = sqlite if session.bind.dialect.name == "sqlite" else postgresql
    claimed = await session.scalar(
        dialect.insert(IdempotencyKey)
        .values(sender_id=sender_id, key=key, request_hash=request_hash, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["sender_id", "key"])
        .returning(IdempotencyKey.id)
    )
    if claimed is not None:
        return None
    row = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.sender_id == sender_id, IdempotencyKey.key == key
        )
    )
    assert row is not None  # the conflict was with a committed row
    return StoredResponse(row.status_code, row.response, row.request_hash)


async def save_response(
    session: AsyncSession, sender_id: int, key: str, status_code: int, body: str
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.sender_id == sender_id, IdempotencyKey.key == key)
        .values(status_code=status_code, response=body)
    )


async def insert_notifications(
    session: AsyncSession,
    recipients: Sequence[LockedUser],
    content: NotificationContent,
    sender_id: int | None,
) -> list[StreamEntry]:
    """Store one message for the locked `recipients` and move their stream heads.

    Ids follow the order of `recipients`.
    """
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
    ids = await session.scalars(
        insert(Notification).returning(Notification.id, sort_by_parameter_order=True),
        [{"user_id": user.id, "message_id": message.id} for user in recipients],
    )
    entries = [
        StreamEntry(
            NotificationOut(
                id=notification_id,
                username=user.username,
                title=message.title,
                body=message.body,
                data=message.data,
                created_at=message.created_at,
                read=False,
            ),
            previous_id=user.head,
            unread_count=user.unread_count + 1,
        )
        for user, notification_id in zip(recipients, ids, strict=True)
    ]
    await session.execute(
        update(User),
        [
            {
                "id": user.id,
                "last_notification_id": entry.notification.id,
                "unread_count": entry.unread_count,
            }
            for user, entry in zip(recipients, entries, strict=True)
        ],
    )
    return entries
