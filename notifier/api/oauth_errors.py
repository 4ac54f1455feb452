"""OAuth2 error responses (RFC 6749 5.2, RFC 7009) for the token and revocation routes.

OAuth2 client libraries read `error` to tell a refusal from a token: without it Authlib
stores the refusal as the session's token. Each body also keeps `detail`, like every
other route's error.
"""

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from notifier.api.json_input import InputCheckedRoute

# RFC 6749 5.1: responses carrying tokens must not be cached (nor refusals of them).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

INVALID_REQUEST = "invalid_request"
INVALID_GRANT = "invalid_grant"
UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"


class OAuthErrorResponse(Exception):
    """A refusal by an OAuth2 endpoint, answered as RFC 6749 5.2 says: `error` (the code
    clients branch on) and `error_description`, plus `detail` like every other route."""

    def __init__(
        self,
        error: str,
        description: str,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        headers: Mapping[str, str] | None = None,
        detail: object = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code
        self.headers = dict(headers or {})
        self.detail = description if detail is None else detail

    @classmethod
    def of(cls, error: str, refusal: HTTPException) -> "OAuthErrorResponse":
        """The OAuth2 form of a refusal the API words the same way elsewhere."""
        return cls(error, str(refusal.detail), refusal.status_code, refusal.headers)


def oauth_error_response(exc: OAuthErrorResponse) -> JSONResponse:
    body = {"error": exc.error, "error_description": exc.description, "detail": exc.detail}
    return JSONResponse(body, status_code=exc.status_code, headers={**NO_STORE, **exc.headers})


def _describe(errors: Any) -> str:
    """`username: Field required; ...` from FastAPI's errors, without echoing input."""
    parts = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        parts.append(f"{'.'.join(location) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "malformed request"


class OAuthRoute(InputCheckedRoute):
    """A route whose malformed requests get the OAuth2 body (`invalid_request`, with
    FastAPI's usual `detail` list), so OAuth2 client libraries raise their error for it.

    Lone surrogates in a JSON body are refused the same way (`InputCheckedRoute`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_oauth(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                errors = exc.errors()
                raise OAuthErrorResponse(
                    INVALID_REQUEST,
                    _describe(errors),
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    detail=jsonable_encoder(errors),
                ) from exc

        return handle_oauth
