"""User accounts: admins create them, everyone reads their own."""

from fastapi import APIRouter, status

from notifier.auth.deps import AdminUser, CurrentUser, RuntimeDep
from notifier.schemas import Me, UserCreate, UserOut

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(body: UserCreate, runtime: RuntimeDep, _admin: AdminUser) -> UserOut:
    """Create a user (admin only). A taken name answers 409."""
    user = await runtime.accounts.create_user(body.username, body.password, body.is_admin)
    return UserOut(username=user.username, is_admin=user.is_admin, created_at=user.created_at)


@router.get("/me", response_model=Me)
async def read_me(user: CurrentUser, runtime: RuntimeDep) -> Me:
    """The caller's profile, with how many sockets they have open on this server."""
    return Me(
        username=user.username,
        is_admin=user.is_admin,
        created_at=user.created_at,
        open_sockets=runtime.hub.count(user.username),
    )
