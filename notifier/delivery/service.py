"""NotificationService: the one place where "store, then publish" happens."""

import asyncio
from collections.abc import AsyncIterator, Sequence

from notifier.db.store import Store
from notifier.delivery.broker import Broker
from notifier.delivery.connection import Replay
from notifier.delivery.frames import delivery_for, notification_frame
from notifier.schemas import NotificationContent, NotificationOut


class UnknownUsersError(Exception):
    """Some recipients do not exist; nothing was stored or sent."""

    def __init__(self, usernames: Sequence[str]) -> None:
        super().__init__(", ".join(usernames))
        self.usernames = list(usernames)


class NotificationService:
    def __init__(self, store: Store, broker: Broker) -> None:
        self._store = store
        self._broker = broker
        # Store-then-publish runs one send at a time, so frames reach the hub in id order.
        # A socket then drops any frame at or below its cursor as already replayed, which
        # is only safe when ids arrive in increasing order.
        self._send_lock = asyncio.Lock()

    async def send(
        self, usernames: Sequence[str], content: NotificationContent, sender_id: int | None
    ) -> list[NotificationOut]:
        """Store one notification per named user, all or nothing, then deliver them live."""
        found = await self._store.find_users(usernames)
        unknown = [name for name in usernames if name not in found]
        if unknown:
            raise UnknownUsersError(unknown)
        recipients = {found[name]: name for name in usernames}
        async with self._send_lock:
            notifications = await self._store.add_for_users(recipients, content, sender_id)
            await self._broker.publish([delivery_for(n) for n in notifications])
        return notifications

    async def broadcast(
        self, content: NotificationContent, sender_id: int | None
    ) -> list[NotificationOut]:
        """Store a notification for every existing user, then deliver it live."""
        async with self._send_lock:
            notifications = await self._store.add_broadcast(content, sender_id)
            await self._broker.publish([delivery_for(n) for n in notifications])
        return notifications

    async def resume_point(self, since: int) -> int:
        """Where a socket asking for `since` really resumes.

        A client can only hold ids the store issued; a larger `since` (say, from before the
        database was reset) is clamped, or the socket would skip new notifications until
        ids caught up with it.
        """
        return min(since, await self._store.last_id())

    def replay(self, user_id: int, page_size: int = 500) -> Replay:
        """A replay source for one user's socket: stored frames after an id, oldest first."""

        async def frames_after(after_id: int) -> AsyncIterator[tuple[int, str]]:
            cursor = after_id
            while True:
                page = await self._store.since(user_id, cursor, page_size)
                for notification in page:
                    yield notification.id, notification_frame(notification)
                if len(page) < page_size:
                    return
                cursor = page[-1].id

        return frames_after
