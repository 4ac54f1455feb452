"""Password login: bearer tokens for apps and curl, a cookie session for browsers."""

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from notifier.auth.deps import COOKIE_NAME, RuntimeDep, bearer_scheme
from notifier.auth.tokens import TokenError
from notifier.runtime import Runtime
from notifier.schemas import SessionInfo, Token

router = APIRouter(tags=["auth"])

LoginForm = Annotated[OAuth2PasswordRequestForm, Depends()]


async def _login(runtime: Runtime, form: OAuth2PasswordRequestForm) -> Token:
    user = await runtime.accounts.authenticate(form.username, form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    issued = runtime.accounts.tokens.issue(user.username, user.is_admin)
    return Token(access_token=issued.token, expires_in=issued.expires_in)


@router.post("/token", response_model=Token, summary="Log in (OAuth2 password grant)")
async def issue_token(runtime: RuntimeDep, form: LoginForm) -> Token:
    return await _login(runtime, form)


@router.post("/session", response_model=Token, summary="Log in with an HttpOnly cookie")
async def open_session(runtime: RuntimeDep, form: LoginForm, response: Response) -> Token:
    token = await _login(runtime, form)
    response.set_cookie(
        COOKIE_NAME,
        token.access_token,
        max_age=token.expires_in,
        httponly=True,
        samesite="lax",
        path="/",
    )
    return token


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Log out")
async def close_session(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")


@router.get("/session", response_model=SessionInfo, summary="Who the session speaks for")
async def read_session(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    bearer: Annotated[str | None, Depends(bearer_scheme)],
) -> SessionInfo:
    """Always 200, so a page can ask whether it is logged in without a failed request;
    `reason` says why not, in the words a socket's 1008 close would use."""
    response.headers["Cache-Control"] = "no-store"
    token = bearer or request.cookies.get(COOKIE_NAME)
    if not token:
        return SessionInfo(authenticated=False, reason="no token")
    try:
        user, claims = await runtime.accounts.resolve(token)
    except TokenError as exc:
        return SessionInfo(authenticated=False, reason=exc.reason)
    return SessionInfo(
        authenticated=True,
        username=user.username,
        is_admin=user.is_admin,
        expires_in=max(0, claims.expires_at - int(time.time())),
    )
