"""Unit tests of the Redis broker's wire codec: every envelope survives the round trip."""

import pytest

from notifier.delivery.frames import CloseRequest, Publication, Recipient, UserFrame
from notifier.delivery.redis_broker import decode, encode

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "envelope",
    [
        Publication('"title":"x"', [Recipient("a", 5, 3, 2), Recipient("b", 6, 0, 1)], 12.5),
        UserFrame("a", '{"type":"read","ids":[1],"unread_count":0}'),
        CloseRequest("a", 1008, "token revoked", ("s1", "s2")),
        CloseRequest("a", 1008, "user disabled", None),
    ],
)
def test_broker_messages_round_trip(envelope):
    assert decode(encode(envelope)) == envelope
