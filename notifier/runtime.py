"""The service objects one app instance owns, built from settings in one place."""

from dataclasses import dataclass

from notifier.auth.accounts import Accounts
from notifier.auth.passwords import PasswordHasher
from notifier.auth.tokens import TokenCodec
from notifier.db.store import Store
from notifier.delivery.broker import Broker, MemoryBroker
from notifier.delivery.closes import SHUTDOWN
from notifier.delivery.hub import Hub
from notifier.delivery.service import NotificationService
from notifier.metrics import Metrics
from notifier.settings import Settings


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    accounts: Accounts
    hub: Hub
    broker: Broker
    notifications: NotificationService
    metrics: Metrics

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        store = Store(settings.database_url)
        tokens = TokenCodec(
            settings.secret_key.get_secret_value(),
            settings.jwt_algorithm,
            settings.access_token_ttl,
        )
        hub = Hub()
        broker = MemoryBroker(hub)
        return cls(
            settings=settings,
            store=store,
            accounts=Accounts(store, PasswordHasher(), tokens),
            hub=hub,
            broker=broker,
            notifications=NotificationService(store, broker),
            metrics=Metrics(),
        )

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.hub.close_all(SHUTDOWN)
        await self.broker.stop()
        await self.store.close()
