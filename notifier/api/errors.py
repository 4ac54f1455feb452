"""HTTP errors shared by several routers, so each is written (and documented) once."""

from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError

from notifier.auth.accounts import PasswordTooShort
from notifier.schemas import ErrorBody

Responses = dict[int | str, dict[str, Any]]
"""The `responses=` of a route: what it answers besides its success, with body schemas."""

THROTTLED: Responses = {
    429: {
        "model": ErrorBody,
        "description": "Too many failed logins for this username or address; see Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}
UNAUTHENTICATED: Responses = {
    401: {
        "model": ErrorBody,
        "description": "No valid token (header or cookie): `not authenticated`, `invalid "
        "token`, `token expired`, `unknown user`, `token revoked`, `user disabled`",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    }
}
ADMIN_ONLY: Responses = {
    **UNAUTHENTICATED,
    403: {"model": ErrorBody, "description": "A valid token of a user who is not an admin"},
}
TOO_LARGE: Responses = {
    413: {"model": ErrorBody, "description": "The body is larger than NOTIFIER_MAX_BODY_SIZE"}
}
JSON_BODY_ERRORS: Responses = {
    400: {"model": ErrorBody, "description": "The body cannot be read as text (not UTF-8)"},
    **TOO_LARGE,
}
"""What a route with a JSON body answers before its handler runs (besides 422)."""


def throttled(retry_after: int) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many failed logins; retry in {retry_after} seconds",
        headers={"Retry-After": str(retry_after)},
    )


def unauthorized_login() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="incorrect username or password",
        headers={"WWW-Authenticate": "Bearer"},
    )


def password_too_short(field: str, exc: PasswordTooShort) -> RequestValidationError:
    """A 422 shaped like FastAPI's own field errors (without echoing the password)."""
    return RequestValidationError(
        [
            {
                "type": "string_too_short",
                "loc": ("body", field),
                "msg": str(exc),
                "ctx": {"min_length": exc.min_length},
            }
        ]
    )


def too_many_items(field: str, limit: int) -> RequestValidationError:
    """A 422 for a list longer than its configured limit, shaped like FastAPI's own."""
    return RequestValidationError(
        [
            {
                "type": "too_long",
                "loc": ("body", field),
                "msg": f"List should have at most {limit} items",
                "ctx": {"max_length": limit},
            }
        ]
    )
