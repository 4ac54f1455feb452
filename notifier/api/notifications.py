"""Sending (admins): to one user, to several, or to everyone.

Every send accepts an `Idempotency-Key` header: a retry with the same key (same sender,
within 24 hours) gets the first response back, byte for byte, and stores and sends nothing.
The store keeps what the first send stored (`StoredSend`) with the key; each route renders
its answer from it, the first time and on every retry, with the same function.
"""

import hashlib
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response, status
from pydantic import BaseModel

from notifier.api.deps import AdminUser, RuntimeDep
from notifier.api.errors import ADMIN_ONLY, JSON_BODY_ERRORS, too_many_items
from notifier.api.json_input import InputCheckedRoute
from notifier.db.records import MessageContent, StoredSend
from notifier.db.sending import IdempotentRequest, SendRequest, SendResult
from notifier.delivery.frames import notification_out
from notifier.schemas import (
    USERNAME_PATTERN,
    BroadcastOut,
    IdempotencyConflictBody,
    MultiNotificationCreate,
    NotificationContent,
    NotificationList,
    NotificationOut,
    UnknownUsersBody,
    ValidationErrorBody,
)

router = APIRouter(tags=["sending"], route_class=InputCheckedRoute)

RESPONSES: dict[int | str, dict[str, object]] = {
    **ADMIN_ONLY,
    404: {"model": UnknownUsersBody, "description": "Unknown recipients; nothing was stored"},
    422: {
        # Either FastAPI's field errors or the reused-key conflict.
        "model": ValidationErrorBody | IdempotencyConflictBody,
        "description": "Invalid body, or an Idempotency-Key reused for a different request",
    },
    **JSON_BODY_ERRORS,
}
REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retries with the same key (within 24 h) return the first response.",
    ),
]


def _idempotent(request: Request, key: str | None, body: BaseModel) -> IdempotentRequest | None:
    if key is None:
        return None
    fingerprint = f"{request.method} {request.url.path}\n{body.model_dump_json()}"
    return IdempotentRequest(key, hashlib.sha256(fingerprint.encode()).hexdigest())


Render = Callable[[StoredSend], str]
"""A route's answer to a send, from what it stored (the first time and on a retry)."""


def _content(body: NotificationContent) -> MessageContent:
    return MessageContent(body.title, body.body, body.data)


def _respond(result: SendResult, render: Render) -> Response:
    headers = {REPLAYED_HEADER: "true"} if result.replayed else None
    if result.stored is not None:
        text = render(result.stored)
    else:
        assert result.legacy_response is not None
        text = result.legacy_response
    return Response(
        text,
        status_code=status.HTTP_201_CREATED,
        media_type="application/json",
        headers=headers,
    )


def _render_one(stored: StoredSend) -> str:
    return notification_out(stored.notifications[0]).model_dump_json()


def _render_list(stored: StoredSend) -> str:
    notifications = [notification_out(n) for n in stored.notifications]
    return NotificationList(notifications=notifications).model_dump_json()


def _render_broadcast(stored: StoredSend) -> str:
    content = stored.content
    return BroadcastOut(
        recipients=stored.recipient_count,
        title=content.title,
        body=content.body,
        data=dict(content.data),
        created_at=stored.created_at,
    ).model_dump_json()


@router.post(
    "/users/{username}/notifications",
    status_code=status.HTTP_201_CREATED,
    response_model=NotificationOut,
    responses=RESPONSES,
)
async def send_to_user(
    request: Request,
    username: Annotated[str, Path(pattern=USERNAME_PATTERN)],
    body: NotificationContent,
    runtime: RuntimeDep,
    admin: AdminUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Store a notification for one user and push it to every socket they have open."""
    result = await runtime.notifications.send(
        SendRequest(
            [username], _content(body), admin.id, _idempotent(request, idempotency_key, body)
        )
    )
    return _respond(result, _render_one)


@router.post(
    "/notifications",
    status_code=status.HTTP_201_CREATED,
    response_model=NotificationList,
    responses=RESPONSES,
)
async def send_to_users(
    request: Request,
    body: MultiNotificationCreate,
    runtime: RuntimeDep,
    admin: AdminUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Store one notification per named user, all or nothing, and push each live."""
    if len(body.usernames) > runtime.settings.max_recipients:
        raise too_many_items("usernames", runtime.settings.max_recipients)
    content = MessageContent(body.title, body.body, body.data)
    result = await runtime.notifications.send(
        SendRequest(body.usernames, content, admin.id, _idempotent(request, idempotency_key, body))
    )
    return _respond(result, _render_list)


@router.post(
    "/notifications/broadcast",
    status_code=status.HTTP_201_CREATED,
    response_model=BroadcastOut,
    responses={status: RESPONSES[status] for status in (400, 401, 403, 413, 422)},
)
async def broadcast(
    request: Request,
    body: NotificationContent,
    runtime: RuntimeDep,
    admin: AdminUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Store a notification for every user that exists now and push it to every socket."""
    result = await runtime.notifications.send(
        SendRequest(None, _content(body), admin.id, _idempotent(request, idempotency_key, body))
    )
    return _respond(result, _render_broadcast)
