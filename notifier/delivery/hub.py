"""The hub: the one owner of this process's live sockets, grouped by user.

It knows sockets and frames, never the database, the broker or HTTP. Brokers call it, as
their `BrokerEventHandler` (broker.py), with what arrived for this process; it hands each
frame to the right local sockets.
"""

import asyncio
import time
from collections.abc import Callable, Collection

from notifier.closes import Close
from notifier.delivery.connection import Connection
from notifier.delivery.frames import (
    CloseRequest,
    Envelope,
    Publication,
    UserFrame,
    notification_frame,
)
from notifier.metrics import Metrics


class Hub:
    def __init__(self, metrics: Metrics) -> None:
        self._by_user: dict[str, set[Connection]] = {}
        self._closing = False
        self._metrics = metrics

    def add(self, connection: Connection) -> bool:
        """Add a socket; False once the hub is shutting down."""
        if self._closing:
            return False
        self._by_user.setdefault(connection.username, set()).add(connection)
        self._metrics.open_sockets.inc()
        return True

    def remove(self, connection: Connection) -> bool:
        """Remove a socket; True if it was its user's last one here."""
        sockets = self._by_user.get(connection.username)
        if sockets is None or connection not in sockets:
            return False
        sockets.discard(connection)
        self._metrics.open_sockets.dec()
        if sockets:
            return False
        del self._by_user[connection.username]
        return True

    def has_user(self, username: str) -> bool:
        return username in self._by_user

    def usernames(self) -> list[str]:
        return list(self._by_user)

    def count(self, username: str) -> int:
        return len(self._by_user.get(username, ()))

    def dispatch(self, envelope: Envelope) -> None:
        """Act on what a broker brought to this process. Never waits."""
        match envelope:
            case Publication():
                self.deliver(envelope)
            case UserFrame(username, frame):
                for connection in self._by_user.get(username, ()):
                    connection.offer_event(frame)
            case CloseRequest(username, code, reason, session_ids):
                self.close_sockets(username, Close(code, reason), session_ids)

    def deliver(self, publication: Publication) -> None:
        """Write or queue each recipient's frame on their local sockets. Never waits.

        Frames written at once are counted here, once per publication: two metric
        updates per frame would cost more than writing it.
        """
        written = 0
        recipients = publication.recipients
        if len(recipients) > 4 * len(self._by_user):
            # A broadcast to everyone: look up the few local users, not every recipient.
            by_name = {r.username: r for r in recipients}
            recipients = [by_name[name] for name in self._by_user if name in by_name]
        for recipient in recipients:
            sockets = self._by_user.get(recipient.username)
            if not sockets:
                continue
            frame = notification_frame(
                recipient.notification_id,
                recipient.username,
                publication.content,
                recipient.unread_count,
            )
            for connection in sockets:
                written += connection.offer(
                    recipient.notification_id,
                    recipient.previous_id,
                    frame,
                    publication.committed_at,
                )
        if written:
            self._metrics.live_deliveries.inc(written)
            latency = time.time() - publication.committed_at
            self._metrics.delivery_latency.observe(max(0.0, latency))

    def close_sockets(
        self, username: str, close: Close, session_ids: Collection[str] | None = None
    ) -> None:
        """Close the user's sockets here (only those of `session_ids`, when given)."""
        for connection in list(self._by_user.get(username, ())):
            if session_ids is None or connection.session_id in session_ids:
                connection.close_soon(close)

    def resync(self) -> None:
        """Every socket catches up from the store: live frames may have been lost."""
        for sockets in self._by_user.values():
            for connection in sockets:
                connection.resync()

    async def close_all(self, close_for: Callable[[], Close]) -> None:
        """Refuse new sockets and close every open one (`close_for()` per socket)."""
        self._closing = True
        connections = [c for sockets in self._by_user.values() for c in sockets]
        await asyncio.gather(*(c.close(close_for()) for c in connections))
