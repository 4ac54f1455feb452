"""`GET /metrics`: the whole server's metrics (every worker), optionally behind a token."""

import secrets
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST

from notifier.auth.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        401: {"description": "NOTIFIER_METRICS_TOKEN is set and the request lacks it"},
    },
)
async def metrics(
    runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Open sockets, rejections by reason, notifications stored, deliveries, latency."""
    expected = runtime.settings.metrics_token
    if expected is not None:
        scheme, _, presented = (authorization or "").partition(" ")
        valid = scheme.lower() == "bearer" and secrets.compare_digest(
            presented.strip().encode(), expected.get_secret_value().encode()
        )
        if not valid:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="metrics token required",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
