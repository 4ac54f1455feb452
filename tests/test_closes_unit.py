"""Unit tests of the close vocabulary: the shutdown hint spreads reconnects."""

import pytest

from notifier import closes

pytestmark = pytest.mark.unit


def test_shutdown_hint_is_jittered_within_the_spread():
    hints = {int(closes.shutdown(5000).reason.rsplit("=", 1)[1]) for _ in range(200)}
    assert min(hints) >= 500 and max(hints) <= 5000
    assert len(hints) > 50
