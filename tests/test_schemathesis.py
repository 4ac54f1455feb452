"""schemathesis against the app's own OpenAPI schema, in-process over ASGI: for inputs it
generates from the schema (valid and invalid), no route answers 5xx, every status it answers
is documented for that route, and every documented response body matches its schema.

Requests carry a freshly signed admin token each, so they reach the handlers instead of
stopping at 401, and a case that logs out or revokes only ends its own token.
"""

import asyncio
import atexit
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import schemathesis
from conftest import ADMIN_PASSWORD, ADMIN_USERNAME, TEST_SECRET
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from jose import jwt
from schemathesis import checks

from notifier.app import create_app
from notifier.db.store import Store
from notifier.migrate import upgrade
from notifier.runtime import build_accounts
from notifier.settings import Settings

pytestmark = pytest.mark.integration


def build_app() -> FastAPI:
    """An app on a fresh SQLite file (removed at exit), with its admin created."""
    workdir = Path(tempfile.mkdtemp(prefix="notifier-schemathesis-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    url = f"sqlite+aiosqlite:///{workdir / 'n.db'}"
    app_settings = Settings(
        secret_key=TEST_SECRET,
        database_url=url,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        _env_file=None,
    )  # type: ignore[call-arg]
    upgrade(url)

    async def create_admin() -> None:
        store = Store(url)
        try:
            await build_accounts(app_settings, store).ensure_user(
                ADMIN_USERNAME, ADMIN_PASSWORD, is_admin=True
            )
        finally:
            await store.close()

    asyncio.run(create_admin())
    return create_app(app_settings)


# Loaded when pytest collects this module (schemathesis parametrizes at collection).
schema = schemathesis.openapi.from_asgi("/openapi.json", build_app())


def admin_token() -> str:
    now = int(time.time())
    claims = {"sub": ADMIN_USERNAME, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_responses_match_the_schema(case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {admin_token()}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.response_schema_conformance,
            checks.content_type_conformance,
        ],
    )
