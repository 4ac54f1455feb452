"""Sending (admins): to one user, to several, or to everyone."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from notifier.auth.deps import AdminUser, RuntimeDep
from notifier.schemas import (
    USERNAME_PATTERN,
    BroadcastOut,
    MultiNotificationCreate,
    NotificationContent,
    NotificationList,
    NotificationOut,
    UnknownUsersBody,
)

router = APIRouter(tags=["sending"])

UNKNOWN_USERS = {404: {"model": UnknownUsersBody, "description": "Unknown recipients"}}


@router.post(
    "/users/{username}/notifications",
    status_code=status.HTTP_201_CREATED,
    response_model=NotificationOut,
    responses=UNKNOWN_USERS,
)
async def send_to_user(
    username: Annotated[str, Path(pattern=USERNAME_PATTERN)],
    body: NotificationContent,
    runtime: RuntimeDep,
    admin: AdminUser,
) -> NotificationOut:
    """Store a notification for one user and push it to every socket they have open."""
    [notification] = await runtime.notifications.send([username], body, admin.id)
    return notification


@router.post(
    "/notifications",
    status_code=status.HTTP_201_CREATED,
    response_model=NotificationList,
    responses=UNKNOWN_USERS,
)
async def send_to_users(
    body: MultiNotificationCreate, runtime: RuntimeDep, admin: AdminUser
) -> NotificationList:
    """Store one notification per named user, all or nothing, and push each live."""
    content = NotificationContent(title=body.title, body=body.body, data=body.data)
    notifications = await runtime.notifications.send(body.usernames, content, admin.id)
    return NotificationList(notifications=notifications)


@router.post(
    "/notifications/broadcast", status_code=status.HTTP_201_CREATED, response_model=BroadcastOut
)
async def broadcast(
    body: NotificationContent, runtime: RuntimeDep, admin: AdminUser
) -> BroadcastOut:
    """Store a notification for every user that exists now and push it to every socket."""
    notifications = await runtime.notifications.broadcast(body, admin.id)
    return BroadcastOut(
        recipients=len(notifications),
        title=body.title,
        body=body.body,
        data=body.data,
        created_at=notifications[0].created_at if notifications else None,
    )
