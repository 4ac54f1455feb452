"""The statements of a batch of sends, run inside one write transaction of the store.

Batching. Concurrent sends in one process are stored together (group commit): one lock
pass, one insert of messages, one of notifications, one update of stream heads, one
commit, whatever the number of sends in the batch.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, overload

from sqlalchemy import String, any_, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from notifier.db.models import IdempotencyKey, Message, Notification, User, utcnow
from notifier.errors import IdempotencyKeyReusedError, UnknownUsersError
from notifier.schemas import NotificationContent, NotificationOut

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(slots=True)
class LockedUser:
    """A recipient's row, locked for the batch; head and count move as sends are stored."""

    id: int
    username: str
    head: int
    unread_count: int


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    key: str
    request_hash: str
    """Fingerprint of the route and body: a reused key must come with the same request."""


@dataclass(frozen=True, slots=True)
class SendRequest:
    usernames: Sequence[str] | None
    """Recipients in id order of the result; None for every user."""
    content: NotificationContent
    sender_id: int
    idempotency: IdempotentRequest | None
    render: Callable[[Sequence[NotificationOut]], str]
    """Turns what was stored into the response body, kept with the idempotency key."""
    status_code: int = 201


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """A stored notification and where it sits in its recipient's stream."""

    notification_id: int
    username: str
    content: NotificationContent
    created_at: datetime
    previous_id: int
    """The recipient's stream head before this notification (0 for none)."""
    unread_count: int
    """The recipient's unread notifications, this one included."""

    @property
    def notification(self) -> NotificationOut:
        # Built on demand: a broadcast stores one entry per user but shows one or none.
        content = self.content
        return NotificationOut(
            id=self.notification_id,
            username=self.username,
            title=content.title,
            body=content.body,
            data=content.data,
            created_at=self.created_at,
            read=False,
        )


class StoredNotifications(Sequence[NotificationOut]):
    """What a send stored, as `render` sees it: each notification built when read."""

    def __init__(self, entries: Sequence[StreamEntry]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, index: int) -> NotificationOut: ...
    @overload
    def __getitem__(self, index: slice) -> list[NotificationOut]: ...
    def __getitem__(self, index: int | slice) -> NotificationOut | list[NotificationOut]:
        if isinstance(index, slice):
            return [entry.notification for entry in self._entries[index]]
        return self._entries[index].notification


@dataclass(frozen=True, slots=True)
class SendResult:
    entries: list[StreamEntry]
    """What this send stored; empty when it replayed an earlier response."""
    status_code: int
    body: str
    replayed: bool


SendOutcome = SendResult | UnknownUsersError | IdempotencyKeyReusedError


_NAMES = postgresql.ARRAY(String)
_MOVE_HEADS = text(
    "UPDATE users SET last_notification_id = moved.head, unread_count = moved.unread_count"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:heads AS bigint[]), CAST(:counts AS integer[]))"
    " AS moved(id, head, unread_count) WHERE users.id = moved.id"
)
"""PostgreSQL: move every touched user's stream head and unread count at once."""

_LOCKED_COLUMNS = (User.id, User.username, User.last_notification_id, User.unread_count)


def lock_users(session: Session, usernames: Sequence[str] | None) -> list[LockedUser]:
    """Lock the named users' rows (every user's when None), in id order."""
    connection = session.connection()
    query = select(*_LOCKED_COLUMNS).order_by(User.id).with_for_update()
    parameters = {}
    if usernames is not None and connection.dialect.name == "postgresql":
        # One array parameter: the same statement (prepared once per connection) whatever
        # the number of recipients, where IN renders one placeholder per name.
        query = query.where(User.username == any_(bindparam("names", type_=_NAMES)))
        parameters = {"names": list(usernames)}
    elif usernames is not None:
        query = query.where(User.username.in_(usernames))
    rows = connection.execute(query, parameters)
    return [LockedUser(*row) for row in rows]


def lock_users_by_id(session: Session, user_id: int) -> list[LockedUser]:
    """Lock one user's row: read-state changes keep the unread count in step with sends."""
    query = select(*_LOCKED_COLUMNS).where(User.id == user_id).with_for_update()
    rows = session.connection().execute(query)
    return [LockedUser(*row) for row in rows]


def store_sends(session: Session, requests: Sequence[SendRequest]) -> list[SendOutcome]:
    """Store every valid send of the batch; one outcome per request, in order."""
    everyone = any(request.usernames is None for request in requests)
    names = None if everyone else sorted({n for r in requests for n in r.usernames or ()})
    locked = lock_users(session, names)
    by_name = {user.username: user for user in locked}
    if any(request.idempotency for request in requests):
        session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - IDEMPOTENCY_WINDOW)
        )

    outcomes: list[SendOutcome | None] = [None] * len(requests)
    planned: list[tuple[int, list[LockedUser]]] = []
    # Repeats of a key within this batch answer like the send that claimed it.
    claimed_here: dict[tuple[int, str], tuple[int, str]] = {}
    repeats: list[tuple[int, int]] = []
    for index, request in enumerate(requests):
        if request.usernames is None:
            recipients = locked
        else:
            unknown = [name for name in request.usernames if name not in by_name]
            if unknown:
                outcomes[index] = UnknownUsersError(unknown)
                continue
            recipients = [by_name[name] for name in request.usernames]
        if request.idempotency is not None:
            key = (request.sender_id, request.idempotency.key)
            first = claimed_here.get(key)
            if first is not None:
                if first[1] != request.idempotency.request_hash:
                    outcomes[index] = IdempotencyKeyReusedError(key[1])
                else:
                    repeats.append((index, first[0]))
                continue
            earlier = _claim_key(session, request.sender_id, request.idempotency)
            if earlier is not None:
                outcomes[index] = earlier
                continue
            claimed_here[key] = (index, request.idempotency.request_hash)
        planned.append((index, recipients))

    for (index, _recipients), entries in zip(
        planned, _insert(session, requests, planned), strict=True
    ):
        request = requests[index]
        body = request.render(StoredNotifications(entries))
        outcomes[index] = SendResult(entries, request.status_code, body, replayed=False)
        if request.idempotency is not None:
            session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.sender_id == request.sender_id,
                    IdempotencyKey.key == request.idempotency.key,
                )
                .values(status_code=request.status_code, response=body)
            )
    for index, first in repeats:
        original = outcomes[first]
        assert isinstance(original, SendResult)
        outcomes[index] = SendResult([], original.status_code, original.body, replayed=True)
    finished = [outcome for outcome in outcomes if outcome is not None]
    assert len(finished) == len(requests)
    return finished


def _claim_key(
    session: Session, sender_id: int, idempotency: IdempotentRequest
) -> SendOutcome | None:
    """Record the key for this send, or the outcome of the earlier send that used it.

    On PostgreSQL a concurrent send holding the same key makes the insert wait until that
    send commits (then we answer with its response) or rolls back (then the key is ours).
    """
    dialect = sqlite if session.bind.dialect.name == "sqlite" else postgresql
    claimed = session.scalar(
        dialect.insert(IdempotencyKey)
        .values(
            sender_id=sender_id,
            key=idempotency.key,
            request_hash=idempotency.request_hash,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["sender_id", "key"])
        .returning(IdempotencyKey.id)
    )
    if claimed is not None:
        return None
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.sender_id == sender_id, IdempotencyKey.key == idempotency.key
        )
    )
    assert row is not None  # the conflict was with a committed row
    if row.request_hash != idempotency.request_hash:
        return IdempotencyKeyReusedError(idempotency.key)
    return SendResult([], row.status_code, row.response, replayed=True)


def _insert(
    session: Session,
    requests: Sequence[SendRequest],
    planned: Sequence[tuple[int, list[LockedUser]]],
) -> list[list[StreamEntry]]:
    """Insert the planned sends' messages and notifications; move the heads and counts."""
    if not planned:
        return []
    now = utcnow()
    message_ids = _insert_numbered(
        session,
        Message,
        [
            {
                "title": requests[index].content.title,
                "body": requests[index].content.body,
                "data": requests[index].content.data,
                "sender_id": requests[index].sender_id,
                "created_at": now,
            }
            for index, _recipients in planned
        ],
    )
    rows = [
        {"user_id": user.id, "message_id": message_id}
        for (_index, recipients), message_id in zip(planned, message_ids, strict=True)
        for user in recipients
    ]
    notification_ids = iter(_insert_numbered(session, Notification, rows))
    batches: list[list[StreamEntry]] = []
    touched: dict[int, LockedUser] = {}
    for index, recipients in planned:
        content = requests[index].content
        entries = []
        for user in recipients:
            notification_id = next(notification_ids)
            entries.append(
                StreamEntry(
                    notification_id,
                    user.username,
                    content,
                    now,
                    previous_id=user.head,
                    unread_count=user.unread_count + 1,
                )
            )
            user.head = notification_id
            user.unread_count += 1
            touched[user.id] = user
        batches.append(entries)
    if touched:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            # One row per user of a broadcast: straight to the driver's executemany, without
            # SQLAlchemy's per-row parameter processing (these are plain integers).
            connection.exec_driver_sql(
                "UPDATE users SET last_notification_id = ?, unread_count = ? WHERE id = ?",
                [(u.head, u.unread_count, u.id) for u in touched.values()],
            )
        else:
            # One statement over three arrays, whatever the number of users: an
            # executemany runs (and PostgreSQL plans) one UPDATE per user of a broadcast.
            users = list(touched.values())
            connection.execute(
                _MOVE_HEADS,
                {
                    "ids": [u.id for u in users],
                    "heads": [u.head for u in users],
                    "counts": [u.unread_count for u in users],
                },
            )
    return batches


def _insert_numbered(
    session: Session, model: type[Message] | type[Notification], rows: list[dict[str, Any]]
) -> list[int]:
    """Insert `rows` in one statement and return their ids, in order.

    Core statements on the session's connection: the ORM's bulk insert path costs several
    times as much, and these rows are never loaded as objects here.
    """
    if not rows:
        return []
    connection = session.connection()
    table = model.__table__
    if connection.dialect.name != "sqlite":
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(connection.execute(returning, rows).scalars())
    # SQLite answers an ordered INSERT ... RETURNING one row at a time, a round trip per
    # recipient. This transaction holds SQLite's only write lock, so nobody else takes ids
    # meanwhile: number the rows here, past every id ever used (AUTOINCREMENT's
    # sqlite_sequence remembers deleted ones), and insert them with one executemany.
    used = connection.scalar(
        text(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = :table), 0),"
            f" coalesce((SELECT max(id) FROM {table.name}), 0))"
        ),
        {"table": table.name},
    )
    ids = list(range(used + 1, used + 1 + len(rows)))
    if model is Notification:
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
