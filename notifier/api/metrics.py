"""`GET /metrics`: the whole server's metrics (every worker), optionally behind a token."""

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from notifier.api.deps import RuntimeDep
from notifier.errors import MetricsTokenRequiredError
from notifier.schemas import ErrorBody

router = APIRouter(tags=["operations"])

# A security scheme rather than a header parameter: it documents the token, and a header
# parameter would make FastAPI list a 422 this route can never answer.
metrics_bearer = HTTPBearer(auto_error=False, scheme_name="metricsToken")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        401: {
            "model": ErrorBody,
            "description": "NOTIFIER_METRICS_TOKEN is set and the request lacks it",
        },
    },
)
async def metrics(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(metrics_bearer)],
) -> Response:
    """Open sockets, rejections by reason, notifications stored, deliveries, latency."""
    expected = runtime.settings.metrics_token
    if expected is not None:
        presented = credentials.credentials if credentials else ""
        valid = secrets.compare_digest(presented.encode(), expected.get_secret_value().encode())
        if not valid:
            raise MetricsTokenRequiredError
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
