"""Liveness: the process answers and its database does too."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from notifier.auth.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={503: {"description": "The database does not answer"}})
async def healthz(runtime: RuntimeDep) -> JSONResponse:
    try:
        await runtime.store.ping()
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})
