"""Sending (admins): to one user, to several, or to everyone.

Every send accepts an `Idempotency-Key` header: a retry with the same key (same sender,
within 24 hours) gets the first response back, byte for byte, and stores and sends nothing.
"""

import hashlib
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response, status
from pydantic import BaseModel

from notifier.api.deps import AdminUser, RuntimeDep
from notifier.api.errors import ADMIN_ONLY, JSON_BODY_ERRORS, too_many_items
from notifier.api.json_input import InputCheckedRoute
from notifier.db.sending import IdempotentRequest, SendRequest, SendResult
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


def _respond(result: SendResult) -> Response:
    headers = {REPLAYED_HEADER: "true"} if result.replayed else None
    return Response(
        result.body,
        status_code=result.status_code,
        media_type="application/json",
        headers=headers,
    )


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
            [username],
            body,
            admin.id,
            _idempotent(request, idempotency_key, body),
            render=lambda stored: stored[0].model_dump_json(),
        )
    )
    return _respond(result)


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
    content = NotificationContent(title=body.title, body=body.body, data=body.data)
    result = await runtime.notifications.send(
        SendRequest(
            body.usernames,
            content,
            admin.id,
            _idempotent(request, idempotency_key, body),
            render=lambda stored: NotificationList(notifications=list(stored)).model_dump_json(),
        )
    )
    return _respond(result)


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

    def render(stored: Sequence[NotificationOut]) -> str:
        return BroadcastOut(
            recipients=len(stored),
            title=body.title,
            body=body.body,
            data=body.data,
            created_at=stored[0].created_at if stored else None,
        ).model_dump_json()

    result = await runtime.notifications.send(
        SendRequest(None, body, admin.id, _idempotent(request, idempotency_key, body), render)
    )
    return _respond(result)
