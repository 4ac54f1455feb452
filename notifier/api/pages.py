"""The browser client (`GET /`), the API docs (`GET /docs`) and their static files, all
served from the package: nothing is loaded from another host."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SWAGGER_UI_DIR = Path(swagger_ui_path)
SWAGGER_UI_MOUNT = "/static/swagger-ui"
"""Swagger UI's own files, from the `swagger-ui-bundle-v2` package."""

# The pages load nothing from other hosts, so the policy can be strict: scripts, styles and
# the socket only from this server, no inline script, no framing by other sites.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


@router.api_route("/docs", methods=["GET", "HEAD"])
async def api_docs() -> FileResponse:
    """Swagger UI for `/openapi.json`, started by `/static/docs.js` (no inline script)."""
    return FileResponse(STATIC_DIR / "docs.html", headers=PAGE_HEADERS)


def static_files() -> StaticFiles:
    """The pages' scripts, styles and icon, mounted at `/static`."""
    return StaticFiles(directory=STATIC_DIR)


def swagger_ui_files() -> StaticFiles:
    """Swagger UI's scripts and styles, mounted at `SWAGGER_UI_MOUNT` (before `/static`)."""
    return StaticFiles(directory=SWAGGER_UI_DIR)
