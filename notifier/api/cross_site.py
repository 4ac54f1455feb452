"""Which browser origins may use the session cookie: the server's own, and the operator's list.

A browser attaches the cookie to requests that other pages start, including pages on
another port of the same host (same site, so `SameSite=Lax` lets it through). Unsafe
requests the cookie authenticates, and `POST /session` (which sets it: login CSRF), are
refused with 403 `{"detail": "origin not allowed"}` when their Origin (or, without one,
their Referer) names another origin. The same rule decides cookie sockets on `/ws`.
"""

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from notifier import closes
from notifier.api.deps import Source, find_credential
from notifier.api.oauth_errors import INVALID_REQUEST, NO_STORE

# The words a refused cookie socket gets in its 1008 close, so both say the same.
ORIGIN_NOT_ALLOWED = closes.ORIGIN_NOT_ALLOWED.reason
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PATH = "/session"
CROSS_SITE_REFUSAL = "`origin not allowed`: the session cookie sent from a page of another origin"


def origin_allowed(origin: str, host: str, allowed: Sequence[str]) -> bool:
    """`origin` is listed, or names the host the request was sent to (its Host header).

    uvicorn rewrites the scheme and client from trusted proxies only; the Host header is
    what the browser asked for (a proxy passes it on), so it is the server's own origin.
    """
    if origin.rstrip("/") in allowed:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(host) and netloc.lower() == host.lower()


def referer_origin(referer: str) -> str:
    """`scheme://host[:port]` of a Referer URL ("" when it is not a URL)."""
    try:
        parts = urlsplit(referer)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


# The OAuth2 endpoints answer every refusal as RFC 6749 5.2 says, this one too.
OAUTH_PATHS = frozenset({"/token", LOGIN_PATH, "/token/revoke"})


def _refusal(scope: Scope) -> JSONResponse:
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    if scope["method"] == "POST" and path in OAUTH_PATHS:
        body = {
            "error": INVALID_REQUEST,
            "error_description": ORIGIN_NOT_ALLOWED,
            "detail": ORIGIN_NOT_ALLOWED,
        }
        return JSONResponse(body, status_code=403, headers=NO_STORE)
    return JSONResponse({"detail": ORIGIN_NOT_ALLOWED}, status_code=403)


class CrossSiteRequestGuard:
    """Answer 403 to unsafe cookie requests (and logins) started by another origin's page.

    Requests with `Authorization: Bearer` are apps, not browsers acting on their own, and
    a request without Origin or Referer (curl, scripts) was not started by a page.
    """

    def __init__(self, app: ASGIApp, allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.allowed_origins = tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            if self._refused(scope, headers):
                response = _refusal(scope)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refused(self, scope: Scope, headers: Headers) -> bool:
        credential = find_credential(HTTPConnection(scope))
        if credential is not None and credential.source is Source.BEARER:
            return False
        logging_in = scope["method"] == "POST" and scope["path"] == (
            scope.get("root_path", "") + LOGIN_PATH
        )
        if not logging_in and credential is None:
            return False
        origin = headers.get("origin")
        if origin is None:
            referer = headers.get("referer")
            if referer is None:
                return False
            origin = referer_origin(referer)
        return not origin_allowed(origin, headers.get("host", ""), self.allowed_origins)


def document_refusal(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the guard's 403 to every unsafe operation of an OpenAPI document.

    The guard answers before routing, so no route declares it; without this the document
    would omit an answer every cookie-authenticated write can get.
    """
    for operations in openapi.get("paths", {}).values():
        for method, operation in operations.items():
            if method.upper() not in UNSAFE_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            refusal = responses.get("403")
            if refusal is None:
                responses["403"] = {
                    "description": CROSS_SITE_REFUSAL,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                    },
                }
            elif CROSS_SITE_REFUSAL not in refusal.get("description", ""):
                refusal["description"] = f"{refusal.get('description', '')}; {CROSS_SITE_REFUSAL}"
    return openapi
