"""FastAPI dependencies that turn a request's credentials into a user."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from notifier.auth.tokens import TokenClaims, TokenError
from notifier.db.store import StoredUser
from notifier.runtime import Runtime

COOKIE_NAME = "access_token"

bearer_scheme = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)


def runtime_of(connection: HTTPConnection) -> Runtime:
    return connection.app.state.runtime


async def get_runtime(connection: HTTPConnection) -> Runtime:
    # Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
    # hop on every request.
    return runtime_of(connection)


def client_address(connection: HTTPConnection) -> str | None:
    """The peer's address (uvicorn substitutes X-Forwarded-For from trusted proxies)."""
    return connection.client.host if connection.client else None


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def request_token(request: Request, bearer: str | None) -> str | None:
    # Browsers that logged in with POST /session send the cookie; SameSite=Lax keeps
    # other sites' POSTs from carrying it.
    return bearer or request.cookies.get(COOKIE_NAME)


async def current_credentials(
    request: Request,
    bearer: Annotated[str | None, Depends(bearer_scheme)],
) -> tuple[StoredUser, TokenClaims]:
    """The caller and their token's claims; 401 for a missing, bad, revoked or disabled one."""
    token = request_token(request, bearer)
    if not token:
        raise _unauthorized("not authenticated")
    try:
        # Not through `RuntimeDep`: every dependency costs FastAPI a resolution step on
        # every request, and this one runs on all authenticated routes.
        return await runtime_of(request).accounts.resolve(token)
    except TokenError as exc:
        raise _unauthorized(exc.reason) from exc


CurrentCredentials = Annotated[tuple[StoredUser, TokenClaims], Depends(current_credentials)]


async def current_user(credentials: CurrentCredentials) -> StoredUser:
    return credentials[0]


CurrentUser = Annotated[StoredUser, Depends(current_user)]


async def require_admin(credentials: CurrentCredentials) -> StoredUser:
    user = credentials[0]
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admin only")
    return user


AdminUser = Annotated[StoredUser, Depends(require_admin)]
