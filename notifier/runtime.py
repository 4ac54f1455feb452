"""The service objects one app instance owns, built from settings in one place."""

from dataclasses import dataclass

from notifier import closes
from notifier.auth.accounts import Accounts
from notifier.auth.sessions import CloseSockets
from notifier.auth.setup import build_accounts as build_auth
from notifier.db.engine import PoolOptions
from notifier.db.store import Store
from notifier.delivery.broker import Broker, MemoryBroker
from notifier.delivery.hub import Hub
from notifier.delivery.redis_broker import RedisBroker
from notifier.delivery.service import NotificationService
from notifier.metrics import Metrics
from notifier.settings import Settings


def pool_options(settings: Settings) -> PoolOptions:
    """The PostgreSQL pool the settings ask for (SQLite keeps its own, see `db.engine`)."""
    return PoolOptions(
        size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        recycle=settings.database_pool_recycle,
        timeout=settings.database_pool_timeout,
        pgbouncer=settings.database_pgbouncer,
    )


def build_accounts(
    settings: Settings, store: Store, close_sockets: CloseSockets | None = None
) -> Accounts:
    """Accounts alone (the CLI's), or wired to close revoked sockets on every worker."""
    return build_auth(settings, store, close_sockets)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    metrics: Metrics
    store: Store
    accounts: Accounts
    hub: Hub
    broker: Broker
    notifications: NotificationService

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        metrics = Metrics()
        store = Store(settings.database_url, pool_options(settings))
        hub = Hub(metrics)
        broker: Broker
        if settings.uses_memory_broker:
            broker = MemoryBroker(hub)
        else:
            broker = RedisBroker(
                settings.broker_url,
                settings.broker_channel_prefix,
                hub,
                metrics,
                presence_ttl=settings.presence_ttl,
            )
        notifications = NotificationService(store, hub, broker, metrics)
        return cls(
            settings=settings,
            metrics=metrics,
            store=store,
            accounts=build_accounts(settings, store, notifications.close_sockets),
            hub=hub,
            broker=broker,
            notifications=notifications,
        )

    async def start(self) -> None:
        await self.broker.start()
        await self.notifications.start()
        self.metrics.broker_up.set(1 if self.broker.up else 0)

    async def close_sockets(self) -> None:
        """Close every socket with 1012 and its own jittered reconnect hint."""
        spread = self.settings.shutdown_reconnect_spread_ms
        await self.hub.close_all(lambda: closes.shutdown(spread))

    async def stop(self) -> None:
        await self.close_sockets()
        await self.notifications.stop()
        await self.broker.stop()
        await self.store.close()
        self.metrics.close()
