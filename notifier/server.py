"""Running the app under uvicorn, in this process or in several workers."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from notifier.app import create_app
from notifier.logs import uvicorn_log_config
from notifier.metrics import MULTIPROCESS_DIR_VARIABLE, process_running
from notifier.settings import Settings

METRICS_DIR_PREFIX = "notifier-metrics-"


@contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh private directory where the workers keep their metrics, removed at exit.

    Set in the environment the workers inherit: prometheus-client reads it when each
    worker imports it. Fresh per run, so counters start at 0 and no dead run's values
    are summed in. Its name carries this process's id, so that the next `serve` removes
    it if this one is killed before it can.
    """
    _remove_orphaned_metrics_dirs()
    directory = tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-")
    previous = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    os.environ[MULTIPROCESS_DIR_VARIABLE] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_DIR_VARIABLE, None)
        else:
            os.environ[MULTIPROCESS_DIR_VARIABLE] = previous
        shutil.rmtree(directory, ignore_errors=True)


def _remove_orphaned_metrics_dirs() -> None:
    """Directories left by a `serve` that was killed (SIGKILL) before removing its own."""
    for path in Path(tempfile.gettempdir()).glob(f"{METRICS_DIR_PREFIX}*-*"):
        owner = path.name.removeprefix(METRICS_DIR_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not process_running(int(owner)):
            shutil.rmtree(path, ignore_errors=True)


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve in this process, or in `workers` processes sharing one listening socket.

    Each worker builds its own app from the environment (and `.env`), as this process did,
    and keeps its metrics in a directory shared by the workers, so any worker's
    `/metrics` answers for all of them.
    """
    if workers == 1:
        _run(settings, create_app(settings), host, port, 1)
        return
    with shared_metrics_dir():
        _run(settings, "notifier.app:create_app", host, port, workers)


def _run(settings: Settings, app: FastAPI | str, host: str, port: int, workers: int) -> None:
    uvicorn.run(
        app,
        factory=workers > 1,
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(settings.log_format, settings.log_level),
        log_level=settings.log_level,
        # Import strings, not the classes: each worker process imports them.
        http="notifier.http_protocol:HeadLimitedHttpToolsProtocol",
        ws="notifier.ws_protocol:NotifierWebSocketProtocol",
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_max_size=settings.ws_max_message_size,
        # uvicorn annotates an int but hands it to asyncio.wait_for, which takes seconds
        # as a float: the setting keeps its fractions.
        timeout_graceful_shutdown=settings.shutdown_timeout,  # type: ignore[arg-type]
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
