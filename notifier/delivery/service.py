"""NotificationService: the one path from a send to the sockets, and from a socket to its
stream. Store first, then publish; sockets join the hub and the broker only through here.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Sequence

from notifier.db.sending import StreamEntry
from notifier.db.store import IdempotentRequest, SendResult, Store
from notifier.delivery.broker import Addressed, Broker
from notifier.delivery.closes import Close
from notifier.delivery.connection import Connection, ReplayPage
from notifier.delivery.frames import (
    CloseRequest,
    Publication,
    Recipient,
    UserFrame,
    content_members,
    read_frame,
    stored_frame,
)
from notifier.delivery.hub import Hub
from notifier.logs import log_event
from notifier.metrics import Metrics
from notifier.schemas import NotificationContent, NotificationOut

Render = Callable[[list[NotificationOut]], str]


def _recipient(entry: StreamEntry) -> Recipient:
    notification = entry.notification
    return Recipient(notification.username, notification.id, entry.previous_id, entry.unread_count)


def _log_sent(result: SendResult, sender_id: int, broadcast: bool) -> None:
    # One recipient: name it and the id; many: only how many (a broadcast can be huge).
    one = result.entries[0].notification if len(result.entries) == 1 else None
    log_event(
        "notification.sent",
        sender_id=sender_id,
        recipients=len(result.entries),
        broadcast=broadcast,
        user=one.username if one else None,
        id=one.id if one else None,
        idempotent_replay=result.replayed,
    )


class NotificationService:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        broker: Broker,
        metrics: Metrics,
        *,
        serialize_sends: bool,
        replay_page_size: int = 500,
    ) -> None:
        self._store = store
        self._hub = hub
        self._broker = broker
        self._metrics = metrics
        self._replay_page_size = replay_page_size
        # On SQLite, sends are serialized by the database anyway; doing it here too keeps
        # this process publishing in commit order, so sockets rarely need to catch up.
        # On PostgreSQL, sends run concurrently and sockets put late frames back in order.
        self._send_lock: asyncio.Lock | None = asyncio.Lock() if serialize_sends else None

    # Sending

    async def send(
        self,
        usernames: Sequence[str],
        content: NotificationContent,
        sender_id: int,
        idempotency: IdempotentRequest | None,
        render: Render,
    ) -> SendResult:
        """Store one notification per named user, all or nothing, then deliver them live.

        Raises `UnknownUsersError` (nothing stored) and `IdempotencyKeyReusedError`.
        """
        return await self._send(usernames, content, sender_id, idempotency, render)

    async def broadcast(
        self,
        content: NotificationContent,
        sender_id: int,
        idempotency: IdempotentRequest | None,
        render: Render,
    ) -> SendResult:
        """Store a notification for every user that exists now, then deliver it live."""
        return await self._send(None, content, sender_id, idempotency, render)

    async def _send(
        self,
        usernames: Sequence[str] | None,
        content: NotificationContent,
        sender_id: int,
        idempotency: IdempotentRequest | None,
        render: Render,
    ) -> SendResult:
        lock = self._send_lock or contextlib.nullcontext()
        async with lock:
            result = await self._store.send(usernames, content, sender_id, idempotency, render)
            if result.entries:
                self._metrics.notifications_stored.inc(len(result.entries))
                await self._broker.publish(self._addressed(result.entries, everyone=not usernames))
        _log_sent(result, sender_id, broadcast=usernames is None)
        return result

    @staticmethod
    def _addressed(entries: list[StreamEntry], everyone: bool) -> list[Addressed]:
        content = content_members(entries[0].notification)
        committed_at = time.time()
        recipients = [_recipient(entry) for entry in entries]
        if everyone:
            return [(None, Publication(content, recipients, committed_at))]
        return [(r.username, Publication(content, [r], committed_at)) for r in recipients]

    # Read state, shared live by every socket of the user

    async def mark_read(
        self, user_id: int, username: str, notification_id: int
    ) -> NotificationOut | None:
        """Mark one of the user's notifications read; None if they have no such id."""
        marked = await self._store.mark_read(user_id, notification_id)
        if marked is None:
            return None
        notification, read = marked
        if read.ids:
            await self._publish_read(username, read.ids, read.unread_count)
        return notification

    async def mark_all_read(self, user_id: int, username: str) -> int:
        read = await self._store.mark_all_read(user_id)
        if read.ids:
            await self._publish_read(username, read.ids, read.unread_count)
        return len(read.ids)

    async def _publish_read(self, username: str, ids: list[int], unread_count: int) -> None:
        await self._broker.publish([(username, UserFrame(username, read_frame(ids, unread_count)))])

    # Sockets

    async def close_sockets(
        self, username: str, close: Close, session_ids: Collection[str] | None = None
    ) -> None:
        """Close the user's sockets on every worker (only those of `session_ids`, if given)."""
        request = CloseRequest(
            username, close.code, close.reason, tuple(session_ids) if session_ids else None
        )
        await self._broker.publish([(username, request)])

    async def attach(self, connection: Connection) -> bool:
        """Join a socket to the hub and its user's broker channel; False when shutting down.

        It returns once the broker delivers this user's messages here, so reading the
        stream head afterwards (`start_point`) cannot miss a notification in between.
        """
        if not self._hub.add(connection):
            return False
        self._metrics.sockets_opened.inc()
        await self._broker.subscribe(connection.username)
        return True

    async def detach(self, connection: Connection) -> None:
        if self._hub.remove(connection):
            await self._broker.unsubscribe(connection.username)

    async def start_point(self, user_id: int, since: int | None) -> tuple[int, bool]:
        """Where a new socket's stream starts, and whether it replays from the store first.

        A client can only hold ids the store issued; a `since` above the user's newest
        notification (say, from before the database was reset) is lowered to it, or the
        socket would skip new notifications until ids caught up with it.
        """
        head = await self._store.stream_head(user_id)
        if since is None:
            return head, False
        return min(since, head), True

    def replay(self, user_id: int) -> ReplayPage:
        """Pages of one user's stored frames after an id, oldest first."""
        page_size = self._replay_page_size

        async def page(after_id: int) -> tuple[list[tuple[int, str]], bool]:
            notifications, unread_count = await self._store.since(user_id, after_id, page_size)
            frames = [(n.id, stored_frame(n, unread_count)) for n in notifications]
            return frames, len(notifications) < page_size

        return page
