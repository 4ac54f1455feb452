"""The service objects one app instance owns, built from settings in one place."""

from collections.abc import Sequence
from dataclasses import dataclass

from notifier.auth.accounts import Accounts
from notifier.auth.setup import build_accounts
from notifier.db.store import Store
from notifier.delivery.broker import Broker, MemoryBroker
from notifier.delivery.closes import SHUTDOWN, Close
from notifier.delivery.hub import Hub
from notifier.delivery.service import NotificationService
from notifier.settings import Settings


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    accounts: Accounts
    hub: Hub
    broker: Broker
    notifications: NotificationService

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        store = Store(settings.database_url)
        hub = Hub()
        broker = MemoryBroker(hub)

        async def close_sockets(
            username: str, close: Close, session_ids: Sequence[str] | None
        ) -> None:
            hub.close_sockets(username, close, session_ids)

        return cls(
            settings=settings,
            store=store,
            accounts=build_accounts(settings, store, close_sockets),
            hub=hub,
            broker=broker,
            notifications=NotificationService(store, broker),
        )

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.hub.close_all(SHUTDOWN)
        await self.broker.stop()
        await self.store.close()
