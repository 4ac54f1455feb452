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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from notifier.db.dialect import dialect_of
from notifier.db.models import IdempotencyKey, Message, Notification, User, utcnow
from notifier.db.records import MessageContent, StoredNotification, StoredSend
from notifier.errors import IdempotencyKeyReusedError, UnknownUsersError

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
    content: MessageContent
    sender_id: int
    idempotency: IdempotentRequest | None = None


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """A stored notification and where it sits in its recipient's stream."""

    notification_id: int
    username: str
    content: MessageContent
    created_at: datetime
    previous_id: int
    """The recipient's stream head before this notification (0 for none)."""
    unread_count: int
    """The recipient's unread notifications, this one included."""

    @property
    def notification(self) -> StoredNotification:
        # Built on demand: a broadcast stores one entry per user but shows one or none.
        return StoredNotification(
            self.notification_id, self.username, self.content, self.created_at, read=False
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    entries: list[StreamEntry]
    """What this send stored; empty when it replayed an earlier send."""
    stored: StoredSend | None
    """What the send (the first one, for a replay) stored, to answer from; None only for
    a replay of a key kept by a version before snapshots (see `legacy_response`)."""
    replayed: bool
    legacy_response: str | None = None
    """The response body an older version kept with the key, answered as it is."""


SendOutcome = SendResult | UnknownUsersError | IdempotencyKeyReusedError


_LOCKED_COLUMNS = (User.id, User.username, User.last_notification_id, User.unread_count)


def lock_users(session: Session, usernames: Sequence[str] | None) -> list[LockedUser]:
    """Lock the named users' rows (every user's when None), in id order."""
    connection = session.connection()
    query = select(*_LOCKED_COLUMNS).order_by(User.id).with_for_update()
    parameters: dict[str, Any] = {}
    if usernames is not None:
        query, parameters = dialect_of(connection).where_in(query, User.username, usernames)
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
        stored = _snapshot(request, entries)
        outcomes[index] = SendResult(entries, stored, replayed=False)
        if request.idempotency is not None:
            session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.sender_id == request.sender_id,
                    IdempotencyKey.key == request.idempotency.key,
                )
                .values(response=stored.to_json())
            )
    for index, first_index in repeats:
        original = outcomes[first_index]
        assert isinstance(original, SendResult)
        outcomes[index] = SendResult([], original.stored, replayed=True)
    finished = [outcome for outcome in outcomes if outcome is not None]
    assert len(finished) == len(requests)
    return finished


def _snapshot(request: SendRequest, entries: Sequence[StreamEntry]) -> StoredSend:
    """What a send stored, as kept with its idempotency key. A broadcast keeps only its
    recipient count: its answer names nobody."""
    named = request.usernames is not None
    return StoredSend(
        request.content,
        entries[0].created_at if entries else None,
        len(entries),
        tuple(entry.notification_id for entry in entries) if named else (),
        tuple(entry.username for entry in entries) if named else (),
    )


def _claim_key(
    session: Session, sender_id: int, idempotency: IdempotentRequest
) -> SendOutcome | None:
    """Record the key for this send, or the outcome of the earlier send that used it.

    On PostgreSQL a concurrent send holding the same key makes the insert wait until that
    send commits (then we answer with its response) or rolls back (then the key is ours).
    """
    claimed = session.scalar(
        dialect_of(session.connection())
        .upsert(IdempotencyKey)
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
    stored = StoredSend.from_json(row.response)
    legacy = row.response if stored is None else None
    return SendResult([], stored, replayed=True, legacy_response=legacy)


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
        dialect_of(session.connection()).move_heads(
            session.connection(),
            [(user.id, user.head, user.unread_count) for user in touched.values()],
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
    assert isinstance(table, Table)
    return dialect_of(connection).insert_numbered(connection, table, rows)
