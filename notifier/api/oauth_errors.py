"""OAuth2 error responses (RFC 6749 5.2, RFC 7009) for the token and revocation routes.

OAuth2 client libraries read `error` to tell a refusal from a token: without it Authlib
stores the refusal as the session's token. Each body also keeps `detail`, like every
other route's error.
"""

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from notifier.api.json_input import InputCheckedRoute
from notifier.errors import NotifierError

# RFC 6749 5.1: responses carrying tokens must not be cached (nor refusals of them).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

INVALID_REQUEST = "invalid_request"
UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"


def oauth_error_response(
    error: str,
    description: str,
    status_code: int,
    headers: Mapping[str, str] | None = None,
    detail: object = None,
) -> JSONResponse:
    """RFC 6749 5.2: `error` (the code clients branch on) and `error_description`, plus
    `detail` like every other route's error."""
    body = {
        "error": error,
        "error_description": description,
        "detail": description if detail is None else detail,
    }
    return JSONResponse(body, status_code=status_code, headers={**NO_STORE, **(headers or {})})


def _describe(errors: Any) -> str:
    """`username: Field required; ...` from FastAPI's errors, without echoing input."""
    parts = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        parts.append(f"{'.'.join(location) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "malformed request"


class OAuthRoute(InputCheckedRoute):
    """A route that answers in RFC 6749's shape: malformed requests (`invalid_request`,
    with FastAPI's usual `detail` list) and every catalog error that has an `oauth_error`
    code, with the status, detail and headers the catalog gives it. So OAuth2 client
    libraries raise their error for each. Other errors (a 401 of `/ws-ticket`) keep the
    app's usual body.

    Lone surrogates in a JSON body are refused the same way (`InputCheckedRoute`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_oauth(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                errors = exc.errors()
                return oauth_error_response(
                    INVALID_REQUEST,
                    _describe(errors),
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    detail=jsonable_encoder(errors),
                )
            except NotifierError as exc:
                if exc.oauth_error is None:
                    raise
                return oauth_error_response(
                    exc.oauth_error, exc.detail, exc.status_code, exc.headers
                )

        return handle_oauth
