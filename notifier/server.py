"""Running the app under uvicorn, in this process or in several workers."""

import uvicorn

from notifier.app import create_app
from notifier.logs import uvicorn_log_config
from notifier.settings import Settings


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve in this process, or in `workers` processes sharing one listening socket.

    Each worker builds its own app from the environment (and `.env`), as this process did.
    """
    app = create_app(settings) if workers == 1 else "notifier.app:create_app"
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
        timeout_graceful_shutdown=settings.shutdown_timeout,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
