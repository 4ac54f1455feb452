"""User accounts: admins create, disable and log users out; everyone reads their own and
changes their own password."""

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from notifier.api.auth import set_session_cookie, token_body
from notifier.api.deps import COOKIE_NAME, AdminUser, CurrentUser, RuntimeDep, client_address
from notifier.api.errors import (
    ADMIN_ONLY,
    JSON_BODY_ERRORS,
    THROTTLED,
    UNAUTHENTICATED,
    Responses,
)
from notifier.api.json_input import InputCheckedRoute
from notifier.errors import CannotDisableSelfError, UserNotFoundError
from notifier.schemas import (
    USERNAME_PATTERN,
    ErrorBody,
    Me,
    PasswordChange,
    RevokedSessions,
    Token,
    UserCreate,
    UserOut,
    UserUpdate,
)

router = APIRouter(prefix="/users", tags=["users"], route_class=InputCheckedRoute)

UsernamePath = Annotated[str, Path(pattern=USERNAME_PATTERN)]
UNKNOWN_USER: Responses = {404: {"model": ErrorBody, "description": "No such user"}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={
        **ADMIN_ONLY,
        409: {"model": ErrorBody, "description": "The username is taken"},
        **JSON_BODY_ERRORS,
    },
)
async def create_user(body: UserCreate, runtime: RuntimeDep, _admin: AdminUser) -> UserOut:
    """Create a user (admin only). A taken name answers 409, a short password 422."""
    user = await runtime.accounts.create_user(body.username, body.password, body.is_admin)
    return UserOut(username=user.username, is_admin=user.is_admin, created_at=user.created_at)


@router.get("/me", response_model=Me, responses=UNAUTHENTICATED)
async def read_me(user: CurrentUser, runtime: RuntimeDep) -> Me:
    """The caller's profile, with how many sockets they have open on the whole server."""
    return Me(
        username=user.username,
        is_admin=user.is_admin,
        created_at=user.created_at,
        open_sockets=await runtime.notifications.open_sockets(user.username),
    )


@router.put(
    "/me/password",
    response_model=Token,
    responses={
        **UNAUTHENTICATED,
        403: {"model": ErrorBody, "description": "Wrong current password"},
        **JSON_BODY_ERRORS,
        **THROTTLED,
    },
)
async def change_password(
    body: PasswordChange,
    user: CurrentUser,
    runtime: RuntimeDep,
    request: Request,
    response: Response,
) -> Token:
    """Change the caller's password. Every token of the caller is revoked (their sockets
    close with 1008 "token revoked"); the answer is a fresh token pair for this client."""
    pair = await runtime.accounts.change_password(
        user, body.current_password, body.new_password, client_address(request.scope)
    )
    token = token_body(pair, response)
    if COOKIE_NAME in request.cookies:
        set_session_cookie(runtime, response, token)
    return token


@router.patch(
    "/{username}",
    response_model=UserOut,
    responses={
        **JSON_BODY_ERRORS,
        400: {
            "model": ErrorBody,
            "description": "An admin cannot disable themselves, or the body is not UTF-8",
        },
        **ADMIN_ONLY,
        **UNKNOWN_USER,
    },
)
async def update_user(
    username: UsernamePath, body: UserUpdate, runtime: RuntimeDep, admin: AdminUser
) -> UserOut:
    """Disable or re-enable a user (admin only). Disabling ends every session: no login,
    no refresh, every token refused, every socket closed with 1008 "user disabled"."""
    if body.disabled and username == admin.username:
        raise CannotDisableSelfError
    flags = await runtime.accounts.set_disabled(username, body.disabled)
    if flags is None:
        raise UserNotFoundError
    return UserOut(
        username=flags.username,
        is_admin=flags.is_admin,
        disabled=flags.disabled,
        created_at=flags.created_at,
    )


@router.post(
    "/{username}/revoke-tokens",
    response_model=RevokedSessions,
    responses={**ADMIN_ONLY, **UNKNOWN_USER},
)
async def revoke_user_tokens(
    username: UsernamePath, runtime: RuntimeDep, _admin: AdminUser
) -> RevokedSessions:
    """Revoke every token of a user (admin only): each of their sockets closes with 1008
    "token revoked". They can log in again."""
    revoked = await runtime.accounts.sessions.revoke_all(username, "revoked by admin")
    if revoked is None:
        raise UserNotFoundError
    return RevokedSessions(revoked_sessions=revoked)
