"""`db.records.StoredSend`: the snapshot an idempotency key keeps survives its JSON field
for field, and the send routes render the same bytes from the snapshot read back as from
the one the send produced (the first answer and every retry agree)."""

from datetime import UTC, datetime

import pytest

from notifier.api.notifications import _render_broadcast, _render_list, _render_one
from notifier.db.records import MessageContent, StoredSend

pytestmark = pytest.mark.unit

TRICKY_DATA = [
    {},
    {"n": 1, "big": 2**70, "neg": -0.0, "ratio": 1e16, "tiny": 5e-324, "third": 1 / 3},
    {"text": 'é ü 中文 \u2028 " \\ \n', "nested": {"list": [None, True, False, [], {}]}},
    {"z": 1, "a": 2, "m": {"y": 1, "b": 2}},  # key order is part of the bytes
]


@pytest.mark.parametrize("data", TRICKY_DATA)
def test_a_snapshot_read_back_renders_the_same_bytes(data: dict) -> None:
    sent = StoredSend(
        MessageContent("title ✓", "body", data),
        datetime(2026, 11, 29, 23, 1, 2, 345678, tzinfo=UTC),
        2,
        (41, 42),
        ("ann", "bob"),
    )
    read_back = StoredSend.from_json(sent.to_json())
    assert read_back == sent
    assert read_back is not None
    for render in (_render_one, _render_list, _render_broadcast):
        assert render(read_back) == render(sent)


def test_a_broadcast_to_nobody_has_no_instant_and_renders_null() -> None:
    empty = StoredSend(MessageContent("t", "", {}), None, 0, (), ())
    assert StoredSend.from_json(empty.to_json()) == empty
    assert '"recipients":0' in _render_broadcast(empty)
    assert '"created_at":null' in _render_broadcast(empty)


@pytest.mark.parametrize("stored", ['{"id":1}', '{"recipients":0}', "[]", "not json", ""])
def test_anything_but_a_snapshot_reads_as_none(stored: str) -> None:
    """Response bodies kept by a version before snapshots are answered as they are."""
    assert StoredSend.from_json(stored) is None
