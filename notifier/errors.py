"""The error catalog: every refusal Notifier raises, with the HTTP answer it becomes.

Each error carries its status, its `detail` and its headers, so `db`, `auth` and `delivery`
raise them without knowing HTTP, and one handler (`notifier.app`) turns any of them into
`{"detail": ...}` with that status and those headers. The OAuth2 routes answer the errors
that carry an `oauth_error` code in RFC 6749's shape instead (`api/oauth_errors.py`).

Hierarchy (status in brackets):

* NotifierError [500]
  + NotAuthenticatedError [401]        no token in the header or the cookie
  + TokenError [401]                   a token that cannot be used; `reason` is a 1008 close reason
  + AdminOnlyError [403]
  + InvalidCredentialsError [401]      wrong username or password (OAuth2: invalid_grant)
  |  + WrongCurrentPasswordError [403] on a password change
  + AccountDisabledError [403]         right password, disabled account (OAuth2: invalid_grant)
  + LoginThrottledError [429]          Retry-After (OAuth2: invalid_grant)
  + InvalidGrantError [400]            a refresh token that cannot be exchanged (invalid_grant)
  + OAuthRequestError [400]            a malformed OAuth2 request, with its own code
  + PasswordTooShortError [422]        shaped like FastAPI's own field errors
  + UsernameTakenError [409]
  + CannotDisableSelfError [400]
  + UserNotFoundError [404]
  + NotificationNotFoundError [404]
  + UnknownUsersError [404]            also lists the unknown `usernames`
  + IdempotencyKeyReusedError [422]
  + MetricsTokenRequiredError [401]
  + KeyConfigError [500]               raised while starting, never while answering

Not in the catalog: control flow that never reaches a client as an error (`SocketGone`,
the body-size limit's and the unit runner's own signals).
"""

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar

NO_HEADERS: Mapping[str, str] = MappingProxyType({})
BEARER_CHALLENGE: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": "Bearer"})


class NotifierError(Exception):
    """Base of the catalog: `status_code`, `detail` (the body's) and `headers`."""

    status_code: ClassVar[int] = 500
    message: ClassVar[str] = "internal error"
    """The `detail` when the raiser gives none."""
    default_headers: ClassVar[Mapping[str, str]] = NO_HEADERS
    oauth_error: str | None = None
    """The RFC 6749 5.2 `error` code the OAuth2 routes answer with; None: not an OAuth2 error."""

    def __init__(self, detail: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.detail = self.message if detail is None else detail
        super().__init__(self.detail)
        self.headers = {**self.default_headers, **(headers or {})}

    def body(self) -> dict[str, object]:
        """The JSON body of the HTTP answer."""
        return {"detail": self.detail}


# Credentials


class NotAuthenticatedError(NotifierError):
    status_code = 401
    message = "not authenticated"
    default_headers = BEARER_CHALLENGE


class TokenError(NotifierError):
    """The token cannot be used; `reason` is safe to show to the client, and is the reason
    of the 1008 close a socket gets for it."""

    status_code = 401
    default_headers = BEARER_CHALLENGE

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AdminOnlyError(NotifierError):
    status_code = 403
    message = "admin only"


class InvalidCredentialsError(NotifierError):
    """Wrong username or password (deliberately not saying which)."""

    status_code = 401
    message = "incorrect username or password"
    default_headers = BEARER_CHALLENGE
    oauth_error = "invalid_grant"


class WrongCurrentPasswordError(InvalidCredentialsError):
    """The caller's current password, given to change it, is wrong (counted as a failed
    login); 403, since the caller is authenticated."""

    status_code = 403
    message = "current password is incorrect"
    default_headers = NO_HEADERS


class AccountDisabledError(NotifierError):
    """The password was right, but an admin disabled the account."""

    status_code = 403
    message = "user disabled"
    # RFC 6749 5.2 names no other code for resource owner credentials that cannot be used.
    oauth_error = "invalid_grant"


class LoginThrottledError(NotifierError):
    status_code = 429
    oauth_error = "invalid_grant"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(
            f"too many failed logins; retry in {self.retry_after} seconds",
            {"Retry-After": str(self.retry_after)},
        )


class InvalidGrantError(NotifierError):
    """A refresh token that cannot be exchanged; `reason` is safe to show."""

    status_code = 400
    oauth_error = "invalid_grant"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OAuthRequestError(NotifierError):
    """An OAuth2 request the token routes cannot read: `oauth_error` says how (e.g.
    `invalid_request`, `unsupported_grant_type`)."""

    status_code = 400

    def __init__(self, oauth_error: str, description: str) -> None:
        super().__init__(description)
        self.oauth_error = oauth_error


# Accounts


class PasswordTooShortError(NotifierError):
    """A new password under the minimum length; answered like FastAPI's field errors (422,
    `detail` a list), naming the body `field` and never echoing the password."""

    status_code = 422

    def __init__(self, min_length: int, field: str = "password") -> None:
        super().__init__(f"password must be at least {min_length} characters")
        self.min_length = min_length
        self.field = field

    def body(self) -> dict[str, object]:
        return {
            "detail": [
                {
                    "type": "string_too_short",
                    "loc": ["body", self.field],
                    "msg": self.detail,
                    "ctx": {"min_length": self.min_length},
                }
            ]
        }


class UsernameTakenError(NotifierError):
    """A user with that name already exists."""

    status_code = 409
    message = "username taken"

    def __init__(self, username: str) -> None:
        super().__init__()
        self.username = username


class CannotDisableSelfError(NotifierError):
    status_code = 400
    message = "you cannot disable yourself"


class UserNotFoundError(NotifierError):
    status_code = 404
    message = "user not found"


# Notifications


class NotificationNotFoundError(NotifierError):
    """Not one of the caller's notifications (whether or not it exists)."""

    status_code = 404
    message = "notification not found"


class UnknownUsersError(NotifierError):
    """Some recipients do not exist; nothing was stored or sent."""

    status_code = 404
    message = "unknown users"

    def __init__(self, usernames: Sequence[str]) -> None:
        super().__init__()
        self.usernames = list(usernames)

    def body(self) -> dict[str, object]:
        return {"detail": self.detail, "usernames": self.usernames}


class IdempotencyKeyReusedError(NotifierError):
    """The sender used this idempotency key for a different request within its window."""

    status_code = 422
    message = "Idempotency-Key was already used for a different request"

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


# Operations


class MetricsTokenRequiredError(NotifierError):
    status_code = 401
    message = "metrics token required"
    default_headers = BEARER_CHALLENGE


class KeyConfigError(NotifierError, ValueError):
    """A key file is missing, unreadable, or does not fit the configured algorithm."""
