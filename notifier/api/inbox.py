"""The caller's own inbox: list, read state."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from notifier.api.deps import CurrentUser, RuntimeDep
from notifier.api.errors import UNAUTHENTICATED
from notifier.api.json_input import InputCheckedRoute
from notifier.delivery.frames import notification_out
from notifier.errors import NotificationNotFoundError
from notifier.schemas import MAX_ID, ErrorBody, Inbox, NotificationOut, ReadAllResult

router = APIRouter(
    prefix="/notifications",
    tags=["inbox"],
    responses=UNAUTHENTICATED,
    route_class=InputCheckedRoute,
)


@router.get("", response_model=Inbox)
async def list_inbox(
    user: CurrentUser,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only ids below this one")
    ] = None,
    unread: Annotated[bool, Query(description="Only unread notifications")] = False,
) -> Inbox:
    """The caller's notifications, newest first, and how many are unread in all."""
    items, unread_count = await runtime.store.inbox(user.id, limit, before, unread)
    return Inbox(items=[notification_out(n) for n in items], unread_count=unread_count)


@router.post("/read-all", response_model=ReadAllResult)
async def mark_all_read(user: CurrentUser, runtime: RuntimeDep) -> ReadAllResult:
    """Mark every unread notification read; the user's sockets get a read event."""
    updated = await runtime.notifications.mark_all_read(user.id, user.username)
    return ReadAllResult(updated=updated)


@router.post(
    "/{notification_id}/read",
    response_model=NotificationOut,
    responses={404: {"model": ErrorBody, "description": "Not one of the caller's notifications"}},
)
async def mark_read(
    notification_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: CurrentUser, runtime: RuntimeDep
) -> NotificationOut:
    """Mark one of the caller's notifications read. Anyone else's id answers 404.

    Every socket of the caller, on every worker, gets `{"type": "read", ...}`.
    """
    notification = await runtime.notifications.mark_read(user.id, user.username, notification_id)
    if notification is None:
        raise NotificationNotFoundError
    return notification_out(notification)
