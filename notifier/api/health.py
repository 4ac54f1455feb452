"""Liveness (`/healthz`: the process and its database answer) and readiness (`/readyz`:
the database and the broker both work, so this worker can take traffic)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from notifier.api.deps import RuntimeDep, Services
from notifier.schemas import HealthOut, ReadinessOut

router = APIRouter(tags=["health"])


async def _database_error(runtime: Services) -> str | None:
    try:
        await runtime.store.ping()
    except Exception as exc:
        return type(exc).__name__
    return None


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database does not answer"}},
)
async def healthz(runtime: RuntimeDep) -> JSONResponse:
    error = await _database_error(runtime)
    if error is not None:
        return JSONResponse({"status": "unavailable", "error": error}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "The database or the broker is down"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    database_ok = await _database_error(runtime) is None
    broker_ok = runtime.broker.up
    ready = database_ok and broker_ok
    return JSONResponse(
        {
            "status": "ready" if ready else "unavailable",
            "database": "up" if database_ok else "down",
            "broker": "up" if broker_ok else "down",
        },
        status_code=200 if ready else 503,
    )
