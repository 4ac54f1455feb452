"""What routes and the socket handshake take from a request: the app's services, the
credentials presented, the caller they speak for, and the peer's address.

FastAPI dependencies live here, beside the routes (as in FastAPI's full-stack template),
so `auth/` stays free of FastAPI and of the wiring that builds it.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Protocol

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection
from starlette.types import Scope

from notifier.auth.accounts import Accounts
from notifier.auth.tokens import TokenClaims
from notifier.db.records import StoredUser
from notifier.db.store import Store
from notifier.delivery.broker import Broker
from notifier.delivery.service import NotificationService
from notifier.errors import AdminOnlyError, NotAuthenticatedError
from notifier.metrics import Metrics
from notifier.settings import Settings

COOKIE_NAME = "access_token"

bearer_scheme = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)
"""Documents the bearer token in OpenAPI; `find_credential` reads it."""


class Services(Protocol):
    """What routes use of the app's runtime (`notifier.runtime.Runtime` is one): named
    here so `api/` does not import the wiring above it."""

    @property
    def settings(self) -> Settings: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def store(self) -> Store: ...
    @property
    def accounts(self) -> Accounts: ...
    @property
    def broker(self) -> Broker: ...
    @property
    def notifications(self) -> NotificationService: ...


def services_of(connection: HTTPConnection) -> Services:
    services: Services = connection.app.state.runtime
    return services


async def get_services(connection: HTTPConnection) -> Services:
    # Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
    # hop on every request.
    return services_of(connection)


RuntimeDep = Annotated[Services, Depends(get_services)]


def client_address(scope: Scope, *, with_port: bool = False) -> str | None:
    """The peer's address (uvicorn substitutes X-Forwarded-For from trusted proxies);
    `host:port` for log lines, which tell a client's sockets apart."""
    client: Any = scope.get("client")
    if not isinstance(client, tuple | list):
        return None
    return f"{client[0]}:{client[1]}" if with_port else str(client[0])


class Source(Enum):
    """Where a credential was found, in the order `find_credential` looks."""

    TICKET = "ticket"
    """`?ticket=` (sockets only): a single-use ticket from `POST /ws-ticket`."""
    QUERY_TOKEN = "query token"
    """`?token=` (sockets only), if `NOTIFIER_WS_ALLOW_QUERY_TOKEN` allows it."""
    BEARER = "bearer"
    """`Authorization: Bearer`."""
    COOKIE = "cookie"
    """The `access_token` cookie of `POST /session`. Only browsers send cookies on their
    own; HTTP routes rely on SameSite=Lax and the cross-site guard, sockets on Origin."""


@dataclass(frozen=True, slots=True)
class Credential:
    source: Source
    value: str


def _bearer(connection: HTTPConnection) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def find_credential(connection: HTTPConnection, *, in_query: bool = False) -> Credential | None:
    """The one credential a request or socket handshake presents, for HTTP and sockets
    alike: with `in_query` (sockets) a ticket, then a query token; then a bearer token,
    then the cookie. A present `ticket` parameter wins even when empty (it is refused)."""
    if in_query:
        params = connection.query_params
        if "ticket" in params:
            return Credential(Source.TICKET, params["ticket"])
        if params.get("token"):
            return Credential(Source.QUERY_TOKEN, params["token"])
    bearer = _bearer(connection)
    if bearer:
        return Credential(Source.BEARER, bearer)
    cookie = connection.cookies.get(COOKIE_NAME)
    if cookie:
        return Credential(Source.COOKIE, cookie)
    return None


async def current_credentials(
    connection: HTTPConnection,
    _documented: Annotated[str | None, Depends(bearer_scheme)],
) -> tuple[StoredUser, TokenClaims]:
    """The caller and their token's claims. Raises `NotAuthenticatedError`, or `TokenError`
    for a bad, expired, revoked or disabled one (401 either way)."""
    credential = find_credential(connection)
    if credential is None:
        raise NotAuthenticatedError
    # Not through `RuntimeDep`: every dependency costs FastAPI a resolution step on
    # every request, and this one runs on all authenticated routes.
    return await services_of(connection).accounts.resolve(credential.value)


CurrentCredentials = Annotated[tuple[StoredUser, TokenClaims], Depends(current_credentials)]


async def current_user(credentials: CurrentCredentials) -> StoredUser:
    return credentials[0]


CurrentUser = Annotated[StoredUser, Depends(current_user)]


async def require_admin(credentials: CurrentCredentials) -> StoredUser:
    user = credentials[0]
    if not user.is_admin:
        raise AdminOnlyError
    return user


AdminUser = Annotated[StoredUser, Depends(require_admin)]
