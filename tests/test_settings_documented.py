"""Every setting is documented for operators: in `.env.example` and in the README."""

from pathlib import Path

import pytest

from notifier.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    missing = [
        f"NOTIFIER_{name.upper()}"
        for name in Settings.model_fields
        if f"NOTIFIER_{name.upper()}" not in text
    ]
    assert missing == [], f"{document} does not mention {missing}"
