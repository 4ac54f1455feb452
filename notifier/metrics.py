"""Prometheus instruments, one registry per app instance (so tests can run several apps).

With several workers each process keeps its own counters; scrape each worker, or sum
them in Prometheus by instance.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.open_sockets = Gauge(
            "notifier_open_sockets",
            "Sockets currently open in this process.",
            registry=self.registry,
        )
        self.sockets_opened = Counter(
            "notifier_sockets_opened",
            "Sockets authenticated and registered.",
            registry=self.registry,
        )
        self.sockets_rejected = Counter(
            "notifier_sockets_rejected",
            "Sockets closed before joining, by close reason.",
            ["reason"],
            registry=self.registry,
        )
        self.notifications_stored = Counter(
            "notifier_notifications_stored",
            "Notification rows stored (one per recipient).",
            registry=self.registry,
        )
        self.deliveries = Counter(
            "notifier_deliveries",
            "Notification frames written to sockets, live or replayed.",
            ["path"],
            registry=self.registry,
        )
        # Resolved once: label lookups cost on the hot path.
        self.live_deliveries = self.deliveries.labels("live")
        self.store_deliveries = self.deliveries.labels("store")
        self.delivery_latency = Histogram(
            "notifier_delivery_latency_seconds",
            "Time from a notification's commit to its frames being written to live sockets "
            "(once per publication for frames written at once, once per frame written later).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.queue_overflows = Counter(
            "notifier_queue_overflows",
            "Times a socket's queue filled and it switched to catching up from the store.",
            registry=self.registry,
        )
        self.broker_up = Gauge(
            "notifier_broker_up",
            "1 while the broker subscription is live, else 0.",
            registry=self.registry,
        )
