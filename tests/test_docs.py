"""The docs keep up with the code: every setting is in .env.example."""

from pathlib import Path

import pytest

from notifier.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_env_example():
    example = (ROOT / ".env.example").read_text()
    missing = [
        f"NOTIFIER_{name.upper()}"
        for name in Settings.model_fields
        if f"NOTIFIER_{name.upper()}" not in example
    ]
    assert missing == []


def test_readme_screenshot_exists():
    assert "(docs/screenshot.png)" in (ROOT / "README.md").read_text()
    assert (ROOT / "docs" / "screenshot.png").read_bytes().startswith(b"\x89PNG")
