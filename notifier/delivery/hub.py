"""The hub: the one owner of this process's live sockets, grouped by user.

It knows sockets and frames, never the database or HTTP.
"""

import asyncio
from collections.abc import Collection, Iterable

from notifier.delivery.closes import Close
from notifier.delivery.connection import Connection
from notifier.delivery.frames import Delivery


class Hub:
    def __init__(self) -> None:
        self._by_user: dict[str, set[Connection]] = {}
        self._closing = False

    def register(self, connection: Connection) -> bool:
        """Add a socket; False once the hub is shutting down."""
        if self._closing:
            return False
        self._by_user.setdefault(connection.username, set()).add(connection)
        return True

    def unregister(self, connection: Connection) -> None:
        sockets = self._by_user.get(connection.username)
        if sockets is None:
            return
        sockets.discard(connection)
        if not sockets:
            del self._by_user[connection.username]

    def deliver(self, deliveries: Iterable[Delivery]) -> None:
        """Queue each frame on every local socket of its recipient. Never waits."""
        for delivery in deliveries:
            for connection in self._by_user.get(delivery.username, ()):
                connection.offer(delivery.notification_id, delivery.frame)

    def close_sockets(
        self, username: str, close: Close, session_ids: Collection[str] | None = None
    ) -> None:
        """Close this process's sockets of a user (only those of `session_ids` if given)."""
        for connection in list(self._by_user.get(username, ())):
            if session_ids is None or connection.session_id in session_ids:
                connection.close_soon(close)

    def count(self, username: str) -> int:
        return len(self._by_user.get(username, ()))

    async def close_all(self, close: Close) -> None:
        """Refuse new sockets and close every open one."""
        self._closing = True
        connections = [c for sockets in self._by_user.values() for c in sockets]
        await asyncio.gather(*(c.close(close) for c in connections))
