"""Unit-level checks of the app factory and settings, with Starlette's TestClient."""

import pytest
from conftest import TEST_SECRET
from fastapi.testclient import TestClient
from pydantic import ValidationError

from notifier.app import create_app
from notifier.settings import Settings

pytestmark = pytest.mark.unit


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"secret_key": TEST_SECRET, "_env_file": None}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_healthz_is_503_when_the_database_does_not_answer(tmp_path):
    missing = tmp_path / "no-such-dir" / "notifier.db"
    app = create_app(settings(database_url=f"sqlite+aiosqlite:///{missing}"))
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_secret_key_is_required_and_long(monkeypatch):
    monkeypatch.delenv("NOTIFIER_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="secret_key"):
        settings(secret_key="short")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("https://app.example", ["https://app.example"]),
        ("https://a.example/, https://b.example", ["https://a.example", "https://b.example"]),
        ('["https://a.example"]', ["https://a.example"]),
    ],
)
def test_allowed_origins_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("NOTIFIER_ALLOWED_ORIGINS", raw)
    assert settings().allowed_origins == expected


def test_openapi_documents_every_route():
    paths = create_app(settings()).openapi()["paths"]
    for path in (
        "/token",
        "/session",
        "/users",
        "/users/me",
        "/users/{username}/notifications",
        "/notifications",
        "/notifications/broadcast",
        "/notifications/read-all",
        "/notifications/{notification_id}/read",
        "/healthz",
    ):
        assert path in paths, path
