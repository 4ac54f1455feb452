"""Cross-process delivery. The broker is the only owner of fan-out between processes.

A broker carries envelopes addressed to one user or to everyone, and hands what it
receives to a `BrokerEventHandler` (in a server, this process's hub; in tests, a fake), as
centrifuge hands its broker a `BrokerEventHandler`: brokers never know the concrete hub.
It only needs to bring a process what concerns the
sockets it holds: the service subscribes a user while this process has a socket of theirs.

It also owns `presence`: how many sockets each user has open on every process it spans
(presence.py).

`MemoryBroker` is the embedded default: one process, so publishing is handing the
envelopes to this process's handler. `RedisBroker` (redis_broker.py) spans processes and hosts.
"""

from collections.abc import Sequence
from typing import Protocol

from notifier.delivery.frames import Envelope
from notifier.delivery.presence import LocalPresence, Presence

Addressed = tuple[str | None, Envelope]
"""(username, or None for everyone; envelope)."""


class BrokerEventHandler(Protocol):
    """What a broker calls with what it receives for this process (the hub, in a server)."""

    def dispatch(self, envelope: Envelope) -> None:
        """Act on one envelope (a publication, a user frame, a close request). Never waits."""
        ...

    def resync(self) -> None:
        """Live envelopes may have been lost (an outage): every socket catches up from the store."""
        ...


class Broker(Protocol):
    presence: Presence
    """Sockets per user on every process this broker spans."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def up(self) -> bool:
        """Whether live delivery works now (readiness)."""
        ...

    async def subscribe(self, username: str) -> None:
        """Return once this process receives what is published for `username`.

        While the broker is down it returns at once; every socket catches up from the
        store when the broker comes back.
        """
        ...

    async def unsubscribe(self, username: str) -> None: ...

    async def publish(self, messages: Sequence[Addressed]) -> None:
        """Hand each envelope to every process subscribed to its user (all, for None).

        Never raises: a send is stored before it is published, and sockets catch up
        from the store after an outage.
        """
        ...


class MemoryBroker:
    def __init__(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self.presence: Presence = LocalPresence()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @property
    def up(self) -> bool:
        return True

    async def subscribe(self, username: str) -> None:
        return None

    async def unsubscribe(self, username: str) -> None:
        return None

    async def publish(self, messages: Sequence[Addressed]) -> None:
        for _username, envelope in messages:
            self._handler.dispatch(envelope)
