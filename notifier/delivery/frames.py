"""What travels from a send to the sockets, and the text frames sockets receive.

A notification's content is serialized once per send (`Publication.content`); each
recipient's frame only splices in their id, name and unread count, so a broadcast to
10,000 users never runs 10,000 model serializations.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from notifier.db.records import StoredNotification
from notifier.schemas import NotificationOut


@dataclass(frozen=True, slots=True)
class Recipient:
    """One user's copy of a published notification."""

    username: str
    notification_id: int
    previous_id: int
    """The id of this user's notification before this one (0 for none). A socket whose
    cursor is below it has missed something and catches up from the store."""
    unread_count: int


class RecipientView(Protocol):
    """What the hub and the brokers read of a recipient's copy: a `Recipient`, or the
    store's `StreamEntry` as it is (one more object per recipient of a broadcast would
    cost about as much as splicing its frame)."""

    @property
    def username(self) -> str: ...
    @property
    def notification_id(self) -> int: ...
    @property
    def previous_id(self) -> int: ...
    @property
    def unread_count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Publication:
    """A stored notification on its way to live sockets."""

    content: str
    """The shared fields as JSON object members, without braces (see `content_members`)."""
    recipients: Sequence[RecipientView]
    committed_at: float
    """Wall-clock time of the commit, for the delivery latency histogram."""


def notification_out(notification: StoredNotification) -> NotificationOut:
    """A stored notification as the API and the sockets show it (the one builder)."""
    content = notification.content
    return NotificationOut(
        id=notification.id,
        username=notification.username,
        title=content.title,
        body=content.body,
        data=dict(content.data),
        created_at=notification.created_at,
        read=notification.read,
    )


def content_members(notification: StoredNotification) -> str:
    """Everything but id and username, as `"title":...,"read":false` (no braces)."""
    return notification_out(notification).model_dump_json(exclude={"id", "username"})[1:-1]


def notification_frame(notification_id: int, username: str, content: str, unread_count: int) -> str:
    return (
        '{"type":"notification","notification":{"id":'
        f"{notification_id},"
        f'"username":{orjson.dumps(username).decode()},{content}}},'
        f'"unread_count":{unread_count}}}'
    )


def stored_frame(notification: StoredNotification, unread_count: int) -> str:
    return notification_frame(
        notification.id, notification.username, content_members(notification), unread_count
    )


def read_frame(ids: Sequence[int], unread_count: int) -> str:
    return orjson.dumps({"type": "read", "ids": list(ids), "unread_count": unread_count}).decode()


@dataclass(frozen=True, slots=True)
class UserFrame:
    """A frame for every socket of one user, outside the notification stream."""

    username: str
    frame: str


@dataclass(frozen=True, slots=True)
class CloseRequest:
    """Close a user's sockets (those of `session_ids` only, when given), on every worker."""

    username: str
    code: int
    reason: str
    session_ids: tuple[str, ...] | None = None


Envelope = Publication | UserFrame | CloseRequest
"""Everything a broker carries between processes."""
