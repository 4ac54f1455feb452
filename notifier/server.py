"""Running the app under uvicorn, closing sockets our way on shutdown."""

import uvicorn

from notifier.app import create_app
from notifier.delivery.closes import SHUTDOWN
from notifier.logs import redact_uvicorn_logs
from notifier.runtime import Runtime
from notifier.settings import Settings


class NotifierServer(uvicorn.Server):
    """A uvicorn server that closes every socket with 1012 and a reason before it stops.

    uvicorn's own shutdown closes sockets with a bare 1012 and only then runs the app's
    lifespan shutdown; closing them first lets clients read why, and when to come back.
    """

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self._runtime = runtime

    async def shutdown(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await self._runtime.hub.close_all(SHUTDOWN)
        await super().shutdown(sockets)


def uvicorn_config(settings: Settings, app: object, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level=settings.log_level,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_max_size=settings.ws_max_message_size,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def serve(settings: Settings, host: str, port: int) -> None:
    app = create_app(settings)
    config = uvicorn_config(settings, app, host, port)  # configures uvicorn's loggers
    redact_uvicorn_logs()
    NotifierServer(config, app.state.runtime).run()
