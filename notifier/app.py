"""The app factory: `create_app(settings)` builds one Notifier ASGI app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from notifier import __version__
from notifier.api import (
    asyncapi,
    auth,
    health,
    inbox,
    metrics,
    notifications,
    pages,
    users,
    ws,
)
from notifier.api.cross_site import CrossSiteRequestGuard, document_refusal
from notifier.api.deps import COOKIE_NAME
from notifier.api.json_input import EncodableJSONResponse
from notifier.errors import NotifierError
from notifier.gc_tuning import tune_for_many_sockets
from notifier.middleware import BodySizeLimitMiddleware, SecurityHeadersMiddleware
from notifier.runtime import Runtime
from notifier.settings import Settings
from notifier.shutdown import close_first_on_exit_signals
from notifier.transport_limits import TRANSPORT_LIMITS, TransportLimits

DESCRIPTION = """
Authenticated live notifications. Log in at `POST /token` (renew with its
`refresh_token`), open a WebSocket at `/ws?ticket=...` (a ticket from `POST /ws-ticket`),
`/ws?token=...`, with the `access_token` cookie, or with `Authorization: Bearer`, and
receive `{"type": "notification", "notification": {...}}` text frames. Add
`since=<last id>` to replay what was stored while you were away. A socket renews its
token in place with `{"type": "auth", "token": ...}`. A closed socket gets a code and a
reason from a fixed list: the socket protocol is described as an AsyncAPI 3.0 document at
`GET /asyncapi.json`; see also the README's client protocol and SECURITY.md.
"""


class NotifierApp(FastAPI):
    """FastAPI, except that `/ws` sockets are served before any middleware or routing.

    A socket lives for hours and holds every layer it passed through (each middleware's
    frame, FastAPI's exit stacks) for its whole life; none of them does anything for a
    socket, and skipping them saves several KiB per open socket.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == scope.get("root_path", "") + ws.PATH:
            await ws.serve_socket(scope, receive, send, self.state.runtime)
            return
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = document_refusal(super().openapi())
        return self.openapi_schema

    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, so a 500 gets the headers too.
        return SecurityHeadersMiddleware(super().build_middleware_stack(), COOKIE_NAME)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()  # read from env / .env
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, object]]:
        await runtime.start()
        tune_for_many_sockets()
        restore_signals = close_first_on_exit_signals(runtime.close_sockets)
        try:
            # The lifespan state reaches uvicorn's protocol objects, which bound heads,
            # pings and blocked output with these.
            yield {TRANSPORT_LIMITS: TransportLimits.from_settings(settings)}
        finally:
            restore_signals()
            await runtime.stop()

    app = NotifierApp(
        title="Notifier",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by `pages` from the package's own Swagger UI, under a CSP; no ReDoc (it
        # would need assets from a CDN or a second bundle).
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_size)
    app.add_middleware(CrossSiteRequestGuard, allowed_origins=settings.allowed_origins)
    if settings.cors_origins:
        # Off unless configured: the API is for apps and same-origin pages first.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            max_age=600,
        )
    for router in (auth.router, users.router, notifications.router, inbox.router, health.router):
        app.include_router(router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    app.include_router(pages.router)
    app.include_router(asyncapi.router)
    app.mount(pages.SWAGGER_UI_MOUNT, pages.swagger_ui_files(), name="swagger-ui")
    app.mount("/static", pages.static_files(), name="static")

    @app.exception_handler(RequestValidationError)
    async def _invalid_input(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, except that text UTF-8 cannot carry is escaped, not a 500.
        return EncodableJSONResponse(
            {"detail": jsonable_encoder(exc.errors())},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(NotifierError)
    async def _refused(_request: Request, exc: NotifierError) -> JSONResponse:
        # The one place the catalog becomes HTTP (the OAuth2 routes answer their own
        # codes in RFC 6749's shape, see `api.oauth_errors.OAuthRoute`).
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    return app
