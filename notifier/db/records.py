"""The store's own small frozen types: what callers hand it and what it returns.

`db/` knows nothing of the API's models; `api/` and `delivery/frames.py` turn these
into wire models (the fastapi-users split of `db/` and `router/`).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredUser:
    id: int
    username: str
    password_hash: str
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MessageContent:
    """What a send says, the same for each of its recipients."""

    title: str
    body: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StoredNotification:
    """One recipient's notification as stored."""

    id: int
    username: str
    content: MessageContent
    created_at: datetime
    read: bool


@dataclass(frozen=True, slots=True)
class ReadResult:
    ids: list[int]
    """Notifications that were unread and are now read."""
    unread_count: int


_SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class StoredSend:
    """What one send stored: enough to answer it, and every retry with its idempotency
    key, with the same bytes. Kept with the key, in the send's own transaction."""

    content: MessageContent
    created_at: datetime | None
    """None only for a broadcast that found no users."""
    recipient_count: int
    notification_ids: tuple[int, ...]
    """Each named recipient's notification id, in request order; empty for a broadcast
    (one per user would make the snapshot as large as the user table)."""
    usernames: tuple[str, ...]

    @property
    def notifications(self) -> list[StoredNotification]:
        """The named recipients' notifications, unread as when stored."""
        if self.created_at is None:
            return []
        created_at = self.created_at
        return [
            StoredNotification(notification_id, username, self.content, created_at, read=False)
            for notification_id, username in zip(self.notification_ids, self.usernames, strict=True)
        ]

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": _SNAPSHOT_VERSION,
                "title": self.content.title,
                "body": self.content.body,
                "data": self.content.data,
                "created_at": None if self.created_at is None else self.created_at.isoformat(),
                "recipients": self.recipient_count,
                "ids": self.notification_ids,
                "usernames": self.usernames,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> "StoredSend | None":
        """The snapshot `to_json` wrote; None for anything else (a response body stored by
        a version before snapshots, answered as it is)."""
        try:
            snapshot = json.loads(text)
        except ValueError:
            return None
        if not isinstance(snapshot, dict) or snapshot.get("v") != _SNAPSHOT_VERSION:
            return None
        created_at = snapshot["created_at"]
        return cls(
            MessageContent(snapshot["title"], snapshot["body"], snapshot["data"]),
            None if created_at is None else datetime.fromisoformat(created_at),
            snapshot["recipients"],
            tuple(snapshot["ids"]),
            tuple(snapshot["usernames"]),
        )
