"""Prometheus instruments, one registry per app instance (so tests can run several apps).

One process (the default): each app's registry holds its instruments plus the process and
Python collectors, and a scrape renders it.

Several workers (`notifier serve --workers N`): `serve` gives the workers a private
directory in PROMETHEUS_MULTIPROC_DIR, where prometheus-client keeps every worker's values
in memory-mapped files. Any worker answering a scrape sums the files of all of them:
counters and histograms add up (a dead worker's counts stay, so totals never go back),
`notifier_open_sockets` is the sum over live workers, `notifier_broker_up` their minimum.
Process metrics are read for every live worker from /proc, labelled with its `pid`; the
Python GC metrics are those of the worker that answered, labelled with its `pid`.
"""

import contextlib
import glob
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Every worker writes this file when it builds its instruments and removes it when it
# stops (`mark_process_dead`): the live workers are the pids named by these files.
_LIVE_FILE = re.compile(r"gauge_livesum_(\d+)\.db")


def multiprocess_dir() -> Path | None:
    """The shared directory when prometheus-client runs in multiprocess mode, else None.

    prometheus-client chooses its mode once, at import, from the environment; this reads
    the same decision back rather than the environment a second time.
    """
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return Path(os.environ[MULTIPROCESS_DIR_VARIABLE])


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir()
        self.open_sockets = Gauge(
            "notifier_open_sockets",
            "Sockets currently open (summed over live workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
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
        # livemin: 0 as soon as any live worker lost its subscription (its sockets get
        # nothing live until it is back); a dead worker's last value does not count.
        self.broker_up = Gauge(
            "notifier_broker_up",
            "1 while the broker subscription is live (in every live worker), else 0.",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        if self.multiprocess_dir is None:
            self._scraped = self.registry
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        else:
            # Scrapes read the shared files, not this worker's instruments.
            self._scraped = CollectorRegistry(auto_describe=False)
            self._scraped.register(WorkersCollector(self.multiprocess_dir))

    def exposition(self) -> bytes:
        """The Prometheus text format of this app, or of every worker in multiprocess mode."""
        return generate_latest(self._scraped)

    def close(self) -> None:
        """This worker stops: its live gauges stop counting (its counters stay)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))


class WorkersCollector(Collector):
    """Every worker's instruments, merged, plus each live worker's process metrics."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._merged = MultiProcessCollector(None, str(directory))
        self._platform = PlatformCollector(registry=None)
        # GCCollector insists on registering somewhere; a registry of its own.
        self._gc = GCCollector(registry=CollectorRegistry(auto_describe=False))

    def collect(self) -> Iterable[Metric]:
        pids = self._live_pids()  # first: marks killed workers dead before merging
        yield from self._merged.collect()
        yield from self._platform.collect()
        # One family per name, with a sample per worker (a name may be described once).
        families: dict[str, Metric] = {}
        for pid in pids:
            process = ProcessCollector(pid=_constant(pid), registry=None)
            for metric in _with_pid(process, pid):
                family = families.setdefault(metric.name, metric)
                if family is not metric:
                    family.samples.extend(metric.samples)
        yield from families.values()
        yield from _with_pid(self._gc, os.getpid())

    def _live_pids(self) -> list[int]:
        """Workers that still run; a worker killed without stopping is marked dead here."""
        pids = []
        for path in glob.glob(str(self._directory / "gauge_livesum_*.db")):
            match = _LIVE_FILE.fullmatch(os.path.basename(path))
            if match is None:
                continue
            pid = int(match.group(1))
            if process_running(pid):
                pids.append(pid)
            else:
                mark_process_dead(pid, str(self._directory))
        return sorted(pids)


def _constant(pid: int) -> Callable[[], int]:
    """`ProcessCollector` asks for a function that names the process."""
    return lambda: pid


def process_running(pid: int) -> bool:
    """Whether `pid` is a process that runs (not a zombie waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A worker killed with SIGKILL stays a zombie until the supervisor reaps it.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _with_pid(collector: Collector, pid: int) -> Iterator[Metric]:
    """The collector's metrics with a `pid` label, so workers' series stay apart."""
    for metric in collector.collect():
        metric.samples = [
            sample._replace(labels={**sample.labels, "pid": str(pid)}) for sample in metric.samples
        ]
        yield metric
