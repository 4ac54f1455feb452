"""How routes document the errors they answer (`responses=`), so each is written once.

The errors themselves, with their status, detail and headers, are `notifier.errors`."""

from typing import Any

from fastapi.exceptions import RequestValidationError

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
