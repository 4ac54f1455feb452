"""FastAPI dependencies that turn a request's credentials into a user."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from notifier.auth.tokens import TokenError
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


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_user(
    request: Request,
    runtime: RuntimeDep,
    bearer: Annotated[str | None, Depends(bearer_scheme)],
) -> StoredUser:
    # Browsers that logged in with POST /session send the cookie; SameSite=Lax keeps
    # other sites' POSTs from carrying it.
    token = bearer or request.cookies.get(COOKIE_NAME)
    if not token:
        raise _unauthorized("not authenticated")
    try:
        user, _claims = await runtime.accounts.resolve(token)
    except TokenError as exc:
        raise _unauthorized(exc.reason) from exc
    return user


CurrentUser = Annotated[StoredUser, Depends(current_user)]


async def require_admin(user: CurrentUser) -> StoredUser:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admin only")
    return user


AdminUser = Annotated[StoredUser, Depends(require_admin)]
