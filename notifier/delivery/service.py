"""NotificationService: the one path from a send to the sockets, and from a socket to its
stream. Store first, then publish; sockets join the hub and the broker only through here.

Sends go through one queue per process: a single task takes whatever sends are waiting,
stores them in one transaction (group commit) and publishes them in commit order. Under
load this turns many small transactions into a few larger ones; when idle, a send is
stored at once.
"""

import asyncio
import contextlib
import enum
import functools
import logging
import time
from collections.abc import Collection

from notifier.closes import Close
from notifier.db.records import StoredNotification
from notifier.db.sending import SendRequest, SendResult, StreamEntry
from notifier.db.store import Store
from notifier.delivery.broker import Addressed, Broker
from notifier.delivery.connection import Connection, ReplayPage
from notifier.delivery.frames import (
    CloseRequest,
    Publication,
    UserFrame,
    content_members,
    read_frame,
    stored_frame,
)
from notifier.delivery.hub import Hub
from notifier.logs import log_event
from notifier.metrics import Metrics

logger = logging.getLogger(__name__)
PendingSend = tuple[SendRequest, "asyncio.Future[SendResult]"]


class Admission(enum.Enum):
    """What `attach` made of a socket."""

    ATTACHED = "attached"
    TOO_MANY = "too many sockets"
    CLOSING = "shutting down"


def _log_sent(result: SendResult, sender_id: int, broadcast: bool) -> None:
    # One recipient: name it and the id; many: only how many (a broadcast can be huge).
    one = result.entries[0] if len(result.entries) == 1 else None
    log_event(
        "notification.sent",
        sender_id=sender_id,
        recipients=len(result.entries),
        broadcast=broadcast,
        user=one.username if one else None,
        id=one.notification_id if one else None,
        idempotent_replay=result.replayed,
    )


def _addressed(entries: list[StreamEntry], everyone: bool) -> list[Addressed]:
    content = content_members(entries[0].notification)
    committed_at = time.time()
    if everyone:
        return [(None, Publication(content, entries, committed_at))]
    return [(e.username, Publication(content, [e], committed_at)) for e in entries]


class NotificationService:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        broker: Broker,
        metrics: Metrics,
        *,
        max_batch: int = 256,
        replay_page_size: int = 500,
    ) -> None:
        self._store = store
        self._hub = hub
        self._broker = broker
        self._metrics = metrics
        self._max_batch = max_batch
        self._replay_page_size = replay_page_size
        self._pending: asyncio.Queue[PendingSend] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sender = asyncio.create_task(self._send_batches())

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        while not self._pending.empty():
            _request, future = self._pending.get_nowait()
            future.cancel()

    # Sending

    async def send(self, request: SendRequest) -> SendResult:
        """Store a send (all or nothing), then deliver it live; returns once it is stored.

        Raises `UnknownUsersError` and `IdempotencyKeyReusedError` (nothing stored).
        """
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._pending.put_nowait((request, future))
        result = await future
        _log_sent(result, request.sender_id, broadcast=request.usernames is None)
        return result

    async def _send_batches(self) -> None:
        while True:
            batch = [await self._pending.get()]
            while len(batch) < self._max_batch and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            try:
                await self._store_and_publish(batch)
            except asyncio.CancelledError:
                # Stopping mid-batch: its callers are cancelled too, like those still
                # queued (`stop`), rather than left waiting forever.
                for _request, future in batch:
                    future.cancel()
                raise
            except Exception as exc:
                logger.exception("storing a batch of %d sends failed", len(batch))
                for _request, future in batch:
                    if not future.done():
                        future.set_exception(exc)

    async def _store_and_publish(self, batch: list[PendingSend]) -> None:
        outcomes = await self._store.send_batch([request for request, _future in batch])
        messages: list[Addressed] = []
        for (request, _future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, SendResult) and outcome.entries:
                self._metrics.notifications_stored.inc(len(outcome.entries))
                messages.extend(_addressed(outcome.entries, everyone=request.usernames is None))
        # Published in commit order, so this process's copies rarely arrive out of order.
        await self._broker.publish(messages)
        for (_request, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away
                continue
            if isinstance(outcome, SendResult):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)

    # Read state, shared live by every socket of the user

    async def mark_read(
        self, user_id: int, username: str, notification_id: int
    ) -> StoredNotification | None:
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

    async def attach(self, connection: Connection, max_per_user: int) -> Admission:
        """Count a socket for its user on every process, then join it to the hub and its
        user's broker channel. Refused if the user holds `max_per_user` sockets already,
        or while shutting down.

        It returns once the broker delivers this user's messages here, so reading the
        stream head afterwards (`start_point`) cannot miss a notification in between.
        """
        presence = self._broker.presence
        if not await presence.join(connection.username, max_per_user):
            return Admission.TOO_MANY
        if not self._hub.add(connection):
            await presence.leave(connection.username)
            return Admission.CLOSING
        self._metrics.sockets_opened.inc()
        await self._broker.subscribe(connection.username)
        return Admission.ATTACHED

    async def detach(self, connection: Connection) -> None:
        """Undo `attach` for a socket it admitted."""
        if self._hub.remove(connection):
            await self._broker.unsubscribe(connection.username)
        await self._broker.presence.leave(connection.username)

    async def open_sockets(self, username: str) -> int:
        """The user's open sockets on every process sharing the broker."""
        return await self._broker.presence.count(username)

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
        return functools.partial(self._replay_page, user_id)

    async def _replay_page(self, user_id: int, after_id: int) -> tuple[list[tuple[int, str]], bool]:
        page_size = self._replay_page_size
        notifications, unread_count = await self._store.since(user_id, after_id, page_size)
        frames = [(n.id, stored_frame(n, unread_count)) for n in notifications]
        return frames, len(notifications) < page_size
