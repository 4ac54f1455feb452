"""Request and response models shared by the REST API and the socket messages."""

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
MAX_ID = 2**63 - 1
"""Ids are 64-bit database integers; a larger one names nothing."""
MAX_DATA_BYTES = 16 * 1024
MAX_SOCKET_TOKEN_LENGTH = 8192
"""The longest token an `auth` socket message may carry."""
MAX_RECIPIENTS = 100_000
"""The ceiling; NOTIFIER_MAX_RECIPIENTS (default 1000) is the limit a server enforces."""

Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def _check_data_size(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:
        # Integers beyond 64 bits: no client of a JSON API can be trusted to read them back.
        raise ValueError(f"data cannot be stored: {exc}") from exc
    if size > MAX_DATA_BYTES:
        raise ValueError(f"data is {size} bytes as JSON; the limit is {MAX_DATA_BYTES}")
    return value


NotificationData = Annotated[dict[str, Any], AfterValidator(_check_data_size)]


# The minimum length is a setting (NOTIFIER_PASSWORD_MIN_LENGTH), checked by the service.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(
        description="Single-use: exchange it at POST /token with grant_type=refresh_token."
    )


class TokenForm(BaseModel):
    """The OAuth2 token request (form-encoded): a password grant or a refresh grant."""

    grant_type: str = Field(default="password", description="`password` or `refresh_token`.")
    username: Annotated[str | None, StringConstraints(max_length=200)] = None
    password: Annotated[str | None, StringConstraints(max_length=1024)] = None
    refresh_token: Annotated[str | None, StringConstraints(max_length=8192)] = None
    scope: str = Field(default="", description="Ignored: a token carries the user's rights.")


class OAuthError(BaseModel):
    """A refusal of `POST /token`, `POST /session` or `POST /token/revoke` (RFC 6749 5.2)."""

    error: str = Field(description="RFC 6749 / RFC 7009 error code, e.g. `invalid_grant`.")
    error_description: str = Field(description="What went wrong, for people.")
    detail: str = Field(description="The same text as `error_description`.")


class OAuthValidationError(BaseModel):
    """A malformed request to those routes: RFC 6749's code with FastAPI's field errors."""

    error: Literal["invalid_request"]
    error_description: str = Field(description="The fields at fault and why, for people.")
    detail: list[dict[str, Any]] = Field(
        description="FastAPI's validation errors: `type`, `loc`, `msg` (as on other routes)."
    )


class WsTicketOut(BaseModel):
    ticket: str = Field(description="Use once, as `/ws?ticket=...`.")
    expires_in: int = Field(description="Seconds the ticket stays valid.")


class SessionInfo(BaseModel):
    authenticated: bool
    username: str | None = None
    is_admin: bool = False
    expires_in: int | None = Field(
        default=None, description="Seconds until the session's token expires."
    )
    reason: str | None = Field(
        default=None,
        description='Why there is no session: "no token", "token expired", "invalid token", '
        '"unknown user" (the same reasons a socket is closed with).',
    )


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    is_admin: bool = False


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool = Field(description="True: no login, no refresh, every token and socket ends.")


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, StringConstraints(max_length=1024)]
    new_password: Password


class RevokedSessions(BaseModel):
    revoked_sessions: int = Field(description="Sessions (logins) that were live until now.")


class UserOut(BaseModel):
    username: str
    is_admin: bool
    disabled: bool = False
    created_at: UtcDatetime


class Me(UserOut):
    open_sockets: int = Field(
        description="WebSockets this user has open on the whole server (every worker and process)."
    )


class NotificationContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(max_length=4000)] = ""
    data: NotificationData = Field(default_factory=dict)


def _unique(names: list[str]) -> list[str]:
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"usernames must be unique; repeated: {', '.join(duplicates)}")
    return names


class MultiNotificationCreate(NotificationContent):
    usernames: Annotated[
        list[Username],
        Field(min_length=1, max_length=MAX_RECIPIENTS),
        AfterValidator(_unique),
    ]


class NotificationOut(BaseModel):
    id: int
    username: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: UtcDatetime
    read: bool


class NotificationList(BaseModel):
    notifications: list[NotificationOut]


class Inbox(BaseModel):
    items: list[NotificationOut]
    unread_count: int


class ReadAllResult(BaseModel):
    updated: int


class UnknownUsersBody(BaseModel):
    detail: str
    usernames: list[str]


class BroadcastOut(BaseModel):
    recipients: int = Field(description="Users the notification was stored for.")
    title: str
    body: str
    data: dict[str, Any]
    created_at: UtcDatetime | None


class IdempotencyConflictBody(BaseModel):
    detail: str


class ValidationErrorBody(BaseModel):
    """FastAPI's own 422 body: one entry per invalid field."""

    detail: list[dict[str, Any]]


class ErrorBody(BaseModel):
    """Every HTTP error but 422 and the OAuth2 endpoints' refusals: one sentence."""

    detail: str


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    error: str | None = Field(default=None, description="The database error's type, when down.")


class ReadinessOut(BaseModel):
    status: Literal["ready", "unavailable"]
    database: Literal["up", "down"]
    broker: Literal["up", "down"]


# WebSocket messages (`GET /asyncapi.json` describes the protocol with these). The server
# builds its frames by hand for speed (`delivery/frames.py`, `api/socket_session.py`);
# tests check real frames against these models' schemas.


class NotificationFrame(BaseModel):
    """A new notification, or a replayed one (`since`)."""

    type: Literal["notification"]
    notification: NotificationOut
    unread_count: int = Field(ge=0, description="The user's unread notifications now.")


class ReadFrame(BaseModel):
    """Notifications of the user were marked read, on this device or another."""

    type: Literal["read"]
    ids: list[int] = Field(description="The notifications that changed.")
    unread_count: int = Field(ge=0, description="The user's unread notifications now.")


class TokenExpiringFrame(BaseModel):
    """The socket's token expires soon: answer with an `auth` message."""

    type: Literal["token_expiring"]
    expires_in: int = Field(ge=0, description="Seconds until the socket closes (1008).")


class AuthOkFrame(BaseModel):
    """The answer to an accepted `auth` message."""

    type: Literal["auth_ok"]
    expires_in: int = Field(ge=0, description="Seconds until the new token expires.")


class AuthMessage(BaseModel):
    """From the client: renew the socket's credentials in place with a fresh access token
    of the same user. Messages of other types are ignored."""

    type: Literal["auth"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SOCKET_TOKEN_LENGTH)]
