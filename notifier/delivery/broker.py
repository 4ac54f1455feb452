"""Cross-process delivery. The broker is the only owner of fan-out between processes.

`MemoryBroker` is the embedded default: one process, so publishing is handing the
frames to this process's hub.
"""

from collections.abc import Sequence
from typing import Protocol

from notifier.delivery.frames import Delivery
from notifier.delivery.hub import Hub


class Broker(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, deliveries: Sequence[Delivery]) -> None:
        """Hand each delivery to every process holding a socket of its recipient."""
        ...


class MemoryBroker:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, deliveries: Sequence[Delivery]) -> None:
        self._hub.deliver(deliveries)
